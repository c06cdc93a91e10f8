"""`arkwright sbatch [sbatch options] SCRIPT [script arguments...]`, exactly as sbatch.

Every word is read by the sbatch reader (click parses nothing here): options up to the
script, the script's own arguments after it, `--flag`-looking ones included; no SCRIPT
reads the script from standard input. `--parse-only` prints the request as JSON without
a server; `--test-only` asks the server when it would start; `--parsable` prints only
the job id; `--wait` waits for the job to end and exits with its exit code.
"""

from __future__ import annotations

import json
import os
import sys
import time

import typer

from arkwright import __version__
from arkwright.cli.base import app, errors, fail
from arkwright.client import ApiError, Client
from arkwright.sbatch import (
    SbatchError,
    Submission,
    parse_command_line,
    read_submission,
    wrap_script,
)

FINAL_STATES = {"completed", "failed", "cancelled", "rejected"}
_WAIT_POLL_S = (1.0, 2.0, 5.0, 10.0)  # then every 10 s, as sbatch -W backs off


def _client() -> Client:
    return Client.from_env()


@app.command(
    "sbatch",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": [],  # --help and -h are sbatch options, read below
    },
    options_metavar="[SBATCH OPTIONS] [SCRIPT [SCRIPT ARGUMENTS]...]",
)
def sbatch(ctx: typer.Context) -> None:
    """Submit a Slurm batch script unchanged, read as sbatch reads it.

    Options go before the script; every word after it is the script's own ($1, $2, ...).

    No script: it is read from standard input. Every option: README's sbatch table.

    --parse-only prints the request as JSON, offline. --test-only: when would it start.
    """
    argv = list(ctx.args)
    try:
        cli = parse_command_line(argv)
    except SbatchError as exc:
        raise fail(str(exc)) from None
    if cli.leader("help") or cli.leader("usage"):
        print(ctx.get_help())
        raise typer.Exit(0)
    if cli.leader("version"):
        print(f"arkwright {__version__}")
        raise typer.Exit(0)
    label = cli.script or "stdin"
    wrap = cli.leader("wrap")
    text = wrap_script(wrap.value or "") if wrap is not None else _read_script(cli.script)
    try:
        submission = read_submission(cli, text, os.environ)
    except SbatchError as exc:
        raise fail(f"{label}: {exc}") from None
    quiet = submission.flag("quiet")
    if submission.flag("parse-only"):
        answer = {"requests": [submission.body], "warnings": submission.warnings}
        print(json.dumps(answer, indent=2))
        return
    _warn(label, submission.warnings, quiet)
    if submission.flag("wait") and "array" in submission.body:
        # sbatch -W waits for every task; the API answers for one job at a time.
        raise fail(f"{label}: --wait with --array is not supported yet; wait per task")
    if submission.flag("test-only"):
        _test_only(submission)
        return
    client = _client()
    try:
        created = client.submit(submission.body)
    except ApiError as exc:
        raise fail(f"{label}: {exc}") from None
    if isinstance(created, list):  # an array's tasks, should the API list them
        created = created[0]
    _warn(label, created.get("warnings") or [], quiet)
    # sbatch prints one id for an array: the array's (its first task's) id.
    job_id = created.get("array_job_id") or created["id"]
    print(job_id if submission.flag("parsable") else f"Submitted batch job {job_id}")
    if submission.flag("wait"):
        raise typer.Exit(_wait(client, created["id"]))


def _read_script(path: str | None) -> str:
    if path is None:
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except OSError:
        raise fail(f"Unable to open file {path}") from None
    except UnicodeDecodeError:
        raise fail(f"{path}: not UTF-8 text; Arkwright takes scripts as UTF-8") from None


def _warn(label: str, warnings: list[str], quiet: bool) -> None:
    if quiet:
        return
    for warning in warnings:
        errors.print(f"[yellow]warning:[/] {label}: {warning}", highlight=False)


def _test_only(submission: Submission) -> None:
    """sbatch --test-only: when the job would start, submitting nothing."""
    try:
        answer = _client().test_submission(submission.body)
    except ApiError as exc:
        raise fail(str(exc)) from None
    start = answer.get("would_start_at")
    if start is None:
        reason = answer.get("reason") or "unknown"
        errors.print(f"sbatch: the job would not start now ({reason})", highlight=False)
        return
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(start)))
    pool = answer.get("pool") or "a pool Arkwright chooses"
    errors.print(f"sbatch: Job would start at {when} on {pool}", highlight=False)


def _wait(client: Client, job_id: str) -> int:
    """sbatch -W: poll until the job ends; its exit code becomes ours."""
    polls = 0
    while True:
        try:
            job = client.get_job(job_id)
        except ApiError as exc:
            raise fail(str(exc)) from None
        if job["state"] in FINAL_STATES:
            if job.get("exit_code") is not None:
                return int(job["exit_code"])
            return 0 if job["state"] == "completed" else 1
        time.sleep(_WAIT_POLL_S[min(polls, len(_WAIT_POLL_S) - 1)])
        polls += 1

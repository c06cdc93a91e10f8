"""Batch scripts on the local backend: each runs under its own #! line, with its arguments,
Slurm's batch variables, its exit code, and its logs where --output/--error say.

As root (CI), the job runs as its owner's mapped `arkt-…` account, so these also show that
the script and the pattern logs belong to that account, not to the service."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkwright.backends.base import Ending, RunRequest
from arkwright.backends.batch import SCRIPT_NAME, BatchSpec, short_hostname
from arkwright.backends.job_env import BadRunRequest
from arkwright.backends.local import LocalBackend
from arkwright.fleets import load_fleet
from tests.conftest import make_job
from tests.security.accounts import IS_ROOT, local_fleet_with_identity

PY = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")


@pytest.fixture(scope="module")
def fleet():
    # As root, each job runs as its owner's mapped account; otherwise as the service's.
    return local_fleet_with_identity() if IS_ROOT else load_fleet("local")


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory every account may pass through (pytest's own is root's alone), as the
    run root's parent is on a real site."""
    path = Path(tempfile.mkdtemp(prefix="arkt-batch-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def backend(fleet, base) -> LocalBackend:
    return LocalBackend(fleet, base / "runs", run_root=base / "work", grace_s=0.3)


def run(backend, fleet, batch: BatchSpec, args=(), job_id="j-0000007") -> tuple[object, dict]:
    pool = next(p for p in fleet.pools if p.name == "workstation/gpus")
    request = RunRequest(
        job=make_job(job_id, tenant="research", gpus=1, duration=60),
        pool=pool,
        allocation=((0, 1),),
        attempt=1,
        command=list(args),
        owner="alice",
        batch=batch,
    )
    handle = backend.start(request)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        outcomes = backend.poll(time.time())
        if outcomes:
            return outcomes[0], handle
        time.sleep(0.05)
    raise AssertionError("the script did not end")


def read(backend, handle, stream: str) -> str:
    opened = backend.open_log("j", handle, stream)
    assert opened is not None, f"no {stream} log"
    with opened:
        return opened.read().decode()


def test_a_python_shebang_script_runs_under_python_with_its_arguments(backend, fleet):
    script = (
        f"#!{PY}\n"
        "#SBATCH --gres=gpu:1\n"
        "import os, sys\n"
        "print('argv', sys.argv[1:])\n"
        "print('version', sys.version_info[0])\n"
        "print('id', os.environ['SLURM_JOB_ID'], os.environ['SLURM_JOB_NAME'])\n"
        "print('nodes', os.environ['SLURM_NNODES'], os.environ['SLURM_GPUS_ON_NODE'])\n"
        "print('submit', os.environ['SLURM_SUBMIT_DIR'] == os.getcwd())\n"
        "env = os.environ.get\n"
        "print('task', env('SLURM_ARRAY_JOB_ID'), env('SLURM_ARRAY_TASK_ID'))\n"
        "sys.exit(int(sys.argv[2]))\n"
    )
    batch = BatchSpec(name="train", script=script, array_job_id="j-0000005", array_task_id=2)
    outcome, handle = run(backend, fleet, batch, ["--lr=0.1", "3"])
    assert outcome.ending is Ending.FAILED and outcome.exit_code == 3
    out = read(backend, handle, "stdout").splitlines()
    assert out == [
        "argv ['--lr=0.1', '3']",
        "version 3",
        "id j-0000007 train",
        "nodes 1 1",
        "submit True",
        "task j-0000005 2",
    ]


def test_a_bash_e_script_stops_at_its_first_failure(backend, fleet):
    script = '#!/bin/bash -e\necho "first $1 $#"\nfalse\necho "never reached"\n'
    outcome, handle = run(backend, fleet, BatchSpec(script=script), ["a b", "c"])
    assert outcome.ending is Ending.FAILED and outcome.exit_code == 1
    assert read(backend, handle, "stdout") == "first a b 2\n"
    script = "#!/bin/bash -e\necho fine\n"
    ok, handle = run(backend, fleet, BatchSpec(script=script), [], job_id="j-0000008")
    assert ok.ending is Ending.COMPLETED and ok.exit_code == 0


def test_the_script_and_pattern_logs_belong_to_the_jobs_account(backend, fleet):
    script = "#!/bin/sh\necho out; echo err >&2; id -u\n"
    batch = BatchSpec(name="train", script=script, output="logs/train-%j-%x.out")
    outcome, handle = run(backend, fleet, batch)
    assert outcome.ending is Ending.COMPLETED, outcome
    work = Path(handle["work_dir"])
    log = work / "logs" / "train-j-0000007-train.out"
    # --output alone: stderr goes to the same file, as sbatch does.
    lines = log.read_text().splitlines()
    assert sorted(lines[:2]) == ["err", "out"]
    assert read(backend, handle, "stderr") == read(backend, handle, "stdout")
    script_file = work / SCRIPT_NAME
    assert script_file.stat().st_mode & 0o777 == 0o700
    if IS_ROOT:  # the job ran as its mapped account, which owns what it wrote
        account = pwd.getpwnam(handle["account"])
        assert int(lines[2]) == account.pw_uid != 0
        assert log.stat().st_uid == script_file.stat().st_uid == account.pw_uid
    # The record's own default logs stay empty: the streams went where the pattern said.
    assert Path(handle["dir"], "stdout.log").read_text() == ""


def test_separate_output_and_error_patterns(backend, fleet):
    batch = BatchSpec(
        name="x",
        script="#!/bin/sh\necho to-out; echo to-err >&2\n",
        output="%x-%A_%4a.out",
        error="%x-%j-%N.err",
        array_job_id="j-0000003",
        array_task_id=7,
    )
    _, handle = run(backend, fleet, batch)
    work = Path(handle["work_dir"])
    assert (work / "x-j-0000003_0007.out").read_text() == "to-out\n"
    assert (work / f"x-j-0000007-{short_hostname()}.err").read_text() == "to-err\n"
    assert read(backend, handle, "stderr") == "to-err\n"


def test_a_script_without_an_interpreter_line_fails_with_the_reason(backend, fleet):
    outcome, _ = run(backend, fleet, BatchSpec(script="echo no shebang\n"))
    assert outcome.ending is Ending.FAILED and outcome.exit_code == 127
    assert "Exec format error" in outcome.reason


def test_a_hostile_pattern_is_refused_before_anything_runs(backend, fleet, base):
    for batch in (
        BatchSpec(script="#!/bin/sh\ntrue\n", output="../../../runs/stolen"),
        BatchSpec(script="#!/bin/sh\ntrue\n", output="/etc/cron.d/x"),
        BatchSpec(name="..", script="#!/bin/sh\ntrue\n", output="%x/%x/db"),
        BatchSpec(script="#!/bin/sh\ntrue\n", output=SCRIPT_NAME),
    ):
        with pytest.raises(BadRunRequest, match="output"):
            run(backend, fleet, batch, job_id="j-0000009")
    assert not (base / "runs").exists() or not any((base / "runs").iterdir())


def test_a_log_swapped_for_a_link_is_not_read_back(backend, fleet, base):
    secret = base / "runs" / "secret.db"
    secret.write_text("the service's database")
    script = f"#!/bin/sh\necho hi\nrm -f out.log\nln -s {secret} out.log\n"
    outcome, handle = run(backend, fleet, BatchSpec(script=script, output="out.log"))
    assert outcome.ending is Ending.COMPLETED, outcome
    assert Path(handle["work_dir"], "out.log").is_symlink()  # the job did plant it
    assert backend.open_log("j", handle, "stdout") is None


def test_a_log_that_cannot_be_opened_fails_the_start_with_the_field(backend, fleet):
    # A directory where the log file should go: the job's account cannot open it.
    script = "#!/bin/sh\ntrue\n"
    outcome, _ = run(backend, fleet, BatchSpec(script=script, output=f"{SCRIPT_NAME}/x.out"))
    assert outcome.ending is Ending.FAILED and outcome.exit_code == 127
    assert "output" in outcome.reason and SCRIPT_NAME in outcome.reason, outcome.reason


def test_a_plain_command_gets_slurms_variables_and_patterns_too(backend, fleet):
    batch = BatchSpec(output="cmd-%j.txt")
    outcome, handle = run(backend, fleet, batch, ["sh", "-c", "echo $SLURM_JOB_NAME $SLURM_JOB_ID"])
    assert outcome.ending is Ending.COMPLETED, outcome
    assert Path(handle["work_dir"], "cmd-j-0000007.txt").read_text() == "sh j-0000007\n"
    request = json.loads(Path(handle["dir"], "request.json").read_text())
    assert request["stdout_file"] == request["stderr_file"] == "cmd-j-0000007.txt"

"""The batch script Arkwright hands sbatch (or slurmrestd): a wrapper around the job's own.

Arkwright never gives Slurm the user's script itself. sbatch would read that script's
`#SBATCH` lines and let them override what Arkwright placed (another partition, more
nodes, its own --output, an --array Slurm would then run as many jobs Arkwright does not
know), so the placement Arkwright's core chose, and its accounting, would no longer hold.
The wrapper has no directives; every option is on sbatch's command line. It carries the
user's script base64-encoded (exact bytes; no here-document delimiter to collide with),
and on the node, as the job's own account and in its run directory, writes it out as
`slurm_script` (0700) and executes it, so the kernel honours its `#!` line, with the job's
arguments. Its stdout and stderr go where the --output/--error patterns say (`%N` filled
from the node Slurm chose, which is also written to `.arkwright-node` so the API can find
the file), and the wrapper writes the exit record as for any job.

Slurm sets SLURM_JOB_ID, SLURM_JOB_NODELIST, SLURM_NNODES, SLURM_GPUS_ON_NODE itself (srun
relies on them). The wrapper sets those Slurm cannot know: the job's own name (Slurm's is
`ark-<job>`), the submit directory (the run directory, not the service's), and the array
ids (Arkwright's arrays are single Slurm jobs).
"""

from __future__ import annotations

import base64
import re
import shlex

from arkwright.backends.base import RunRequest
from arkwright.backends.batch import SCRIPT_NAME
from arkwright.backends.job_env import BadRunRequest
from arkwright.backends.log_patterns import (
    DEV_NULL,
    FIRST_NODE,
    BadLogPattern,
    LogTargets,
    Segment,
    confined,
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NODE_RECORD = ".arkwright-node"  # the first node's name, for %N, as the job saw it
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


# Files of the run directory a log must not overwrite: the script, and the records the
# backend reads (on Slurm the run directory holds them).
RESERVED = frozenset({SCRIPT_NAME, "exit.json", "exit.json.partial", NODE_RECORD})


def log_targets(request: RunRequest, user: str) -> LogTargets:
    """The request's patterns expanded but for %N (BadRunRequest names the field)."""
    try:
        found = request.batch.log_targets(request.job.job_id, request.command, user, None)
    except BadLogPattern as exc:
        raise BadRunRequest(str(exc)) from exc
    for field, segments in (("output", found.stdout), ("error", found.stderr)):
        if segments is None or FIRST_NODE in segments:
            continue
        path = confined("".join(str(part) for part in segments), field)
        if path in RESERVED:
            raise BadRunRequest(f"{field}: {path!r} is a file Arkwright keeps there")
    return found


def segments_to_json(segments: list[Segment] | None) -> list[str | None] | None:
    """For the run's handle: %N as null."""
    if segments is None:
        return None
    return [None if part is FIRST_NODE else part for part in segments]  # type: ignore[misc]


def node_name(text: str | None) -> str | None:
    """The recorded first node's name, if it is one (the record is the job's to write)."""
    name = (text or "").strip()
    return name if _NODE_NAME.match(name) else None


def _shell_path(segments: list[Segment]) -> str:
    """The path as one shell word, %N standing for "$node"."""
    return "".join('"$node"' if part is FIRST_NODE else shlex.quote(part) for part in segments)


def _needs_node(targets: LogTargets) -> bool:
    return any(part is FIRST_NODE for seg in (targets.stdout, targets.stderr) for part in seg or ())


def _redirections(targets: LogTargets) -> tuple[list[str], str]:
    """Lines that make the logs' directories, and the redirections for the command."""
    setup: list[str] = []
    words: list[str] = []
    same = targets.stdout is not None and targets.stdout == targets.stderr
    for fd, segments in ((1, targets.stdout), (2, targets.stderr)):
        if segments is None:
            continue
        if fd == 2 and same:
            words.append("2>&1")
            continue
        path = _shell_path(segments)
        if segments != [DEV_NULL]:
            setup.append(f'mkdir -p -- "$(dirname -- {path})" || exit 1')
        words.append(f"{fd}>{path}")
    return setup, " ".join(words)


def batch_script(
    request: RunRequest, run_dir: str, user: str = "", targets: LogTargets | None = None
) -> str:
    """The script Slurm runs: the job's environment, its command or batch script (with
    its logs where its patterns say), then an exit record."""
    batch = request.batch
    targets = targets if targets is not None else log_targets(request, user)
    lines = [
        "#!/bin/bash",
        f"# Arkwright job {request.job.job_id}, attempt {request.attempt}: written by Arkwright",
        f"export ARKWRIGHT_JOB_ID={shlex.quote(request.job.job_id)}",
        'export ARKWRIGHT_GPU_SLOTS="${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}"',
        f"export SLURM_JOB_NAME={shlex.quote(batch.job_name(request.command))}",
        f"export SLURM_SUBMIT_DIR={shlex.quote(run_dir)}",
    ]
    if batch.array_task_id is not None:
        array_id = batch.array_job_id or request.job.job_id
        lines.append(f"export SLURM_ARRAY_JOB_ID={shlex.quote(array_id)}")
        lines.append(f"export SLURM_ARRAY_TASK_ID={int(batch.array_task_id)}")
    for name, value in sorted(request.env.items()):
        if not _ENV_NAME.match(name):
            raise ValueError(f"environment variable name {name!r} is not valid in a shell")
        lines.append(f"export {name}={shlex.quote(value)}")
    command = shlex.join(request.command)
    if batch.script is not None:
        encoded = base64.encodebytes(batch.script.encode("utf-8", "surrogateescape"))
        lines += [
            f"(umask 077 && base64 -d > {SCRIPT_NAME}) <<'ARKWRIGHT_SCRIPT' || exit 1",
            encoded.decode("ascii").rstrip("\n"),
            "ARKWRIGHT_SCRIPT",
            f"chmod 700 {SCRIPT_NAME} || exit 1",
        ]
        command = shlex.join([f"./{SCRIPT_NAME}", *request.command])
    if targets.any:
        setup, redirect = _redirections(targets)
        if _needs_node(targets):
            lines += [
                'node="${SLURMD_NODENAME:-$(hostname -s)}"',
                f"printf '%s\\n' \"$node\" > {NODE_RECORD}",
            ]
        lines += setup
        command = f"{command} {redirect}"
    lines += [
        command,
        "rc=$?",
        f"cd {shlex.quote(run_dir)}",
        'printf \'{"exit_code": %d, "ended_at": %s}\\n\' "$rc" "$(date +%s)"'
        " > exit.json.partial && mv exit.json.partial exit.json",
        'exit "$rc"',
    ]
    return "\n".join(lines) + "\n"

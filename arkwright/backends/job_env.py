"""What a job's process is given: its command checked, its environment built from scratch.

Nothing of the server's environment reaches a job except the allow-list below (a
database URL or a token in the server's environment stays there), as Slurm's
`--export=NONE` plus the job's own variables. The checks are the ones exec(2) would
fail on later, asked first, so a bad request is refused before it takes any GPU.
"""

from __future__ import annotations

import os
import re

from arkwright.backends.accounts import Account
from arkwright.backends.base import RunRequest

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Linux refuses one argument or variable longer than MAX_ARG_STRLEN (32 pages).
MAX_ARG_BYTES = 128 * 1024
# Command and environment together: well under ARG_MAX, leaving room for what we add.
MAX_TOTAL_BYTES = min(os.sysconf("SC_ARG_MAX") // 2, 1 << 20)
SERVER_ALLOW_LIST = ("PATH", "LANG", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class BadRunRequest(ValueError):
    """The job's own command or environment cannot be executed (the submitter's fault):
    the start fails with this reason and takes nothing."""


def validate_request(request: RunRequest) -> None:
    job = request.job.job_id
    if not request.command and request.batch.script is None:
        raise BadRunRequest(f"job {job} has no command to run")
    total = 0
    for i, arg in enumerate(request.command):
        if "\0" in arg:
            raise BadRunRequest(f"command[{i}]: contains a NUL character")
        size = len(arg.encode("utf-8", "surrogateescape")) + 1
        if size > MAX_ARG_BYTES:
            raise BadRunRequest(f"command[{i}]: {size} bytes is over {MAX_ARG_BYTES}")
        total += size
    for name, value in request.env.items():
        if not ENV_NAME.match(name):
            raise BadRunRequest(f"env: {name!r} is not a valid variable name")
        if "\0" in value:
            raise BadRunRequest(f"env.{name}: contains a NUL character")
        size = len(name) + len(value.encode("utf-8", "surrogateescape")) + 2
        if size > MAX_ARG_BYTES:
            raise BadRunRequest(f"env.{name}: {size} bytes is over {MAX_ARG_BYTES}")
        total += size
    if total > MAX_TOTAL_BYTES:
        raise BadRunRequest(f"command and env: {total} bytes is over {MAX_TOTAL_BYTES}")


def job_environment(
    request: RunRequest,
    account: Account,
    run_dir: str,
    gpu_slots: str,
    nvidia: bool,
    slurm: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of the job's process: allow-listed server variables, then
    the job's own, then what Arkwright sets (which the job cannot override), Slurm's
    batch variables among them (`slurm`), as slurmd sets its own over the job's."""
    job = request.job
    env = {name: os.environ[name] for name in SERVER_ALLOW_LIST if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(request.env)
    env.update(
        HOME=account.home or run_dir,
        USER=account.name,
        LOGNAME=account.name,
        TMPDIR=run_dir,
        ARKWRIGHT_JOB_ID=job.job_id,
        ARKWRIGHT_JOB_ATTEMPT=str(request.attempt),
        ARKWRIGHT_JOB_TENANT=job.tenant,
        ARKWRIGHT_JOB_OWNER=request.owner,
        ARKWRIGHT_JOB_POOL=request.pool.name,
        ARKWRIGHT_JOB_GPUS=str(sum(g for _, g in request.allocation)),
        ARKWRIGHT_JOB_DIR=run_dir,
        ARKWRIGHT_GPU_SLOTS=gpu_slots,
    )
    env.update(slurm or {})
    if nvidia:
        env["CUDA_VISIBLE_DEVICES"] = gpu_slots
    return env


def runner_environment() -> dict[str, str]:
    """The runner's own environment: enough to start Python, no secrets."""
    keep = (*SERVER_ALLOW_LIST, "PYTHONPATH")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return env

"""The interface every backend offers the control plane.

A backend is told to start a run (a job on a pool with an allocation) and returns a
handle: a small JSON-able record the control plane stores before doing anything else.
After a restart, the control plane hands those records back and the backend says what
became of each run. Eligibility is checked again here, at the last boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from arkwright.backends.batch import BatchSpec
from arkwright.core.eligibility import is_eligible
from arkwright.core.fleet import Fleet, Pool
from arkwright.core.job import Job

RunHandle = dict  # JSON-able; what a backend needs to find a run again


class Ending(StrEnum):
    COMPLETED = "completed"  # exit code 0
    FAILED = "failed"  # the job's own fault: non-zero exit, timeout
    LOST = "lost"  # not the job's fault (node or process vanished): may be re-queued
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    job_id: str
    ending: Ending
    ended_at: float
    exit_code: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class RunRequest:
    job: Job
    pool: Pool
    allocation: tuple[tuple[int, int], ...]
    attempt: int
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    runtime_s: float = 0.0  # how long a simulated run lasts, in job time
    # The Arkwright user who submitted the job: the site maps them to the OS account the
    # run executes as ([sites.identity]); "" (unknown) can map to no account.
    owner: str = ""
    # What sbatch would know: the job's name, array ids, its batch script (run by its own
    # #! line, `command` being its arguments) and its --output/--error patterns.
    batch: BatchSpec = field(default_factory=BatchSpec)


class BackendUnavailable(RuntimeError):
    """The site could not be reached (its controller is down, the network failed): not the
    job's fault. The control plane puts the job back in the queue and rests the site."""


class StartRefused(RuntimeError):
    """The site answered but would not take this start now (a node down, a partition
    closed, a site misconfigured): not the job's fault. The job goes back to the queue and
    the pool rests; after a few refusals in a row the job fails with the site's reason."""


class IneligiblePlacement(RuntimeError):
    """Raised when a start would put a job on a pool its data policy forbids."""


def check_boundary(fleet: Fleet, request: RunRequest) -> None:
    job = request.job
    if not is_eligible(
        request.pool, fleet.tenant(job.tenant), job.data_policy, job.gpu_types, job.sites, job.pools
    ):
        raise IneligiblePlacement(
            f"refused at the backend: job {job.job_id} may not run on {request.pool.name}"
        )


class Backend(Protocol):
    name: str
    time_scale: float  # seconds of job time per wall-clock second (accounting)

    def start(self, request: RunRequest) -> RunHandle: ...

    def poll(self, now: float) -> list[Outcome]: ...

    def cancel(self, job_id: str, handle: RunHandle) -> None: ...

    def recover(
        self, job_id: str, handle: RunHandle | None, attempt: int, now: float
    ) -> Outcome | RunHandle | None:
        """After a restart: an Outcome if the run ended, its (possibly updated) handle if
        it is still running and now tracked again, or None if it never started."""
        ...

    def log_path(self, job_id: str, handle: RunHandle, stream: str) -> str | None: ...

    # Optional (read_model falls back to opening log_path): the stream opened for reading
    # without following links the job could have planted (log_patterns.open_confined).
    # def open_log(self, job_id: str, handle: RunHandle, stream: str) -> BinaryIO | None

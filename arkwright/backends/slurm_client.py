"""What the Slurm backend needs from a cluster, whichever way it is reached.

Two clients offer it: `SlurmCli` runs Slurm's own commands (here, or on a login node over
ssh) and `SlurmRest` talks to slurmrestd with a JWT. The backend's decisions (state
mapping, faults, recovery) are written once, against this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SlurmError(RuntimeError):
    """Slurm answered and said no (bad partition, unknown account, unknown job...)."""


class AccountingNotYet(Exception):
    """The site keeps accounting, but it could not answer now (slurmdbd or its database
    away) or has no record of this submission yet: slurmctld sends a job's records to
    slurmdbd after the fact, and under load they lag. Not an answer: ask again."""


@dataclass(frozen=True)
class SlurmStatus:
    state: str  # Slurm's job state, e.g. RUNNING, NODE_FAIL
    reason: str
    ended_at: float | None
    exit_code: int | None = None  # where the client learns it with the state
    restarts: int = 0  # times Slurm requeued the job by itself


@dataclass(frozen=True)
class Submission:
    """One batch job as Arkwright asks Slurm for it."""

    name: str
    comment: str
    partition: str
    nodes: int
    gres_per_node: str  # e.g. "gpu:gh200:4"
    time_limit_min: int
    work_dir: str  # logs and the exit record go here; the job runs here
    account: str | None = None
    qos: str | None = None
    user: str | None = None  # the OS account to submit as; None: the service's own

    @property
    def stdout(self) -> str:
        return f"{self.work_dir}/stdout.log"

    @property
    def stderr(self) -> str:
        return f"{self.work_dir}/stderr.log"


class SlurmClient(Protocol):
    def prepare(self, work_dir: str) -> None:
        """Make the job's directory (Slurm does not create output directories)."""

    def submit(self, script: str, submission: Submission) -> str:
        """The new job's Slurm id."""

    def statuses(self, slurm_ids: list[str]) -> dict[str, SlurmStatus]:
        """The jobs the controller still knows, by id."""

    def find(self, names: list[str]) -> list[tuple[str, str]]:
        """(Slurm id, comment) of every job the controller knows by one of these names."""

    def cancel(self, slurm_id: str) -> None: ...

    def exit_code(self, slurm_id: str) -> int | None: ...

    def accounting(
        self, slurm_id: str, name: str, submitted_at: float
    ) -> tuple[SlurmStatus, int | None] | None:
        """What the site's accounting (sacct) recorded for the job of this id and name
        submitted at about `submitted_at` (ids are reused when a controller loses its
        state), or None where the site keeps no accounting. Raises AccountingNotYet
        where it keeps some but cannot say now or has no record of this job yet."""

    def read_file(self, path: str) -> str | None: ...

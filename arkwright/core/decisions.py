"""What the core tells its driver to do. The driver (simulator or service) carries them out."""

from __future__ import annotations

from dataclasses import dataclass

from arkwright.core.job import Job
from arkwright.core.pool_state import Allocation


@dataclass(frozen=True, slots=True)
class Start:
    job: Job
    pool: int
    allocation: Allocation
    at: float


@dataclass(frozen=True, slots=True)
class Preempt:
    job: Job
    pool: int
    reason: str
    at: float
    work_lost_s: float  # reference-GPU seconds thrown away (since the last checkpoint)
    gpus: int  # GPUs it held until now
    ran_from: float  # when this run began


@dataclass(frozen=True, slots=True)
class Reject:
    job: Job
    reason: str
    at: float


Decision = Start | Preempt | Reject

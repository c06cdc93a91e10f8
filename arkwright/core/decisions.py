"""What the core tells its driver to do. The driver (simulator or service) carries them out."""

from __future__ import annotations

from dataclasses import dataclass

from arkwright.core.job import Job
from arkwright.core.pickling import by_constructor
from arkwright.core.pool_state import Allocation


@dataclass(frozen=True, slots=True)
class Start:
    job: Job
    pool: int
    allocation: Allocation
    at: float

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


@dataclass(frozen=True, slots=True)
class Preempt:
    job: Job
    pool: int
    reason: str
    at: float
    work_lost_s: float  # reference-GPU seconds thrown away (since the last checkpoint)
    gpus: int  # GPUs it held until now
    ran_from: float  # when this run began
    allocation: Allocation = ()  # the (node, GPUs) pairs it held until now

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


@dataclass(frozen=True, slots=True)
class Reject:
    job: Job
    reason: str
    at: float

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


@dataclass(frozen=True, slots=True)
class Cancelled(Reject):
    """The core ended a waiting job itself: its dependency can never be satisfied and it
    asked for that (--kill-on-invalid-dep). Drivers that know only Reject treat it so."""


@dataclass(frozen=True, slots=True)
class Held:
    """A job waits outside the queue (`reason`: Dependency, DependencyNeverSatisfied,
    JobArrayTaskLimit), or no longer does (`reason` empty): for the driver to show."""

    job: Job
    reason: str
    at: float

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


Decision = Start | Preempt | Reject | Held

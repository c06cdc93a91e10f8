"""A job: a gang of GPUs for a duration, with its data policy and scheduling wishes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from arkwright.core.dependencies import Dependency
from arkwright.core.policy_data import DataPolicy


class PriorityClass(IntEnum):
    """Slurm QOS-like classes; higher runs first and may preempt lower preemptible work."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @classmethod
    def parse(cls, text: str | int | None) -> PriorityClass:
        if text is None or text == "":
            return cls.NORMAL
        if isinstance(text, int) or str(text).strip().lstrip("-").isdigit():
            value = int(text)
            if not 0 <= value <= 3:
                raise ValueError(f"priority {value} out of range 0..3")
            return cls(value)
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown priority {text!r} (use low, normal, high, urgent or 0..3)"
            ) from None


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(slots=True, eq=False)
class Job:
    """Spec fields first (fixed at submission), then the state the core keeps for it."""

    job_id: str
    tenant: str
    gpus: int
    duration_s: float  # run time on the reference GPU
    submit_time: float
    time_limit_s: float | None = None  # requested run time (reference GPU); backfill uses it
    data_policy: DataPolicy = field(default_factory=DataPolicy)
    gpu_types: frozenset[str] | None = None  # acceptable models; None: any
    sites: frozenset[str] | None = None  # sites the submitter allows; None: any eligible
    job_type: str = "default"
    priority: PriorityClass = PriorityClass.NORMAL
    preemptible: bool = True
    checkpoint_interval_s: float | None = None
    deadline: float | None = None  # absolute time by which the job should finish
    flexible: bool = False  # may be deferred to cleaner hours (carbon policy)
    pools: frozenset[str] | None = None  # pools ("site/pool") the submitter allows; None: any
    nodes: int = 0  # a fixed node shape: exactly this many nodes, gpus / nodes on each; 0: any
    dependency: Dependency | None = None  # sbatch --dependency (core/dependencies.py)
    owner_name: str | None = None  # (user, job name): what Slurm's `singleton` groups by
    array_id: str | None = None  # the array this task belongs to (sbatch --array)
    array_limit: int = 0  # the array's throttle (--array=...%N); 0: none

    # State owned by the scheduler core.
    seq: int = -1
    state: JobState = JobState.PENDING
    eligibility_class: int = -1
    pool_mask: int = 0  # eligible pools whose site time limit admits this job's request
    work_done_s: float = 0.0  # reference-GPU seconds saved by checkpoints / completed
    pool_index: int = -1
    allocation: tuple[tuple[int, int], ...] = ()  # (node, gpus) pairs in the pool
    allocated_gpus: int = 0
    started_at: float = -1.0
    first_started_at: float = -1.0
    expected_end: float = 0.0  # by time limit: what backfill plans around
    speed: float = 1.0  # throughput on the current pool relative to the reference GPU
    preemptions: int = 0
    attempts: int = 0  # runs started; a driver's stale finish events carry an older count
    held: str = ""  # why it waits outside the queue (Slurm's reason names); "": not held

    def spec_copy(self) -> Job:
        """A fresh job with the same spec and none of the core's state."""
        return Job(**{name: getattr(self, name) for name in SPEC_FIELDS})

    @property
    def fit_size(self) -> int:
        """GPUs that must come free together on one node before the job can fit anywhere:
        what the pass's "fits nowhere" shortcuts compare with a pool's largest fit."""
        return self.gpus // self.nodes if self.nodes else self.gpus

    @property
    def requested_s(self) -> float:
        return self.time_limit_s if self.time_limit_s is not None else self.duration_s

    @property
    def remaining_request_s(self) -> float:
        """Reference-GPU seconds of its time limit the job still asks for: what backfill
        plans its end by, and budgets its cost."""
        return max(self.requested_s - self.work_done_s, 0.0)

    @property
    def remaining_s(self) -> float:
        return max(self.duration_s - self.work_done_s, 0.0)


SPEC_FIELDS = tuple(
    name
    for name in Job.__dataclass_fields__
    if name
    not in (
        "seq",
        "state",
        "eligibility_class",
        "pool_mask",
        "work_done_s",
        "pool_index",
        "allocation",
        "allocated_gpus",
        "started_at",
        "first_started_at",
        "expected_end",
        "speed",
        "preemptions",
        "attempts",
        "held",
    )
)

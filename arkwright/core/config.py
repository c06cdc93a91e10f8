"""The scheduler core's settings, with the reason for each default."""

from __future__ import annotations

from dataclasses import dataclass, field

from arkwright.core.budget import Budget, OverBudget
from arkwright.core.pickling import by_constructor


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    # Preemption searches are the costly part of a pass; bound them per pass.
    max_preemption_attempts_per_pass: int = 4
    # How many recent endings the core remembers for dependencies that name a job after
    # it ended; drivers pass older outcomes with the submission (`Scheduler.submit`).
    remembered_endings: int = 65_536
    # Carbon policy: defer a flexible job while waiting could cut its site's intensity by
    # at least this fraction within its slack.
    carbon_min_saving: float = 0.15
    carbon_lookahead_s: float = 24 * 3600.0
    # Hetero: don't start on a pool slower than this fraction of the job's best eligible
    # speed, unless the job has already waited as long as it would run on the best one.
    hetero_min_speed_fraction: float = 0.5
    budgets: dict[str, Budget] = field(default_factory=dict)
    over_budget: OverBudget = OverBudget.HOLD
    # Bounded passes, as Slurm bounds its schedulers (default_queue_depth, bf_max_job_test,
    # bf_max_job_user_part): jobs examined per pass, and per programme per pass. Whole
    # lists of jobs that could do nothing in the pass are skipped without counting; jobs
    # passed over inside a list (too large for the room left) count, though passing them
    # over costs a bisection, not a walk.
    max_jobs_per_pass: int = 1000
    max_jobs_per_tenant_per_pass: int = 400
    # A pass made for an event (an arrival, a finish) rather than the periodic tick looks
    # at no more than this (as Slurm's event-triggered pass stops at default_queue_depth,
    # 100, and leaves the deep look to its periodic backfill pass): the work per event
    # stays bounded when the queue grows. The tick's full pass keeps max_jobs_per_pass.
    max_jobs_per_event_pass: int = 100
    # Preemption that wastes little (preemption.py says why each exists).
    # Reclaim frees only the victims a gang needs (`preemption.fill_back`), about half as
    # many per reclaim as the plain walk; that buys a reclaim that starts sooner (a 1 h
    # wait, 5% hysteresis, a 3-point recent-use gap) for the same churn. On make run's
    # workload (bench/core_ab.py): 1.8% of jobs preempted, 0.157% of GPU-hours lost, the
    # worst programme 1.56 points below min(entitled, demand); the old 2 h / 10% / 4 points
    # left programmes 2.0-2.1 points below once fill-back cut the victims.
    preempt_exempt_s: float = 3600.0
    reclaim_hysteresis: float = 0.05
    reclaim_after_s: float = 3600.0
    preempt_start_horizon_s: float = 3 * 3600.0
    # Only jobs of this priority class or above preempt lower classes; below it, priority
    # orders the queue but takes nothing (normal work waits for low work to end).
    preemptor_min_priority: int = 3
    # Reclaim only for a programme whose share of recent use (decayed with this
    # half-life) is below its entitlement by this margin.
    usage_half_life_s: float = 3 * 24 * 3600.0
    reclaim_history_margin: float = 0.03

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)

"""When a job could start: sbatch --test-only and squeue --start.

A lower bound, as Slurm's own estimate is: running jobs are taken to end at their time
limits; work queued ahead is not counted, except the backfill reservation the job holds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from arkwright.core.gang import fits_now
from arkwright.core.job import Job

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


def earliest_start(s: Scheduler, job: Job, now: float) -> tuple[float | None, int | None]:
    """(earliest time, pool) the job could start if running jobs end at their time
    limits — a lower bound: work queued ahead of it is not counted, except a backfill
    reservation the job holds. (None, None) when it is held, or can never start."""
    if job.held:
        return None, None
    cls = s._classify(job)
    mask = job.pool_mask if job.job_id in s.jobs else s.admission.usable_mask(job, cls)
    holding = s.reservations.pool_of.get(job.job_id)
    if holding is not None:
        return max(s.reservations.shadow_time(holding, now), now), holding
    best: tuple[float, int | None] = (math.inf, None)
    for i in cls.pools:
        if not mask >> i & 1 or s.cordoned_mask >> i & 1:
            continue
        state = s.pool_states[i]
        fits = fits_now(state, job)
        when = now if fits else s.reservations.earliest_start(job, i, now)
        if when < best[0]:
            best = (when, i)
    return (best[0], best[1]) if math.isfinite(best[0]) else (None, None)

"""Where a job that fits starts: the eligible pool the placement strategy scores best,
among those whose backfill reservation and budget allow it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from arkwright.core.eligibility import EligibilityClass
from arkwright.core.gang import fits_now
from arkwright.core.job import Job

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


def choose_pool(
    s: Scheduler, job: Job, cls: EligibilityClass, usable: int, now: float
) -> int | None:
    """The eligible pool to start on now, or None. Eligibility is re-checked here."""
    best: tuple | None = None
    best_pool: int | None = None
    pools = s.fleet.pools
    speeds = s.speeds(job.job_type)
    book = s.reservations
    ledger = s.ledger
    placement = s.placement
    slowest_allowed = placement.min_speed(job, speeds, cls.pools, now)
    for i in cls.pools:
        if not usable >> i & 1:
            continue
        state = s.pool_states[i]
        if not fits_now(state, job):
            continue
        pool = pools[i]
        speed = speeds[i]
        if speed < slowest_allowed:
            continue
        # Scored first: a pool that would not win needs no reservation check (the
        # dearest step: a stale shadow time is replanned there).
        score = placement.score(pool, state, speed, job, now)
        if best is not None and not score < best:
            continue
        reservation = book.by_pool[i]
        if (
            reservation is not None
            and reservation.holder is not job
            and not book.allows(job, reservation, pool, speed, now)
        ):
            continue
        if ledger is not None and not ledger.affordable_now(job, pool, speed):
            continue
        best, best_pool = score, i
    return best_pool

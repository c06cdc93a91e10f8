"""Admission: what the core decides once, when a job arrives.

Which of its class's pools a job may use (site wall-time limits), and whether it can
never run at all (no eligible pool, too big for every pool, too long for every site,
unaffordable for good under a rejecting budget).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arkwright.core.budget import OverBudget
from arkwright.core.eligibility import EligibilityClass
from arkwright.core.gang import can_ever_hold
from arkwright.core.job import Job

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


class Admission:
    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        pools = scheduler.fleet.pools
        self._duration_limits = [p.site.max_job_duration_s for p in pools]
        self._limited_mask = sum(
            1 << i for i, limit in enumerate(self._duration_limits) if limit is not None
        )

    def usable_mask(self, job: Job, cls: EligibilityClass) -> int:
        """The class's pools less those whose site wall-time limit is below the request, and
        (for a job of a fixed node shape) those whose nodes cannot hold the shape."""
        mask = cls.pool_mask
        if job.nodes:
            pools = self._s.fleet.pools
            for i in cls.pools:
                if not can_ever_hold(job, pools[i]):
                    mask &= ~(1 << i)
        if not self._limited_mask & mask:
            return mask
        speeds = self._s.speeds(job.job_type)
        for i in cls.pools:
            limit = self._duration_limits[i]
            if limit is not None and job.requested_s / speeds[i] > limit:
                mask &= ~(1 << i)
        return mask

    def refusal(self, job: Job, cls: EligibilityClass) -> str | None:
        return self.never_fits_reason(job, cls) or self.never_affordable_reason(job, cls)

    def never_fits_reason(self, job: Job, cls: EligibilityClass) -> str | None:
        s = self._s
        if not cls.pools:
            return s.eligibility.explain_none(
                job.tenant, job.data_policy, job.gpu_types, job.sites, job.pools
            )
        pools = [s.fleet.pools[i] for i in cls.pools]
        if not any(can_ever_hold(job, p) for p in pools):
            if job.nodes:
                return (
                    f"asks for {job.nodes} nodes with {job.gpus // job.nodes} GPUs each; "
                    "no eligible pool has that many nodes of that size"
                )
            largest = max(pools, key=lambda p: p.gpus)
            return (
                f"asks for {job.gpus} GPUs; the largest eligible pool ({largest.name}) "
                f"has {largest.gpus}"
            )
        if not job.pool_mask:
            return f"asks for {job.requested_s:.0f} s; every eligible site's limit is shorter"
        return None

    def never_affordable_reason(self, job: Job, cls: EligibilityClass) -> str | None:
        s = self._s
        ledger = s.ledger
        if ledger is None or s.config.over_budget is not OverBudget.REJECT:
            return None
        pools = [s.fleet.pools[i] for i in cls.pools if job.pool_mask >> i & 1]
        speeds = s.speeds(job.job_type)
        if ledger.ever_affordable(job, pools, speeds):
            return None
        budget = ledger.budgets[job.tenant]
        cheapest = min(ledger.most_it_could_cost(job, p, speeds[p.index]) for p in pools)
        return (
            f"over budget: programme {job.tenant} has "
            f"{budget.label(budget.limit - ledger.spent[job.tenant])} left of "
            f"{budget.label(budget.limit)}; this job needs up to {budget.label(cheapest)}"
        )

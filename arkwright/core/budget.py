"""Programme budgets in GPU-hours or pounds, enforced at start time.

Spend is what finished and preempted runs used; a running job also commits the most it
could still use (its allocated GPUs until its time limit). A job starts only on a pool
where spend + commitments + its own maximum stay within the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from arkwright.core.fleet import Pool
from arkwright.core.gang import held_gpus
from arkwright.core.job import Job
from arkwright.core.pickling import by_constructor


class BudgetUnit(StrEnum):
    GPU_HOURS = "gpuh"
    GBP = "gbp"


class OverBudget(StrEnum):
    HOLD = "hold"  # the job waits (for a bigger budget, or a cheaper pool)
    REJECT = "reject"  # the job is rejected once its programme can never afford it


@dataclass(frozen=True, slots=True)
class Budget:
    limit: float
    unit: BudgetUnit

    @classmethod
    def parse(cls, text: str) -> Budget:
        """'500000gpuh', '2e6gbp', '£2000000' (a bare number means GPU-hours)."""
        raw = text.strip().lower().replace(",", "").replace("_", "")
        unit = BudgetUnit.GPU_HOURS
        if raw.startswith("£"):
            raw, unit = raw[1:], BudgetUnit.GBP
        for suffix, named in (("gpuh", BudgetUnit.GPU_HOURS), ("gbp", BudgetUnit.GBP)):
            if raw.endswith(suffix):
                raw, unit = raw[: -len(suffix)], named
        try:
            limit = float(raw)
        except ValueError:
            raise ValueError(
                f"budget {text!r}: use a number with gpuh or gbp, e.g. 500000gpuh or 2e6gbp"
            ) from None
        if not limit >= 0:
            raise ValueError(f"budget {text!r} must not be negative")
        return cls(limit, unit)

    def label(self, amount: float) -> str:
        return f"£{amount:,.0f}" if self.unit is BudgetUnit.GBP else f"{amount:,.0f} GPU-h"

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


class BudgetLedger:
    def __init__(self, budgets: dict[str, Budget]) -> None:
        self.budgets = budgets
        self.spent: dict[str, float] = {name: 0.0 for name in budgets}
        self.committed: dict[str, float] = {name: 0.0 for name in budgets}
        self._commitments: dict[str, float] = {}

    def _amount(self, budget: Budget, pool: Pool, gpus: int, seconds: float) -> float:
        hours = gpus * seconds / 3600.0
        return hours * pool.price_gbp_per_gpu_hour if budget.unit is BudgetUnit.GBP else hours

    def most_it_could_cost(self, job: Job, pool: Pool, speed: float) -> float:
        budget = self.budgets[job.tenant]
        seconds = job.remaining_request_s / speed
        return self._amount(budget, pool, held_gpus(job, pool), seconds)

    def left(self, tenant: str) -> float:
        return self.budgets[tenant].limit - self.spent[tenant] - self.committed[tenant]

    def affordable_now(self, job: Job, pool: Pool, speed: float) -> bool:
        if job.tenant not in self.budgets:
            return True
        return self.most_it_could_cost(job, pool, speed) <= self.left(job.tenant) + 1e-9

    def ever_affordable(self, job: Job, pools: list[Pool], speeds: list[float]) -> bool:
        """Could this job start somewhere once every running job of its programme ended?"""
        if job.tenant not in self.budgets:
            return True
        room = self.budgets[job.tenant].limit - self.spent[job.tenant]
        return any(
            self.most_it_could_cost(job, pool, speeds[pool.index]) <= room + 1e-9 for pool in pools
        )

    def started(self, job: Job, pool: Pool) -> None:
        if job.tenant in self.budgets:
            amount = self.most_it_could_cost(job, pool, job.speed)
            self._commitments[job.job_id] = amount
            self.committed[job.tenant] += amount

    def stopped(self, job: Job, pool: Pool, ran_s: float) -> None:
        if job.tenant in self.budgets:
            self.committed[job.tenant] -= self._commitments.pop(job.job_id, 0.0)
            budget = self.budgets[job.tenant]
            self.spent[job.tenant] += self._amount(budget, pool, job.allocated_gpus, ran_s)

"""Carbon deferral: should a flexible job wait for a cleaner hour on an eligible site?"""

from __future__ import annotations

from arkwright.core.eligibility import EligibilityClass
from arkwright.core.fleet import Fleet
from arkwright.core.job import Job


class CarbonDeferral:
    def __init__(self, fleet: Fleet, min_saving: float, lookahead_s: float) -> None:
        self._pools = fleet.pools
        self.min_saving = min_saving
        self.lookahead_s = lookahead_s
        self._memo: dict[tuple[int, int], bool] = {}
        self._memo_hour = -1

    def defer_until(
        self, job: Job, cls: EligibilityClass, speeds: list[float], now: float
    ) -> float | None:
        """None: the job should start now where it fits. Otherwise it waits for a cleaner
        hour, and this is when to ask again: the next hour, when the forecast moves on,
        or sooner where its deadline begins to shorten the horizon or ends the wait.
        Between now and then the answer cannot change, so the job need not be looked at
        (as Slurm leaves a job alone until its BeginTime)."""
        run_s = self._run_s(job, cls, speeds)
        if not self._defer(job, cls, run_s, now):
            return None
        wake = (now // 3600 + 1) * 3600
        if job.deadline is not None:
            # The horizon is min(lookahead, slack): it starts to follow the slack, and
            # falls under an hour, at these instants (one second's grace for rounding).
            latest_start = job.deadline - run_s * 1.1
            for turn in (latest_start - self.lookahead_s, latest_start - 3600):
                if now < turn + 1.0 < wake:
                    wake = turn + 1.0
        return wake

    @staticmethod
    def _run_s(job: Job, cls: EligibilityClass, speeds: list[float]) -> float:
        slowest = min(speeds[i] for i in cls.pools if job.pool_mask >> i & 1)
        return (job.requested_s - job.work_done_s) / slowest

    def _defer(self, job: Job, cls: EligibilityClass, run_s: float, now: float) -> bool:
        """True when waiting (within the job's slack) would find a clearly cleaner hour on
        an eligible site. Never defers past the point where the deadline is at risk: the
        slack (`run_s`) is measured on the slowest pool the job could end up on."""
        horizon = self.lookahead_s
        if job.deadline is not None:
            horizon = min(horizon, job.deadline - now - run_s * 1.1)
        if horizon < 3600:
            return False
        # The answer depends only on the hour, the class and whole hours of slack.
        hour = int(now // 3600)
        if hour != self._memo_hour:
            self._memo.clear()
            self._memo_hour = hour
        key = (cls.index, int((now + horizon) // 3600))
        found = self._memo.get(key)
        if found is not None:
            return found
        pools = self._pools
        best_now = min(pools[i].site.carbon_at(now) for i in cls.pools)
        best_later = best_now
        t = now + 3600 - (now % 3600)
        while t <= now + horizon:
            best_later = min(best_later, min(pools[i].site.carbon_at(t) for i in cls.pools))
            t += 3600
        defer = best_later < best_now * (1 - self.min_saving)
        self._memo[key] = defer
        return defer

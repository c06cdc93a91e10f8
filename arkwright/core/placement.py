"""How to choose among the eligible pools that can take a job now. Lower scores win.

- pack (the default): the pool with the fewest free GPUs, so whole free nodes are kept
  for big gangs. Blind to GPU speed, as a multi-partition Slurm submission is.
- hetero: effective throughput, in the spirit of Gavel. A job's speed on the pool is
  weighed by its comparative advantage there (its speed over the pool's typical speed
  across job types), so work goes where it gains most relative to what else could use the
  same GPUs; a little weight on headroom spreads load instead of filling one pool first.
- carbon: grams of CO2 per unit of work at this hour (grid intensity × PUE × watts ÷
  speed), so work moves to cleaner sites and to GPUs that do more per joule.
"""

from __future__ import annotations

from arkwright.core.fleet import Pool
from arkwright.core.job import Job
from arkwright.core.pool_state import PoolState


def pack_score(pool: Pool, state: PoolState) -> tuple:
    return (state.free_gpus, pool.index)


def hetero_score(
    pool: Pool, state: PoolState, speed: float, typical_speed: float, gpus: int
) -> tuple:
    headroom = max(state.free_gpus - gpus, 0) / state.total_gpus
    advantage = (speed / typical_speed) ** 0.5 if typical_speed > 0 else 1.0
    return (-(speed * advantage * (0.85 + 0.15 * headroom)), pool.index)


def carbon_score(pool: Pool, speed: float, now: float) -> tuple:
    site = pool.site
    grams_per_work = site.carbon_at(now) * site.pue * pool.watts_per_gpu / max(speed, 1e-9)
    return (grams_per_work, -speed, pool.index)


class PlacementStrategy:
    """What `pool_choice` asks of a strategy. A base class, not a union: the compiled
    core then calls it through its method table (`ordering.QueueOrder` says why)."""

    def min_speed(self, job: Job, speeds: list[float], pools: tuple[int, ...], now: float) -> float:
        """The slowest speed the job may accept on a pool now."""
        return 0.0

    def score(self, pool: Pool, state: PoolState, speed: float, job: Job, now: float) -> tuple:
        raise NotImplementedError


class PackPlacement(PlacementStrategy):
    """Fill the fullest pool first; speed-blind."""

    def min_speed(self, job: Job, speeds: list[float], pools: tuple[int, ...], now: float) -> float:
        return 0.0

    def score(self, pool: Pool, state: PoolState, speed: float, job: Job, now: float) -> tuple:
        return pack_score(pool, state)


class HeteroPlacement(PlacementStrategy):
    """Gavel-like throughput-aware choice, refusing much slower GPUs until the job has
    waited as long as it would run on its best one."""

    def __init__(self, typical_speed: list[float], min_speed_fraction: float) -> None:
        self.typical_speed = typical_speed
        self.min_speed_fraction = min_speed_fraction

    def min_speed(self, job: Job, speeds: list[float], pools: tuple[int, ...], now: float) -> float:
        # A loop, not max() over a generator: asked at every start, and the compiled
        # core builds a generator object for the latter.
        best_speed = 0.0
        mask = job.pool_mask
        for i in pools:
            if mask >> i & 1 and speeds[i] > best_speed:
                best_speed = speeds[i]
        waited = now - job.submit_time
        if waited < (job.requested_s - job.work_done_s) / best_speed:
            return best_speed * self.min_speed_fraction
        return 0.0

    def score(self, pool: Pool, state: PoolState, speed: float, job: Job, now: float) -> tuple:
        return hetero_score(pool, state, speed, self.typical_speed[pool.index], job.gpus)


class CarbonPlacement(HeteroPlacement):
    """Least CO2 per unit of work now. With `hetero` also named, keeps hetero's rule
    against much slower GPUs; alone, accepts any eligible GPU."""

    def __init__(self, hetero: HeteroPlacement | None) -> None:
        self._hetero = hetero

    def min_speed(self, job: Job, speeds: list[float], pools: tuple[int, ...], now: float) -> float:
        """Hetero's floor, if named; and for a job with a deadline, the speed at which its
        request ends by then, where some eligible pool has it: a cleaner, slower pool
        must not cost a deadline a faster one would meet (it may wait for that one).
        Carbon deferral keeps the same promise in time (`carbon.CarbonDeferral`)."""
        floor = self._hetero.min_speed(job, speeds, pools, now) if self._hetero else 0.0
        deadline = job.deadline
        if deadline is None or deadline <= now:
            return floor
        needed = job.remaining_request_s / (deadline - now)
        if needed <= floor:
            return floor
        mask = job.pool_mask
        for i in pools:
            if mask >> i & 1 and speeds[i] >= needed:
                return needed
        return floor  # no pool meets it: place as if it had none

    def score(self, pool: Pool, state: PoolState, speed: float, job: Job, now: float) -> tuple:
        return carbon_score(pool, speed, now)


def placement_for(
    carbon: bool, hetero: bool, typical_speed: list[float], min_speed_fraction: float
) -> PlacementStrategy:
    """Chosen once per scheduler, from the policy's names."""
    het = HeteroPlacement(typical_speed, min_speed_fraction) if hetero else None
    if carbon:
        return CarbonPlacement(het)
    return het or PackPlacement()

# Frozen reference copy (tests/core/legacy/__init__.py says why). Do not edit.
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
from tests.core.legacy.pool_state_v1 import PoolState


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

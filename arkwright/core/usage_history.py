"""Each programme's recent use, decayed with a half-life (Slurm's PriorityDecayHalfLife).

Fair share's order looks at GPUs in use now; reclaim looks at history as well, so that a
programme is only given back capacity by preemption when it has really fallen behind its
entitlement over the recent past, not at every dip. The integral is exact for use that is
constant between two calls to `advance`, which is what the core sees between passes.
"""

from __future__ import annotations

import math


class UsageHistory:
    __slots__ = ("_gpu_seconds", "_half_life_s", "_last", "_total")

    def __init__(self, half_life_s: float) -> None:
        self._half_life_s = half_life_s
        self._gpu_seconds: dict[str, float] = {}
        self._total = 0.0
        self._last: float | None = None

    def advance(self, now: float, usage_gpus: dict[str, int]) -> None:
        last = self._last
        self._last = now
        if last is None or now <= last:
            return
        dt = now - last
        decay = 0.5 ** (dt / self._half_life_s)
        # GPU-seconds added over dt by constant use, decayed to `now`.
        per_gpu = (1.0 - decay) * self._half_life_s / math.log(2)
        history = self._gpu_seconds
        for tenant in history:
            history[tenant] *= decay
        for tenant, gpus in usage_gpus.items():
            if gpus:
                history[tenant] = history.get(tenant, 0.0) + gpus * per_gpu
        self._total = sum(history.values())

    def share(self, tenant: str) -> float | None:
        """The programme's fraction of recent use (None before any use is recorded)."""
        if self._total <= 0:
            return None
        return self._gpu_seconds.get(tenant, 0.0) / self._total

"""Each programme's recent use, decayed with a half-life (Slurm's PriorityDecayHalfLife).

Fair share's order looks at GPUs in use now; reclaim looks at history as well, so that a
programme is only given back capacity by preemption when it has really fallen behind its
entitlement over the recent past, not at every dip. The integral is exact for use that is
constant between two calls to `advance`, which is what the core sees between passes.

A programme's use changes only when one of its jobs starts or stops, and the shares are
read far less often than that (in a fair-share run, one read of new values per dozen
starts and stops). So each programme's integral is brought up to date only when its own
use is about to change, and all of them only when a share is read: a start or a stop
costs one decay, not one per programme.
"""

from __future__ import annotations

import math


class UsageHistory:
    __slots__ = (
        "_by_tenant",
        "_half_life_s",
        "_last",
        "_per_gpu_s",
        "_read_at",
        "_total",
        "_usage",
        "_version",
    )

    def __init__(self, half_life_s: float, usage_gpus: dict[str, int]) -> None:
        self._half_life_s = half_life_s
        # GPU-seconds one GPU adds over an infinite stretch, decayed (a unit's integral).
        self._per_gpu_s = half_life_s / math.log(2)
        # Each programme's use now: the running set's own dict, read, never written.
        self._usage = usage_gpus
        # Per programme: [decayed GPU-seconds, the time they are integrated up to].
        self._by_tenant: dict[str, list[float]] = {}
        self._last: float | None = None  # the time of the latest `advance`
        self._version = 0  # bumped by every `advance`: what `_read_at` is checked against
        self._read_at = -1  # the version `_total` was summed at
        self._total = 0.0

    def advance(self, now: float, tenant: str) -> None:
        """`tenant`'s use is about to change at `now`: integrate what it used until now."""
        self._last = now
        self._version += 1
        entry = self._by_tenant.get(tenant)
        if entry is None:
            # Its first job: it used nothing before (every change comes through here).
            self._by_tenant[tenant] = [0.0, now]
        else:
            self._bring(entry, now, self._usage.get(tenant, 0))

    def _bring(self, entry: list[float], now: float, gpus: int) -> None:
        """Integrate constant use of `gpus` from the entry's time up to `now`. A `now`
        earlier than that (a restart adopting runs that began in the past) adds nothing
        and restarts the integral from `now`, as a clock that went back would."""
        since = entry[1]
        entry[1] = now
        if now <= since:
            return
        decay = 0.5 ** ((now - since) / self._half_life_s)
        entry[0] = entry[0] * decay + gpus * (1.0 - decay) * self._per_gpu_s

    def share(self, tenant: str) -> float | None:
        """The programme's fraction of recent use, as of the latest `advance` (None before
        any use is recorded)."""
        if self._read_at != self._version:
            self._read_at = self._version
            last = self._last
            total = 0.0
            if last is not None:
                usage = self._usage
                for name, entry in self._by_tenant.items():
                    if entry[1] < last:
                        self._bring(entry, last, usage.get(name, 0))
                    total += entry[0]
            self._total = total
        if self._total <= 0:
            return None
        mine = self._by_tenant.get(tenant)
        return 0.0 if mine is None else mine[0] / self._total

"""Why each pool is cordoned: a set of reasons per pool, one owner for the fact.

An admin's cordon, its site marked down and a rest after its backend failed are three
independent reasons; lifting one leaves the others. The core only hears the
conclusion: cordoned while the set is non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class CordonReason(StrEnum):
    ADMIN = "admin"  # an admin cordoned the pool (pool_states)
    SITE_DOWN = "site-down"  # an admin marked its site down (site_states)
    RESTING = "resting"  # its backend failed a start; starts paused for a while (memory)


class Cordons:
    def __init__(self, pools: int, apply: Callable[[int, bool], None]) -> None:
        self._reasons: list[set[CordonReason]] = [set() for _ in range(pools)]
        self._apply = apply  # the core's set_cordoned(pool, cordoned)

    def set(self, pool: int, reason: CordonReason, on: bool) -> None:
        reasons = self._reasons[pool]
        before = bool(reasons)
        if on:
            reasons.add(reason)
        else:
            reasons.discard(reason)
        if bool(reasons) != before:
            self._apply(pool, bool(reasons))

    def has(self, pool: int, reason: CordonReason) -> bool:
        return reason in self._reasons[pool]

    def reasons(self, pool: int) -> frozenset[CordonReason]:
        return frozenset(self._reasons[pool])

    def cordoned(self, pool: int) -> bool:
        return bool(self._reasons[pool])

    def reapply(self, apply: Callable[[int, bool], None]) -> None:
        """Tell a fresh core (after a rebuild) every pool's state."""
        self._apply = apply
        for pool, reasons in enumerate(self._reasons):
            apply(pool, bool(reasons))

"""Scheduling policies, chosen by name and composed with '+': e.g. `fairshare+backfill+hetero`.

Each name adds one behaviour:

- `fifo`: priority class, then submission order; a job that cannot start blocks the pools
  it could use for every job behind it (Slurm's builtin scheduler).
- `backfill`: EASY backfill per pool: the first blocked job on a pool holds a reservation
  at the earliest time it could start (from running jobs' time limits); later jobs may
  start only if they end before it or fit beside it.
- `fairshare`: weighted fair share between programmes (the one with least current use per
  unit of weight goes first); idle capacity may be borrowed; a programme within its
  entitlement reclaims borrowed capacity by preemption; higher priority classes preempt
  lower preemptible ones. A job that cannot start does not block others (Kueue's
  BestEffortFIFO) unless `backfill` is also named.
- `hetero`: choose the pool by effective throughput for the job's type and by contention.
- `carbon`: place work where it emits least per unit done; flexible jobs wait for cleaner
  hours on eligible sites, never past their deadline.

`hetero` and `carbon` change placement, not order: named alone (or with each other) they
run on `backfill`; with `fifo`, on strict order; with `fairshare`, on fair share.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICY_NAMES = ("fifo", "backfill", "fairshare", "hetero", "carbon")


class UnknownPolicy(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    fairshare: bool = False
    backfill: bool = False
    hetero: bool = False
    carbon: bool = False

    @property
    def strict(self) -> bool:
        """Head-of-line blocking: only plain FIFO ordering without backfill."""
        return not self.fairshare and not self.backfill

    @property
    def preemption(self) -> bool:
        return self.fairshare

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        parts = [p.strip().lower() for p in text.split("+") if p.strip()]
        if not parts:
            raise UnknownPolicy("empty policy name")
        unknown = [p for p in parts if p not in POLICY_NAMES]
        if unknown:
            raise UnknownPolicy(
                f"unknown policy {unknown[0]!r} in {text!r} (known: {', '.join(POLICY_NAMES)})"
            )
        if len(set(parts)) != len(parts):
            raise UnknownPolicy(f"policy {text!r} names a part twice")
        if "fifo" in parts and ("fairshare" in parts or "backfill" in parts):
            raise UnknownPolicy(
                f"{text!r}: fifo is strict ordering; it cannot compose with fairshare or backfill"
            )
        fairshare = "fairshare" in parts
        # Backfill is the start rule unless FIFO is asked for, or fair share (which does
        # not block) is named without it: `hetero` or `carbon` alone imply backfill.
        backfill = "backfill" in parts or ("fifo" not in parts and not fairshare)
        return cls(
            name="+".join(parts),
            fairshare=fairshare,
            backfill=backfill,
            hetero="hetero" in parts,
            carbon="carbon" in parts,
        )

"""The reservation book for EASY backfill: per pool, the first blocked job in order holds
a promise of the pool from its shadow time on; later jobs may start there only if they
end by then or use nodes the holder won't need.

The book owns the reservations and their shadow times; shadow times come from an
incrementally kept index per pool (`shadow.ShadowIndex`), not from a walk over the
pool's running jobs at every replan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from arkwright.core.eligibility import EligibilityClass
from arkwright.core.fleet import Fleet, Pool
from arkwright.core.gang import can_ever_hold, shape_on
from arkwright.core.job import Job
from arkwright.core.ordering import QueueOrder
from arkwright.core.pool_state import PoolState
from arkwright.core.queue import ListKey, list_key
from arkwright.core.running import RunningSet
from arkwright.core.shadow import ShadowIndex

NO_HOLDERS: list[Job] = []  # `holders_in` of a list with none (never written to)


@dataclass(slots=True)
class Reservation:
    """The pool is promised to `holder` from `shadow_time` on."""

    holder: Job
    pool: int
    shadow_time: float
    spare_nodes: int  # nodes suitable for the holder at shadow time that it won't need
    stale: bool = False


class ReservationBook:
    def __init__(
        self,
        fleet: Fleet,
        pool_states: list[PoolState],
        running: RunningSet,
        order: QueueOrder,
    ) -> None:
        self._pools = fleet.pools
        self._states = pool_states
        self._running = running
        self._order = order
        # Per pool, its reservation or None: a list, as the gate and the pool choice look
        # one up per pool of every list they weigh (a dict's lookup boxed and hashed the
        # index each time).
        self.by_pool: list[Reservation | None] = [None] * len(fleet.pools)
        self.pool_of: dict[str, int] = {}  # holder's job id -> pool
        self._holders_by_list: dict[ListKey, list[Job]] = {}  # queue list -> its holders
        # Pools whose reservation was dropped, moved to another holder or made stale (its
        # shadow time may move later) since `take_loosened`: where a job a pass ruled
        # out may act after all (`ordering.in_order` takes such lists up again).
        self._loosened = 0
        # Bumped by every change to a reservation: whether a pass changed the book.
        self.revision = 0
        self._shadows = [
            ShadowIndex(state, running.by_end[i]) for i, state in enumerate(pool_states)
        ]

    def __bool__(self) -> bool:
        return any(reservation is not None for reservation in self.by_pool)

    def get(self, pool_index: int) -> Reservation | None:
        return self.by_pool[pool_index]

    def take_loosened(self) -> int:
        pools = self._loosened
        self._loosened = 0
        return pools

    def check(self) -> None:
        """Each holder is listed under its queue list once, and no one else is (tests)."""
        expected: dict[ListKey, list[str]] = {}
        for reservation in self.by_pool:
            if reservation is None:
                continue
            expected.setdefault(list_key(reservation.holder), []).append(reservation.holder.job_id)
        listed = {key: [j.job_id for j in jobs] for key, jobs in self._holders_by_list.items()}
        if NO_HOLDERS or {k: sorted(v) for k, v in listed.items()} != {
            k: sorted(v) for k, v in expected.items()
        }:
            raise AssertionError("reservation holders by queue list out of step with the book")

    def holders_in(self, key: ListKey) -> list[Job]:
        """The jobs of this queue list that hold a reservation (at most one per pool)."""
        return self._holders_by_list.get(key, NO_HOLDERS)

    # ----------------------------------------------------------------- queries

    def allows(
        self, job: Job, reservation: Reservation, pool: Pool, speed: float, now: float
    ) -> bool:
        """May `job` start on this reserved pool now without delaying the holder?"""
        order = self._order
        if order.before(job, reservation.holder):
            return True  # the reservation belongs to a job behind this one
        if reservation.stale:
            self._refresh(reservation, now)
        end = now + job.remaining_request_s / speed
        if end <= reservation.shadow_time:
            return True
        return self._nodes_consumed(job, pool) <= reservation.spare_nodes

    def shadow_time(self, pool_index: int, now: float) -> float:
        """When the pool's reservation holder is due to start (replanned if stale)."""
        return self.fresh(pool_index, now).shadow_time

    def fresh(self, pool_index: int, now: float) -> Reservation:
        """The pool's reservation, replanned first if it is stale."""
        reservation = self.by_pool[pool_index]
        if reservation is None:
            raise KeyError(pool_index)
        if reservation.stale:
            self._refresh(reservation, now)
        return reservation

    def earliest_start(self, job: Job, pool_index: int, now: float) -> float:
        """When `job` could start on this pool if running jobs end at their time limits."""
        return self._plan(job, pool_index, now)[0]

    # ----------------------------------------------------------------- changes

    def job_started(self, job: Job, pool_index: int, speed: float, now: float) -> None:
        """`job` is about to take GPUs on this pool (call before it is booked as running):
        it gives up its own reservation, and the pool's holder is replanned (a job ahead
        of it) or loses spare nodes (a backfill)."""
        self.drop(job)
        reservation = self.by_pool[pool_index]
        if reservation is None:
            return
        pool = self._pools[pool_index]
        end = now + job.remaining_request_s / speed
        if self._order.before(job, reservation.holder):
            reservation.stale = True
            self._loosened |= 1 << pool_index
            self.revision += 1
        elif end > reservation.shadow_time:
            reservation.spare_nodes -= self._nodes_consumed(job, pool)
            self.revision += 1

    def job_running(self, job: Job) -> None:
        """`job` now holds `job.allocation` on `job.pool_index` until `job.expected_end`."""
        self._shadows[job.pool_index].started(job)

    def gpus_freed(self, job: Job) -> None:
        """`job` is giving back its GPUs (call while it still names its allocation)."""
        pool_index = job.pool_index
        self._shadows[pool_index].ended(job)
        reservation = self.by_pool[pool_index]
        if reservation is not None:
            reservation.stale = True
            self._loosened |= 1 << pool_index
            self.revision += 1

    def drop(self, job: Job) -> None:
        pool_index = self.pool_of.pop(job.job_id, None)
        if pool_index is not None:
            self.by_pool[pool_index] = None
            self._count_holder(job, -1)
            self._loosened |= 1 << pool_index
            self.revision += 1

    def _count_holder(self, holder: Job, change: int) -> None:
        key = list_key(holder)
        if change > 0:
            self._holders_by_list.setdefault(key, []).append(holder)
            return
        holders = self._holders_by_list[key]
        holders.remove(holder)  # Job compares by identity (eq=False)
        if not holders:
            del self._holders_by_list[key]

    def reserve(
        self, job: Job, cls: EligibilityClass, unavailable_mask: int, now: float
    ) -> tuple[int | None, int]:
        """Give a blocked job the earliest reservation among the pools it may claim
        (not `unavailable_mask`: claimed this pass or cordoned; not held by a job ahead).

        Returns (the pool reserved or None, the pools passed over because a job ahead of
        this one holds them): in a pass that meets jobs in order, those stay out of reach
        of every later job too, so the pass need not ask again."""
        best: Reservation | None = None
        pools = self._pools
        held_ahead = 0
        for i in cls.pools:
            if unavailable_mask >> i & 1 or not job.pool_mask >> i & 1:
                continue
            current = self.by_pool[i]
            if current is not None and self._order.before(current.holder, job):
                held_ahead |= 1 << i
                continue
            if not can_ever_hold(job, pools[i]):
                continue
            shadow, spare = self._plan(job, i, now)
            if best is None or shadow < best.shadow_time:
                best = Reservation(job, i, shadow, spare)
        if best is None:
            return None, held_ahead
        displaced = self.by_pool[best.pool]
        if displaced is not None:
            self.pool_of.pop(displaced.holder.job_id, None)
            self._count_holder(displaced.holder, -1)
            self._loosened |= 1 << best.pool
        self.by_pool[best.pool] = best
        self.revision += 1
        self.pool_of[job.job_id] = best.pool
        self._count_holder(job, 1)
        return best.pool, held_ahead

    # ----------------------------------------------------------------- internals

    def _nodes_consumed(self, job: Job, pool: Pool) -> int:
        # Conservative: a single-node job may land on a node the holder counts on.
        return shape_on(job, pool.gpus_per_node).need

    def _refresh(self, reservation: Reservation, now: float) -> None:
        reservation.shadow_time, reservation.spare_nodes = self._plan(
            reservation.holder, reservation.pool, now
        )
        reservation.stale = False

    def _plan(self, job: Job, pool_index: int, now: float) -> tuple[float, int]:
        """(shadow time, spare nodes) for `job` on this pool."""
        shape = shape_on(job, self._states[pool_index].gpus_per_node)
        end, suitable = self._shadows[pool_index].earliest(shape)
        if end == -math.inf:
            shadow = now
        elif end == math.inf:
            shadow = math.inf
        else:
            shadow = max(end, now)
        return shadow, max(suitable - shape.need, 0)

"""The pass's gate: what of a queue list could do anything in this pass, asked by the
merge (`ordering.in_order`) before a list enters its heap and whenever the list's next
job comes up.

A list's jobs share their programme, class and usable pools (`queue.JobList`), so most
of the answer holds for the whole list at once: the room its pools have left, whether a
backfill reservation lets any of them start there (the list's shortest request and
smallest gang against the reservation's shadow time and spare nodes), and whether any
could take a reservation. Jobs that can do nothing are then not examined one by one:
a whole list is skipped, or its jobs too large for the room are passed over in a tight
loop. Every answer errs towards looking (a job the gate lets through may still fail);
`tests/core/test_differential.py` holds the decisions to the frozen core's.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from arkwright.core.budget import OverBudget
from arkwright.core.eligibility import EligibilityClass
from arkwright.core.job import Job
from arkwright.core.ordering import NO_LIMIT, SKIP_LIST, ListGate
from arkwright.core.pass_state import PassState
from arkwright.core.queue import JobList, list_key, static_key

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


class PassGate(ListGate):
    def __init__(self, s: Scheduler, p: PassState) -> None:
        self._s = s
        self._p = p
        self._may_idle = not p.strict and not (
            s.ledger is not None and s.config.over_budget is OverBudget.REJECT
        )
        self._per_tenant = s.config.max_jobs_per_tenant_per_pass
        self._dynamic = s.order.dynamic
        self._decisions_seen = 0
        s.reservations.take_loosened()  # what loosened before this pass is its trigger
        # Lists holding an arrival: outside the periodic pass, only arrivals may preempt.
        self._new_lists = {list_key(job) for job in p.new_jobs} if p.may_preempt else set()

    def loosened(self) -> int:
        """Pools whose reservation was dropped, moved or made stale since last asked;
        under fair share, every pool once the pass has decided anything (keys moved)."""
        pools = self._s.reservations.take_loosened()
        if self._dynamic:
            made = len(self._p.decisions)
            if made != self._decisions_seen:
                self._decisions_seen = made
                return -1
        return pools

    def room(self, queued: JobList, i: int) -> int:
        """For `queued.jobs[i]` and the jobs behind it in its list: nothing, when the
        list's programme has had its turn (the per-programme bound) or its smallest gang
        is larger than the room any job of it could start in now; otherwise, when none
        of them could take a backfill reservation (`_may_hold`), preempt (`_may_preempt`)
        or be rejected, that room (larger jobs are passed over); else any job."""
        s, p = self._s, self._p
        if p.examined_by_tenant.get(queued.tenant, 0) >= self._per_tenant:
            return SKIP_LIST
        if not self._may_idle or (
            p.may_preempt and p.preemption_attempts_left and self._may_preempt(queued, i)
        ):
            return NO_LIMIT
        cls = s.eligibility.classes[queued.class_index]
        if s.backfill:
            holder_at = self._next_holder(queued, i)
            if holder_at == i:
                return NO_LIMIT  # a holder under fair share: it claims its pool here
            if self._may_hold(queued, i, cls):
                return NO_LIMIT  # a job of it may still take a reservation
            room = self._backfill_room(queued, queued.jobs[i], cls)
            if queued.smallest > room and holder_at < len(queued.jobs):
                return 0  # nothing before its next holder can act: on to that holder
        else:
            usable = queued.pool_mask & p.open_mask
            room = fit_on(s, p, cls, usable) if usable else 0
        if queued.smallest <= room:
            return room
        s.stats.lists_skipped += 1
        return SKIP_LIST

    def _may_preempt(self, queued: JobList, i: int) -> bool:
        """Whether `queued.jobs[i]` or a job behind it could preempt in this pass: on the
        periodic pass any job, otherwise only arrivals (`Preemptor.preempt_in_pass`), and
        only where the preemptor's rules could let one (`Preemptor.may_search_for`)."""
        p = self._p
        if not p.full and queued.key not in self._new_lists:
            return False
        preemptor = self._s.preemptor
        return preemptor is not None and preemptor.may_search_for(queued, i, p.failed_searches)

    def _may_hold(self, queued: JobList, i: int, cls: EligibilityClass) -> bool:
        """Whether a job of the list from `i` on could take a backfill reservation now:
        a pool of the list's not out of reach, that could hold the list's smallest gang,
        whose reservation is free or held by a job behind the first job from `i` that
        holds none (those behind it are further back still; a holder keeps its pool and
        takes no other). `ReservationBook.reserve` makes the same test per job.

        (Under fair share a holder is examined at its own place: `_next_holder`.)"""
        s = self._s
        book = s.reservations
        claimable = queued.pool_mask & ~out_of_reach(s, self._p)
        if not claimable:
            return False
        jobs = queued.jobs
        holding = book.pool_of
        while i < len(jobs) and jobs[i].job_id in holding:
            i += 1
        if i == len(jobs):
            return False
        job = jobs[i]
        order = s.order
        pools = s.fleet.pools
        by_pool = book.by_pool
        smallest = queued.smallest
        for index in cls.pools:
            if not claimable >> index & 1:
                continue
            reservation = by_pool[index]
            if reservation is not None and order.before(reservation.holder, job):
                continue  # held by a job ahead
            pool = pools[index]
            gpn = pool.gpus_per_node
            if smallest <= gpn or -(-smallest // gpn) <= pool.nodes:
                return True
        return False

    def _next_holder(self, queued: JobList, i: int) -> int:
        """Under an order whose keys move as GPUs do (fair share), the index of the list's
        first job from `i` on that holds a reservation (len(jobs) if none, and always
        without fair share). Such a holder must be examined at its own place in the pass:
        it claims its pool there, which jobs after it may then no longer take even if its
        key grows past theirs, so the gate never skips or passes over it."""
        end = len(queued.jobs)
        if not self._dynamic:
            return end
        found = end
        for holder in self._s.reservations.holders_in(queued.key):
            k = bisect_left(queued.keys, static_key(holder), queued.lo)
            if i <= k < found:
                found = k
        return found

    def _backfill_room(self, queued: JobList, job: Job, cls: EligibilityClass) -> int:
        """The largest room, among the list's open pools, that some job of it from `job`
        on could start in now: a pool with no reservation, or one held by `job` or a job
        behind it, or one whose holder is ahead but whose reservation lets a job of the
        list backfill (its shortest request, at the pool's best speed, ends by the
        shadow time; or its smallest gang needs no more nodes than are spare).
        `ReservationBook.allows` makes the same test per job."""
        s, p = self._s, self._p
        usable = queued.pool_mask & p.open_mask
        if not usable:
            return 0
        book = s.reservations
        by_pool = book.by_pool
        order = s.order
        states = s.pool_states
        pools = s.fleet.pools
        smallest = queued.smallest
        now = p.now
        room = 0
        for index in cls.pools:
            if not usable >> index & 1:
                continue
            fit = states[index].max_fit()
            if fit < smallest or fit <= room:
                continue
            reservation = by_pool[index]
            if reservation is not None and order.before(reservation.holder, job):
                # A holder ahead: only a backfill that does not delay it may start here.
                reservation = book.fresh(index, now)
                gpn = pools[index].gpus_per_node
                need = 1 if smallest <= gpn else -(-smallest // gpn)
                shortest = now + queued.shortest_request() / s.fastest_on(index)
                if need > reservation.spare_nodes and shortest > reservation.shadow_time:
                    continue
            room = fit
        return room

    def pass_over(self, queued: JobList, start: int, room: int) -> int:
        """Pass over the jobs from `start` on that need more than `room`: the index of the
        first that fits (found by bisection, not a walk: `JobList.first_fitting`) or that
        holds a reservation under fair share (`_next_holder`), or len(jobs) when the list
        is done for this pass. Each job passed over counts against the pass's bounds as
        an examined one would: a pass after an event still stops within its depth of the
        queue's top (in overload, where every list is long, a pass that passed over for
        free went on to examine its whole bound of jobs that could not start). A room of
        0 (nothing fits before the next holder) jumps there uncounted, as a list skip."""
        p = self._p
        end = self._next_holder(queued, start) if self._s.backfill else len(queued.jobs)
        if not room:
            return end
        tenant = queued.tenant
        seen = p.examined_by_tenant.get(tenant, 0)
        limit = min(end, start + self._per_tenant - seen, start + p.max_examined - p.examined)
        i = queued.first_fitting(start, room, limit)
        passed = i - start
        p.examined_by_tenant[tenant] = seen + passed
        p.examined += passed
        p.passed_over += passed
        if i < limit or i == end:
            return i
        if p.examined >= p.max_examined:
            p.bound_hit = True
        return len(queued.jobs)  # a bound: nothing more of this list in this pass


def out_of_reach(s: Scheduler, p: PassState) -> int:
    """Pools no job still to come in this pass can reserve: claimed by a job seen this
    pass, held by a job ahead, or cordoned."""
    return p.claimed_mask | p.held_ahead_mask | s.cordoned_mask


def fit_on(s: Scheduler, p: PassState, cls: EligibilityClass, usable: int) -> int:
    """The largest gang that fits now on the class's pools in `usable` (cached per
    pass until GPUs move)."""
    fit = p.fit_by_mask.get(usable)
    if fit is None:
        fit = 0
        states = s.pool_states
        for i in cls.pools:
            if usable >> i & 1:
                fit = max(fit, states[i].max_fit())
        p.fit_by_mask[usable] = fit
    return fit

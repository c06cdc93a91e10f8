"""One scheduling pass, in numbered steps (docs/core.md): what changed, the pass's
state, candidates in policy order, bounds, start, strict order, preempt, reserve.

`Scheduler.schedule` runs it; the stages it calls own their state (queue, running set,
reservation book, preemptor, carbon waits); this module owns only the pass's own
`PassState`, made afresh each time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arkwright.core.budget import OverBudget
from arkwright.core.decisions import Decision, Reject
from arkwright.core.dependencies import Ended
from arkwright.core.eligibility import EligibilityClass
from arkwright.core.job import Job, JobState
from arkwright.core.ordering import NO_LIMIT, SKIP_LIST, ListFilter, ListGate, OrderKey, in_order
from arkwright.core.pass_state import PassState
from arkwright.core.pool_choice import choose_pool
from arkwright.core.queue import JobList

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


def run_pass(s: Scheduler, now: float, full: bool = False) -> list[Decision]:
    """One scheduling pass. `full` reconsiders every queued job (the periodic tick);
    otherwise only jobs that new arrivals or freed GPUs could affect."""
    # 1. What changed since the last pass decides what this pass looks at. Carbon
    # waits that are up come back first, as arrivals.
    if s.carbon is not None:
        s.holds.carbon_due(now)
    dirty, arrived_mask, new_jobs = s.take_changes(full)
    trigger = dirty | arrived_mask
    notices = s.holds.take_notices()
    if not s.queue.size or not trigger:
        return notices
    # 2. The pass's state: open pools, preemption budget.
    p = begin_pass(s, now, full, new_jobs)
    # 3. The candidates, in policy order.
    consider = ListFilter(s.all_pools_mask if p.strict else trigger)
    if not p.may_preempt:
        consider.mask &= p.open_mask
    if dirty or p.strict:
        # Before the heap only where the skip can fire from the start: no preemption
        # can open pools, and no backfill claim is open (none is made yet).
        early = not (s.backfill or p.strict or p.may_preempt)
        candidates = in_order(
            s.queue,
            s.order,
            s.eligibility.classes,
            consider,
            PassGate(s, p),
            skip_before_heap=early,
        )
    else:
        # Nothing freed: only the arrivals can start (the rest did not fit before).
        candidates = iter(
            sorted((j for j in new_jobs if j.state is JobState.PENDING), key=s.order.key)
        )
    config = s.config
    per_tenant = config.max_jobs_per_tenant_per_pass
    classes = s.eligibility.classes
    for job in candidates:
        # 4. Bounds: stop the pass, or pass over a programme that had its turn.
        if p.examined >= p.max_examined:
            p.bound_hit = True
            break
        seen = p.examined_by_tenant.get(job.tenant, 0)
        if seen >= per_tenant:
            continue
        p.examined_by_tenant[job.tenant] = seen + 1
        p.examined += 1
        cls = classes[job.eligibility_class]
        # 5. Start it if it fits somewhere it may go.
        started = try_to_start(s, p, job, cls)
        if started is None:
            continue  # rejected over budget, held for budget, or waiting for carbon
        if started:
            continue
        # 6. Strict order: a blocked job blocks its pools for everyone behind it.
        if p.strict:
            p.blocked_mask |= cls.pool_mask
            if p.blocked_mask & p.open_mask == p.open_mask:
                break
            consider.mask &= ~p.blocked_mask
            continue
        # 7. Preempt for it, if the policy and the rules allow.
        if s.preemptor is not None and s.preemptor.preempt_in_pass(p, job, cls, consider):
            continue
        # 8. Backfill: the first blocked job per pool holds a reservation.
        if s.backfill:
            held = s.reservations.pool_of.get(job.job_id)
            if held is not None:
                p.claimed_mask |= 1 << held
            else:
                unavailable = out_of_reach(s, p)
                if job.pool_mask & ~unavailable:
                    pool, held_ahead = s.reservations.reserve(job, cls, unavailable, now)
                    p.held_ahead_mask |= held_ahead
                    if pool is not None:
                        p.claimed_mask |= 1 << pool
    # 9. Victims rejoin the queue only now, so the pass's list cursors stay valid.
    for victim in p.requeued:
        s._enqueue(victim)
    s.holds.pass_over(now)  # jobs that waited for a start (`after:`) join now
    notices += s.holds.take_notices()
    if p.bound_hit:
        s.carry_over(trigger)  # continue in the next pass
    s.stats.record(p)
    return notices + p.decisions if notices else p.decisions


def begin_pass(s: Scheduler, now: float, full: bool, new_jobs: list[Job]) -> PassState:
    open_mask = 0
    for i, state in enumerate(s.pool_states):
        if state.free_gpus:
            open_mask |= 1 << i
    p = PassState(now, full, open_mask & ~s.cordoned_mask, s.strict)
    p.keys_dynamic = s.order.dynamic
    config = s.config
    p.max_examined = (
        config.max_jobs_per_pass
        if full
        else min(config.max_jobs_per_pass, config.max_jobs_per_event_pass)
    )
    if s.preemptor is not None:
        attempts = s.config.max_preemption_attempts_per_pass
        p.preemption_attempts_left = attempts
        # Reclaim is retried on the periodic tick and tried for new arrivals; a pass
        # after a finish only hands out the GPUs that were freed.
        p.new_jobs = set(new_jobs) if attempts and not full else set()
        p.may_preempt = attempts > 0 and (full or bool(p.new_jobs)) and s.runs.anyone_preemptible()
    return p


class PassGate(ListGate):
    """What of a (programme, class) list could act in this pass (`ordering.in_order`
    asks when the list's head comes up), and passing over what cannot."""

    def __init__(self, s: Scheduler, p: PassState) -> None:
        self._s = s
        self._p = p
        self._may_idle = not p.strict and not (
            s.ledger is not None and s.config.over_budget is OverBudget.REJECT
        )
        self._per_tenant = s.config.max_jobs_per_tenant_per_pass
        self._dynamic = s.order.dynamic

    def room(self, queued: JobList, i: int) -> int:
        """For `queued.jobs[i]` and the jobs behind it in its list: nothing, when the list's
        programme has had its turn (the per-programme bound) or its smallest gang is
        larger than anything that fits on its class's open pools; otherwise, when none of
        them could take a backfill reservation (`_may_hold`), preempt or be rejected,
        only jobs that fit in that room; else any job."""
        s, p = self._s, self._p
        job = queued.jobs[i]
        if p.examined_by_tenant.get(queued.tenant, 0) >= self._per_tenant:
            return SKIP_LIST
        if not self._may_idle or (p.may_preempt and p.preemption_attempts_left):
            return NO_LIMIT
        cls = s.eligibility.classes[queued.class_index]
        if s.backfill and self._may_hold(queued, job, cls):
            return NO_LIMIT  # a job of it may still take a reservation
        usable = queued.pool_mask & p.open_mask
        fit = fit_on(s, p, cls, usable) if usable else 0
        if queued.smallest <= fit:
            return fit
        s.stats.lists_skipped += 1
        return SKIP_LIST

    def _may_hold(self, queued: JobList, job: Job, cls: EligibilityClass) -> bool:
        """Whether `job`, or a job behind it in its list, could take a backfill reservation
        now: a pool of the list's not out of reach, that could hold the list's smallest
        gang, whose reservation is free or held by a job behind `job` (those behind it
        are further back still). `ReservationBook.reserve` makes the same test per job.

        Under an order whose keys move as GPUs do (fair share), a list holding a
        reservation may act as well: its holder claims the pool at its place in the
        pass, which jobs after it in the pass may no longer take even if its key grows
        past theirs."""
        s = self._s
        book = s.reservations
        if self._dynamic and book.holders_in(queued.key):
            return True
        claimable = queued.pool_mask & ~out_of_reach(s, self._p)
        if not claimable:
            return False
        order = s.order
        pools = s.fleet.pools
        by_pool = book.by_pool
        smallest = queued.smallest
        job_key: OrderKey | None = None
        for i in cls.pools:
            if not claimable >> i & 1:
                continue
            reservation = by_pool.get(i)
            if reservation is not None:
                holder = reservation.holder
                if holder is job:
                    continue  # a holder keeps its pool and takes no other
                if job_key is None:
                    job_key = order.key(job)
                if order.key(holder) < job_key:
                    continue  # held by a job ahead
            pool = pools[i]
            gpn = pool.gpus_per_node
            if smallest <= gpn or -(-smallest // gpn) <= pool.nodes:
                return True
        return False

    def pass_over(self, queued: JobList, start: int, room: int) -> int:
        """Pass over the jobs from `start` on that need more than `room`: the index of the
        first that fits, or len(jobs) when the list is done for this pass. Each counts
        against the pass's bounds as an examined job would (so the bounds hold the work
        of a pass over a long queue); at a bound the pass's continuation is marked."""
        p = self._p
        jobs = queued.jobs
        tenant = queued.tenant
        seen = p.examined_by_tenant.get(tenant, 0)
        end = len(jobs)
        limit = min(end, start + self._per_tenant - seen, start + p.max_examined - p.examined)
        i = start
        while i < limit and jobs[i].fit_size > room:
            i += 1
        passed = i - start
        p.examined_by_tenant[tenant] = seen + passed
        p.examined += passed
        p.passed_over += passed
        if i < limit or i == end:
            return i
        if p.examined >= p.max_examined:
            p.bound_hit = True
        return end  # a bound: nothing more of this list in this pass


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


def try_to_start(s: Scheduler, p: PassState, job: Job, cls: EligibilityClass) -> bool | None:
    """True: started. False: could not. None: rejected over budget, held for budget,
    or waiting for a cleaner hour."""
    usable = job.pool_mask & p.open_mask & ~p.blocked_mask
    if not usable:
        return False
    fit = fit_on(s, p, cls, usable)
    if s.ledger is not None and not s.ledger.ever_affordable(
        job,
        [s.fleet.pools[i] for i in cls.pools if job.pool_mask >> i & 1],
        s.speeds(job.job_type),
    ):
        if s.config.over_budget is OverBudget.REJECT:
            p.decisions.append(reject_queued(s, job, cls, p.now))
        return None
    if s.carbon is not None and job.flexible:
        # Waiting for a cleaner hour is the job's own begin time: it leaves the queue
        # until the answer can change, so it holds no reservation, preempts no one
        # and blocks no one (fifo) meanwhile, and costs later passes nothing.
        until = s.carbon.defer_until(job, cls, s.speeds(job.job_type), p.now)
        if until is not None:
            s.queue.remove(job)
            s.reservations.drop(job)
            s.holds.carbon_wait(job, until, p.now)
            return None
        s.holds.carbon_over(job, p.now)
    if job.fit_size > fit:
        return False
    pool_index = choose_pool(s, job, cls, usable, p.now)
    if pool_index is None:
        return False
    p.decisions.append(s.start_on(job, pool_index, p.now))
    if not s.pool_states[pool_index].free_gpus:
        p.open_mask &= ~(1 << pool_index)
    p.gpus_moved()
    return True


def reject_queued(s: Scheduler, job: Job, cls: EligibilityClass, now: float) -> Reject:
    reason = s.admission.never_affordable_reason(job, cls) or "over budget"
    s.queue.remove(job)
    s.reservations.drop(job)
    del s.jobs[job.job_id]
    job.state = JobState.REJECTED
    s.holds.ended(job, Ended.FAILED, now, was_active=True)
    return Reject(job, reason, now)

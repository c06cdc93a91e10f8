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
from arkwright.core.ordering import ListFilter, in_order
from arkwright.core.pass_gate import PassGate, fit_on, out_of_reach
from arkwright.core.pass_state import PassState
from arkwright.core.pool_choice import choose_pool

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
    s.queue.tidy()  # renumbers lists: only here, before the pass's cursors exist
    trigger = dirty | arrived_mask
    notices = s.holds.take_notices()
    if not s.queue.size or not trigger:
        return notices
    # 2. The pass's state: open pools, preemption budget.
    p = begin_pass(s, now, full, new_jobs)
    # What a pass that hits its bound compares to say whether it changed anything.
    book_revision, queued_before = s.reservations.revision, s.queue.size
    # 3. The candidates, in policy order.
    consider = ListFilter(s.all_pools_mask if p.strict else trigger)
    if not p.may_preempt:
        consider.mask &= p.open_mask
    if dirty or p.strict:
        candidates = in_order(s.queue, s.order, s.eligibility.classes, consider, PassGate(s, p))
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
    # Did a job leave the queue (started, rejected, gone to a carbon wait) or a
    # reservation change? (Preemptions are among the decisions.)
    changed = s.queue.size != queued_before or s.reservations.revision != book_revision
    # 9. Victims rejoin the queue only now, so the pass's list cursors stay valid.
    for victim in p.requeued:
        s._enqueue(victim)
    s.holds.pass_over(now)  # jobs that waited for a start (`after:`) join now
    notices += s.holds.take_notices()
    # Continue in the next pass only if this one changed something: one that changed
    # nothing would be repeated exactly, to the same bound (docs/core.md, step 4).
    if p.bound_hit and (changed or p.decisions):
        s.carry_over(trigger)
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

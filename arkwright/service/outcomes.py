"""What the control plane writes for each decision and each backend answer.

Every function here runs under the control lock inside one `ControlPlane._transaction`:
it changes the core and appends the matching rows to `Writes`; the transaction commits
them together or rebuilds the core from the database. Nothing here talks to a backend:
stops owed go to the run_stops outbox, which the Stopper carries out after the commit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from arkwright.backends.base import BackendUnavailable, Ending, Outcome, RunRequest, StartRefused
from arkwright.core.decisions import Cancelled, Held, Preempt, Reject, Start
from arkwright.core.job import Job, JobState
from arkwright.service.records import from_epoch, usage_of_run
from arkwright.service.states import RunState
from arkwright.service.store import Writes

if TYPE_CHECKING:
    from arkwright.service.control import ControlPlane

log = logging.getLogger("arkwright.control")
ENDINGS = {
    Ending.COMPLETED: RunState.COMPLETED,
    Ending.CANCELLED: RunState.CANCELLED,
    Ending.FAILED: RunState.FAILED,
}


def event(writes: Writes, job_id: str, kind: str, detail: str, now: float) -> None:
    writes.events.append({"job_id": job_id, "kind": kind, "detail": detail, "at": from_epoch(now)})


def owe_stop(cp: ControlPlane, writes: Writes, job: Job, reason: str) -> None:
    """The run of this job must be stopped on its backend (after the commit)."""
    pool = cp.fleet.pools[job.pool_index]
    writes.stops.append(
        {
            "job_id": job.job_id,
            "site": pool.site.name,
            "handle": cp._handles.get(job.job_id),
            "reason": reason,
            "at": from_epoch(cp.clock()),
        }
    )


def charge(cp: ControlPlane, writes: Writes, job: Job, gpus: int, start: float, end: float) -> None:
    """Usage for a run the backend confirmed started; none for one it never ran."""
    if job.job_id not in cp._handles:
        return
    pool = cp.fleet.pools[job.pool_index]
    scale = getattr(cp.backends[pool.site.name], "time_scale", 1.0)
    writes.usage.append(usage_of_run(job, pool, gpus, start, end, scale))


def carry_out(cp: ControlPlane, writes: Writes, decisions: list, now: float) -> list[Start]:
    at = from_epoch(now)
    starts: list[Start] = []
    for decision in decisions:
        job = decision.job
        if isinstance(decision, Start):
            pool = cp.fleet.pools[decision.pool]
            writes.updates.append(
                {
                    "id": job.job_id,
                    "state": RunState.STARTING,
                    "pool": pool.name,
                    "allocation": [list(a) for a in decision.allocation],
                    "attempts": job.attempts,
                    "started_at": at,
                    "reason": "",
                    "not_before": None,
                }
            )
            event(
                writes,
                job.job_id,
                RunState.STARTING,
                f"{pool.name} {list(decision.allocation)}",
                now,
            )
            cp._handles.pop(job.job_id, None)
            starts.append(decision)
        elif isinstance(decision, Preempt):
            # The core has already put the victim back in the queue; pool_index is gone,
            # so the stop and the usage are written against the decision's pool.
            pool = cp.fleet.pools[decision.pool]
            if job.job_id in cp._handles:
                scale = getattr(cp.backends[pool.site.name], "time_scale", 1.0)
                writes.usage.append(
                    usage_of_run(job, pool, decision.gpus, decision.ran_from, now, scale)
                )
            writes.stops.append(
                {
                    "job_id": job.job_id,
                    "site": pool.site.name,
                    "handle": cp._handles.pop(job.job_id, None),
                    "reason": decision.reason,
                    "at": at,
                }
            )
            writes.updates.append(
                _requeued_update(job, RunState.PENDING, decision.reason) | {"not_before": None}
            )
            event(writes, job.job_id, "preempted", decision.reason, now)
        elif isinstance(decision, Cancelled):  # before Reject: it is one
            writes.updates.append(
                {
                    "id": job.job_id,
                    "state": RunState.CANCELLED,
                    "reason": decision.reason,
                    "finished_at": from_epoch(decision.at),
                }
            )
            event(writes, job.job_id, RunState.CANCELLED, decision.reason, decision.at)
            cp._forget(job.job_id)
        elif isinstance(decision, Reject):
            reject(cp, writes, job, decision.reason, now)
        elif isinstance(decision, Held):
            # Slurm's pending reasons: Dependency, DependencyNeverSatisfied,
            # JobArrayTaskLimit; empty once the job is in the queue.
            writes.updates.append({"id": job.job_id, "reason": decision.reason})
            if decision.reason:
                event(writes, job.job_id, "held", decision.reason, decision.at)
    return starts


def reject(cp: ControlPlane, writes: Writes, job: Job, reason: str, now: float) -> None:
    writes.updates.append(
        {
            "id": job.job_id,
            "state": RunState.REJECTED,
            "reason": reason,
            "finished_at": from_epoch(now),
        }
    )
    event(writes, job.job_id, RunState.REJECTED, reason, now)
    cp._forget(job.job_id)


def _requeued_update(job: Job, state: RunState, reason: str) -> dict:
    return {
        "id": job.job_id,
        "state": state,
        "reason": reason,
        "pool": None,
        "allocation": None,
        "handle": None,
        "work_done_s": job.work_done_s,
    }


def settle_launch(
    cp: ControlPlane, writes: Writes, start: Start, request: RunRequest, result, now: float
) -> None:
    """What a backend said to a start: running with its handle, or back to the queue
    (bounded, with backoff), or failed with the reason."""
    job_id = start.job.job_id
    pool = request.pool
    job = cp.scheduler.jobs.get(job_id)
    still_ours = (
        job is not None
        and job.state is JobState.RUNNING
        and job.attempts == request.attempt
        and job.pool_index == start.pool
    )
    if not isinstance(result, Exception):
        if still_ours:
            cp._handles[job_id] = result
            cp._refused.pop(job_id, None)
            writes.updates.append(
                {"id": job_id, "state": RunState.RUNNING, "handle": result, "refused_starts": 0}
            )
            event(writes, job_id, RunState.RUNNING, pool.name, now)
        else:  # cancelled, preempted or lost while it was being started: stop that run
            writes.stops.append(
                {
                    "job_id": job_id,
                    "site": pool.site.name,
                    "handle": result,
                    "reason": "started after it was stopped",
                    "at": from_epoch(now),
                }
            )
        return
    if not still_ours:
        return  # nothing started, and the job has moved on
    exc = result
    if isinstance(exc, BackendUnavailable):
        # Not the job's fault, nor a verdict on it: the site rests, the job goes
        # elsewhere or waits; this does not count against the job.
        why = f"{pool.site.name} not reachable ({exc})"
        log.warning("%s goes back to the queue: %s", job_id, why)
        cp.scheduler.requeue(job_id, now)
        writes.updates.append(_requeued_update(job, RunState.PENDING, f"requeued: {why}"))
        event(writes, job_id, "requeued", why, now)
        cp._rest([p.index for p in cp.fleet.pools_at(pool.site.name)], now)
        return
    if isinstance(exc, StartRefused):
        refused = cp._refused.get(job_id, 0) + 1
        cp._refused[job_id] = refused
        if refused < cp.retry.max_refused_starts:
            why = f"{pool.name} refused the start ({exc})"
            cp._rest([pool.index], now)
            requeue_later(cp, writes, job, why, now, refused, refused_starts=refused)
            return
        failure = f"refused {refused} times in a row; last: {exc}"
    else:
        failure = str(exc) or type(exc).__name__
    log.warning("start of %s on %s failed: %s", job_id, pool.name, failure)
    # The core gives the GPUs back; no usage (the backend never ran it).
    fail(cp, writes, job, f"could not start on {pool.name}: {failure}", now)


def requeue_later(
    cp: ControlPlane, writes: Writes, job: Job, why: str, now: float, retry: int, **counts
) -> None:
    """Back to the queue after a backoff: out of the core's queue until then."""
    delay = cp.retry.delay(retry)
    cp.scheduler.requeue(job.job_id, now)
    # Out of the queue until the backoff ends; not ended (its dependents keep waiting).
    cp.scheduler.defer(job.job_id, now)
    cp._held[job.job_id] = (job, now + delay)
    writes.updates.append(
        _requeued_update(job, RunState.PENDING, f"requeued: {why}; next try in {delay:g} s")
        | {"not_before": from_epoch(now + delay), **counts}
    )
    event(writes, job.job_id, "requeued", why, now)


def fail(cp: ControlPlane, writes: Writes, job: Job, reason: str, now: float) -> None:
    writes.updates.append(
        {
            "id": job.job_id,
            "state": RunState.FAILED,
            "reason": reason,
            "finished_at": from_epoch(now),
        }
    )
    event(writes, job.job_id, RunState.FAILED, reason, now)
    cp.scheduler.finish(job.job_id, now, succeeded=False)
    cp._forget(job.job_id)


def lose(
    cp: ControlPlane, writes: Writes, job: Job, now: float, why: str, ran: bool = True
) -> None:
    """A run lost through no fault of the job: stop what may be left of it, then
    requeue it (bounded, with backoff) or fail it with every attempt's reason."""
    if ran:
        charge(cp, writes, job, job.allocated_gpus, job.started_at, now)
    owe_stop(cp, writes, job, why)
    cp._handles.pop(job.job_id, None)
    lost = cp._lost.get(job.job_id, 0) + 1
    cp._lost[job.job_id] = lost
    if cp.requeue_lost and lost < cp.retry.max_lost_runs:
        requeue_later(cp, writes, job, why, now, lost, lost_runs=lost)
        return
    if not cp.requeue_lost:
        fail(cp, writes, job, why, now)
        return
    earlier = cp.store.requeue_reasons(job.job_id)[-(lost - 1) :] if lost > 1 else []
    history = "; ".join(f"{n}) {r}" for n, r in enumerate([*earlier, why], start=1))
    writes.updates.append({"id": job.job_id, "lost_runs": lost})
    fail(cp, writes, job, f"lost {lost} times: {history}", now)


def settle_outcomes(cp: ControlPlane, writes: Writes, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        job = cp.scheduler.jobs.get(outcome.job_id)
        if job is None or job.state is not JobState.RUNNING:
            continue  # a run we already stopped (cancelled or preempted)
        if outcome.ending is Ending.LOST:
            # A backend that knows the command never began says so (no usage then).
            lose(
                cp,
                writes,
                job,
                outcome.ended_at,
                outcome.reason,
                ran=getattr(outcome, "command_started", True),
            )
            continue
        pool = cp.fleet.pools[job.pool_index]
        charge(cp, writes, job, job.allocated_gpus, job.started_at, outcome.ended_at)
        state = ENDINGS.get(outcome.ending, RunState.FAILED)
        writes.updates.append(
            {
                "id": job.job_id,
                "state": state,
                "reason": outcome.reason,
                "finished_at": from_epoch(outcome.ended_at),
                "exit_code": outcome.exit_code,
            }
        )
        event(writes, job.job_id, state, outcome.reason, outcome.ended_at)
        del pool
        succeeded = state == RunState.COMPLETED and not outcome.exit_code
        cp.scheduler.finish(job.job_id, outcome.ended_at, succeeded=succeeded)
        cp._forget(job.job_id)

"""The loop: what each step does, on the leader and on a standby.

The leader's step, in order: carry out requests from other replicas; ask again about
runs no backend answered for; settle what the backends report (polled off the lock);
take new submissions from the database; release jobs whose backoff ended; one
scheduling pass, committed as one unit; then the starts, off the lock, and their
results, committed. A standby bids for the lead and refreshes its read model.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from arkwright.backends.base import Backend, Outcome, RunRequest
from arkwright.backends.batch import BatchSpec
from arkwright.core.decisions import Start
from arkwright.service import outcomes, recovery
from arkwright.service.dispatch import launch_all
from arkwright.service.errors import StoreUnavailable
from arkwright.service.replicas import answer_requests
from arkwright.service.store import Writes

if TYPE_CHECKING:
    from arkwright.service.control import ControlPlane

log = logging.getLogger("arkwright.control")
FOLLOW_EVERY_S = 1.0  # a standby refreshes its read model and bids for the lead this often
# An API worker never bids; its read model (counts, start estimates) may be a little
# older, and rebuilding it costs CPU the worker's requests would otherwise have.
API_REFRESH_EVERY_S = 5.0
CHECK_LEAD_EVERY_S = 1.0  # the leader checks it still holds its lock this often


def follow(cp: ControlPlane) -> None:
    """A standby: bid for the lead; meanwhile keep the read model fresh."""
    every = API_REFRESH_EVERY_S if cp.api_only else FOLLOW_EVERY_S
    if time.monotonic() - cp._last_follow < every and cp._last_follow:
        return
    cp._last_follow = time.monotonic()
    if cp.election.try_acquire():
        cp._become_leader()
        return
    stored = recovery.read_stored(cp)  # the database read, off the lock
    with cp.lock:
        recovery.rebuild(cp, stored)


def still_leading(cp: ControlPlane) -> bool:
    if time.monotonic() - cp._last_lead_check < CHECK_LEAD_EVERY_S:
        return True
    cp._last_lead_check = time.monotonic()
    if cp.election.still_held():
        return True
    cp._step_down("the leader lock is gone")
    return False


def lead(cp: ControlPlane) -> None:
    now = cp.clock()
    with cp.lock:
        cp._require_core()
    answer_requests(cp)
    ask_again(cp, now)
    if cp._unsettled_launches:  # started, but their commit failed: record them now
        results, cp._unsettled_launches = cp._unsettled_launches, []
        settle_launches(cp, results, now)
    pending, cp._unsettled = cp._unsettled + poll_all(cp, now), []
    if pending:
        try:
            with cp.lock, cp._transaction() as writes:
                outcomes.settle_outcomes(cp, writes, pending)
        except StoreUnavailable:
            cp._unsettled = pending  # the backend forgot them; we must not
            raise
    record_backend_events(cp)
    with cp.lock:
        cp._take_new_submissions(now)
        release_held(cp, now)
        cp._end_rests(now)
        if cp.history.due(now):
            cp.history.add(now, cp.busy_by_site())
        full = now - cp._last_full >= cp.full_pass_every_s
        if full:
            cp._last_full = now
        started = time.perf_counter()
        with cp._transaction() as writes:
            decisions = cp.scheduler.schedule(now, full=full)
            if cp._arrival_notices:  # holds and rejections found when the core was rebuilt
                decisions = cp._arrival_notices + decisions
                cp._arrival_notices = []
            elapsed = time.perf_counter() - started
            starts = outcomes.carry_out(cp, writes, decisions, now) if decisions else []
        cp.stats.passes += 1
        cp.stats.last_pass_s = elapsed
        if cp.on_pass:
            cp.on_pass(elapsed)
        launches = [(s, request_for(cp, s)) for s in starts]
    if launches:
        settle_launches(cp, launch_all(cp.backends, launches, lambda i: i in cp._resting), now)


def settle_launches(cp: ControlPlane, results: list, now: float) -> None:
    """Record what the backends said to the starts. If that commit fails, the rebuilt
    core still holds the runs (committed 'starting'), and the answers are kept to be
    recorded at the next step: a handle is never forgotten."""
    try:
        with cp.lock, cp._transaction() as writes:
            for start, request, result in results:
                outcomes.settle_launch(cp, writes, start, request, result, now)
    except StoreUnavailable:
        cp._unsettled_launches = results
        raise


def poll_all(cp: ControlPlane, now: float) -> list[Outcome]:
    """Every backend's finished runs; one that fails to answer does not stop the rest."""
    found: list[Outcome] = []
    for backend in distinct_backends(cp):
        try:
            found += backend.poll(now)
        except Exception:  # its runs stay as they are until it answers
            log.exception("poll of %s failed", getattr(backend, "name", backend))
    return found


def release_held(cp: ControlPlane, now: float) -> None:
    due = [(job_id, job) for job_id, (job, until) in cp._held.items() if until <= now]
    if not due:
        return
    with cp._transaction():
        for job_id, _job in due:
            del cp._held[job_id]
            cp.scheduler.resume(job_id)


def ask_again(cp: ControlPlane, now: float) -> None:
    """Placed runs a backend gave no answer for at recovery: ask again (off the lock)."""
    if not cp._unrecovered:
        return
    answers = recovery.ask_backends(cp, list(cp._unrecovered.values()))
    with cp.lock, cp._transaction() as writes:
        for row, found in answers:
            recovery.apply_answer(cp, writes, row, found)


def request_for(cp: ControlPlane, start: Start) -> RunRequest:
    job = start.job
    spec = cp._specs.get(job.job_id, {})
    return RunRequest(
        job=job,
        pool=cp.fleet.pools[start.pool],
        allocation=start.allocation,
        attempt=job.attempts,
        command=list(spec.get("command") or []),
        env=dict(spec.get("env") or {}),
        owner=spec.get("owner", ""),
        batch=BatchSpec.from_spec(spec),
        runtime_s=max(job.duration_s - job.work_done_s, 0.0) / job.speed,
    )


def distinct_backends(cp: ControlPlane) -> list[Backend]:
    """Each backend once (sites may share one, as the simulated ones do)."""
    return list({id(b): b for b in cp.backends.values()}.values())


def record_backend_events(cp: ControlPlane) -> None:
    """Backends that report progress (Slurm's own job states) add to job histories."""
    now = cp.clock()
    writes = Writes()
    for backend in distinct_backends(cp):
        drain = getattr(backend, "drain_events", None)
        if drain is not None:
            for job_id, kind, detail in drain():
                outcomes.event(writes, job_id, kind, detail, now)
    if writes:
        cp.store.write(writes)

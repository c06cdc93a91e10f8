"""Rebuilding the core from the database: after a failed commit, on a standby (its read
model), and when a replica becomes the leader (then each backend is also asked what
became of the runs it had).

The database is the truth. A rebuild never asks a backend anything: a run that a
backend started is in the database as 'starting' or 'running' (its start was committed
first), so the rebuilt core holds its GPUs, and the backend's next poll settles it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arkwright.backends.base import Outcome
from arkwright.core.decisions import Held
from arkwright.core.dependencies import Ended
from arkwright.core.job import Job
from arkwright.core.scheduler import Scheduler, SubmissionError
from arkwright.service import dependencies
from arkwright.service.cordons import CordonReason
from arkwright.service.db import JobRow
from arkwright.service.outcomes import event, fail, settle_outcomes
from arkwright.service.records import core_job, from_epoch, to_epoch
from arkwright.service.states import PLACED, RunState
from arkwright.service.store import Writes

if TYPE_CHECKING:
    from arkwright.service.control import ControlPlane

log = logging.getLogger("arkwright.recovery")


def job_of(row: JobRow) -> Job:
    job = core_job(row.id, row.tenant, row.spec, to_epoch(row.submitted_at))
    job.work_done_s = row.work_done_s
    job.attempts = row.attempts
    return job


@dataclass
class Stored:
    """What the database holds that the core is rebuilt from, read in one go."""

    highest: int  # every job numbered up to it is committed
    rows: list[JobRow]
    admin: set[str]
    down: set[str]
    weights: dict[str, float]
    ended: Mapping[str, Ended]


def read_stored(cp: ControlPlane) -> Stored:
    """The database's side of a rebuild: I/O only, so it may run without the lock (a
    standby and an API worker read it so, and hold the lock only to swap the core)."""
    highest = cp.store.highest_seq()  # first: every job numbered up to it is committed
    rows = cp.store.active_rows(up_to_seq=highest)
    return Stored(
        highest,
        rows,
        cp.store.admin_cordons(),
        cp.store.sites_down(),
        cp.store.tenant_weights(),
        dependencies.parents_ended(cp.store, [r.spec for r in rows]),
    )


def rebuild(cp: ControlPlane, stored: Stored | None = None) -> list[JobRow]:
    """A fresh core with exactly what the database holds (read now, unless `stored`
    was read just before). Called under the lock. Returns the placed rows (for recovery
    to ask their backends about)."""
    now = cp.clock()
    stored = stored or read_stored(cp)
    highest, rows, admin, down = stored.highest, stored.rows, stored.admin, stored.down
    weights, ended = stored.weights, stored.ended
    scheduler = Scheduler(cp.fleet, cp.policy, cp.throughput, cp.config)
    for tenant, weight in weights.items():
        scheduler.set_weight(tenant, weight)
    cp.scheduler = scheduler
    cp._specs, cp._handles, cp._held = {}, {}, {}
    cp._arrival_notices = []
    cp._lost = {r.id: r.lost_runs for r in rows if r.lost_runs}
    cp._refused = {r.id: r.refused_starts for r in rows if r.refused_starts}
    cp._seen_seq = highest
    cp._unadoptable = {}
    for pool in cp.fleet.pools:
        cp.cordons.set(pool.index, CordonReason.ADMIN, pool.name in admin)
        cp.cordons.set(pool.index, CordonReason.SITE_DOWN, pool.site.name in down)
    cp.cordons.reapply(scheduler.set_cordoned)
    placed = []
    # Running work first, so its GPUs are taken before anything else is placed.
    for row in sorted(rows, key=lambda r: (r.state == RunState.PENDING, r.seq)):
        job = job_of(row)
        cp._specs[row.id] = row.spec
        if row.state in PLACED and row.pool in cp.pool_index:
            allocation = tuple(tuple(a) for a in row.allocation or [])
            try:
                scheduler.adopt(
                    job, cp.pool_index[row.pool], allocation, to_epoch(row.started_at) or now
                )
            except SubmissionError as exc:  # the fleet changed under it: recovery says why
                log.warning("%s cannot be re-adopted: %s", row.id, exc)
                cp._unadoptable[row.id] = (row, str(exc))
                continue
            if row.handle is not None and row.state == RunState.RUNNING:
                cp._handles[row.id] = row.handle
            placed.append(row)
        else:
            hold_or_queue(cp, job, to_epoch(row.not_before), now, ended)
    cp._stale = False
    return placed


def hold_or_queue(
    cp: ControlPlane,
    job: Job,
    not_before: float | None,
    now: float,
    ended: Mapping[str, Ended] | None = None,
) -> None:
    """Back into the core as it was: queued, or held (dependencies, array throttle), or
    deferred until its retry's backoff ends. What the core says is written at the next
    transaction (`_notices` for the holds it reports)."""
    # Held notices only repeat what the database says; rejections and cancellations
    # (a dependency that can never be met, --kill-on-invalid-dep) must still be written.
    decisions = cp.scheduler.submit(job, now, ended)
    cp._arrival_notices += [d for d in decisions if not isinstance(d, Held)]
    deferred = not_before is not None and not_before > now
    if deferred and not job.held and job.job_id in cp.scheduler.jobs:
        cp.scheduler.defer(job.job_id, now)
        cp._held[job.job_id] = (job, not_before)


def recover(cp: ControlPlane) -> dict[str, int]:
    """Become the working leader: rebuild, then ask each backend about each placed run.
    Backend I/O runs without the lock; only a definite answer changes anything."""
    counts = {"adopted": 0, "requeued": 0, "settled": 0, "pending": 0, "unanswered": 0}
    with cp.lock:
        placed = rebuild(cp)
        counts["pending"] = len(cp.scheduler.jobs) - len(placed) + len(cp._held)
    answers = ask_backends(cp, placed)
    with cp.lock, cp._transaction() as writes:
        for row, found in answers:
            counts[apply_answer(cp, writes, row, found)] += 1
        for row, why in cp._unadoptable.values():  # a definite answer: it cannot run here
            writes.updates.append(
                {
                    "id": row.id,
                    "state": RunState.FAILED,
                    "reason": f"lost on restart: cannot re-adopt ({why})",
                    "finished_at": from_epoch(cp.clock()),
                }
            )
            event(writes, row.id, RunState.FAILED, f"cannot re-adopt ({why})", cp.clock())
            site = cp.fleet.pools[cp.pool_index[row.pool]].site.name
            writes.stops.append(
                {
                    "job_id": row.id,
                    "site": site,
                    "handle": row.handle,
                    "reason": "cannot re-adopt",
                    "at": from_epoch(cp.clock()),
                }
            )
            counts["settled"] += 1
        cp._unadoptable = {}
    cp.stopper.replay()
    cp.store.audit("arkwright", "recover", str(counts))
    return counts


def ask_backends(cp: ControlPlane, rows: list[JobRow]) -> list[tuple[JobRow, object]]:
    answers = []
    for row in rows:
        pool = cp.fleet.pools[cp.pool_index[row.pool]]
        try:
            found = cp.backends[pool.site.name].recover(
                row.id, row.handle, row.attempts, cp.clock()
            )
        except Exception as exc:  # no answer (unreachable, or a bug): keep it, ask again
            log.warning("recovery of %s: no answer from %s: %s", row.id, pool.site.name, exc)
            found = exc
        answers.append((row, found))
    return answers


def apply_answer(cp: ControlPlane, writes: Writes, row: JobRow, found: object) -> str:
    job = cp.scheduler.jobs.get(row.id)
    if job is None:
        return "settled"
    now = cp.clock()
    if isinstance(found, Exception):
        cp._unrecovered[row.id] = row
        return "unanswered"
    cp._unrecovered.pop(row.id, None)
    if found is None:  # the start was recorded but never carried out
        why = "start not carried out before restart"
        cp.scheduler.requeue(row.id, now)
        writes.updates.append(
            {
                "id": row.id,
                "state": RunState.PENDING,
                "reason": f"requeued: {why}",
                "pool": None,
                "allocation": None,
                "handle": None,
                "work_done_s": job.work_done_s,
            }
        )
        event(writes, row.id, "requeued", why, now)
        return "requeued"
    if isinstance(found, Outcome):
        if row.state == RunState.STARTING:
            cp._handles.setdefault(row.id, row.handle or {})
        settle_outcomes(cp, writes, [found])
        return "settled"
    if not isinstance(found, dict):
        fail(cp, writes, job, f"lost on restart: backend answered {found!r}", now)
        return "settled"
    cp._handles[row.id] = found
    writes.updates.append({"id": row.id, "state": RunState.RUNNING, "handle": found})
    event(writes, row.id, "adopted", "found running after restart", now)
    return "adopted"

"""The control plane: the scheduler core on the wall clock, with nothing lost.

One lock guards the core. Every change is committed to the database before it is acted
on: a start is recorded ('starting') before the backend is asked to run it, and the
backend's handle is recorded before the job is called 'running'; a finish is recorded
before the core frees the GPUs. On start-up the control plane rebuilds the core from the
database and asks each backend what became of the runs it had.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import sessionmaker

from arkwright.backends.base import (
    Backend,
    BackendUnavailable,
    Ending,
    Outcome,
    RunRequest,
    StartRefused,
)
from arkwright.core.decisions import Preempt, Reject, Start
from arkwright.core.fleet import Fleet
from arkwright.core.job import Job, JobState, PriorityClass
from arkwright.core.policy import PolicySpec
from arkwright.core.policy_data import DataPolicy
from arkwright.core.scheduler import Scheduler, SchedulerConfig
from arkwright.core.throughput import ThroughputTable
from arkwright.service.db import (
    AuditRow,
    JobEventRow,
    JobRow,
    PoolStateRow,
    SiteStateRow,
    TenantRow,
    UsageRow,
)
from arkwright.service.history import UtilisationHistory
from arkwright.service.schema import JobSubmit
from arkwright.timefmt import parse_duration

log = logging.getLogger("arkwright.control")
MAX_REFUSALS = 3  # starts a site may refuse a job in a row before the job fails with why
ACTIVE = ("pending", "starting", "running")


class AdmissionError(ValueError):
    """The job can never run here; nothing was stored."""


class IdempotencyConflict(ValueError):
    """The same Idempotency-Key was used for a different submission."""


def to_epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def core_job(job_id: str, tenant: str, spec: dict, submitted: float) -> Job:
    """The core's view of an accepted submission (as stored in JobRow.spec)."""
    limit = parse_duration(spec["time"])
    runtime = parse_duration(spec["expected_runtime"]) if spec.get("expected_runtime") else limit
    ckpt = spec.get("checkpoint_interval")
    deadline = spec.get("deadline")
    return Job(
        job_id=job_id,
        tenant=tenant,
        gpus=spec["gpus"],
        duration_s=min(runtime, limit),
        submit_time=submitted,
        time_limit_s=limit,
        data_policy=DataPolicy(
            residency=frozenset(spec["residency"]) if spec.get("residency") else None,
            classification=DataPolicy.parse(None, spec["classification"]).classification,
            personal_data=DataPolicy.parse(None, None, spec["personal_data"]).personal_data,
        ),
        gpu_types=frozenset(spec["gpu_type"]) if spec.get("gpu_type") else None,
        sites=frozenset(spec["sites"]) if spec.get("sites") else None,
        job_type=spec.get("job_type") or "default",
        priority=PriorityClass.parse(spec.get("priority")),
        preemptible=spec.get("preemptible", True),
        checkpoint_interval_s=parse_duration(ckpt) if ckpt else None,
        deadline=to_epoch(datetime.fromisoformat(deadline)) if deadline else None,
    )


@dataclass
class _PendingSubmit:
    row: JobRow
    job: Job
    actor: str
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


@dataclass
class PassStats:
    passes: int = 0
    last_pass_s: float = 0.0
    submissions: int = 0


class ControlPlane:
    def __init__(
        self,
        fleet: Fleet,
        policy: PolicySpec,
        sessions: sessionmaker,
        backends: dict[str, Backend],
        throughput: ThroughputTable | None = None,
        config: SchedulerConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float = 0.2,
        full_pass_every_s: float = 30.0,
        requeue_lost: bool = True,
        site_rest_s: float = 30.0,
        history_every_s: float = 60.0,
        on_pass: Callable[[float], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.policy = policy
        self.sessions = sessions
        self.backends = backends  # by site name
        self.scheduler = Scheduler(fleet, policy, throughput, config)
        self.clock = clock
        self.tick_s = tick_s
        self.full_pass_every_s = full_pass_every_s
        self.requeue_lost = requeue_lost
        self.site_rest_s = site_rest_s
        self.history = UtilisationHistory(history_every_s)
        # Pools cordoned for a while because their site's backend could not be reached:
        # pool index -> when to try again. Admin cordons are never touched by this.
        self._resting: dict[int, float] = {}
        self._refusals: dict[str, int] = {}  # job id -> starts refused in a row
        self.on_pass = on_pass
        self.lock = threading.RLock()
        self.stats = PassStats()
        self.pool_index = {p.name: p.index for p in fleet.pools}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_full = 0.0
        self._next_seq = 1
        self._specs: dict[str, dict] = {}  # active job id -> accepted spec
        self._pending: list[_PendingSubmit] = []
        self._pending_keys: dict[tuple[int, str], _PendingSubmit] = {}
        self._writer_wake = threading.Event()
        self._writer_thread: threading.Thread | None = None
        self._tenants: set[str] = set()

    # ------------------------------------------------------------------ start-up

    def ensure_tenants(self) -> None:
        """Programmes named in the fleet file exist as tenants."""
        with self.sessions() as session, session.begin():
            for tenant in self.fleet.tenants:
                if session.get(TenantRow, tenant.name) is None:
                    session.add(
                        TenantRow(
                            name=tenant.name,
                            weight=tenant.weight,
                            description=tenant.description,
                            gpu_hours_allocation=tenant.gpu_hours_allocation,
                        )
                    )

    def recover(self) -> dict[str, int]:
        """Rebuild the core from the database and the backends after a (re)start."""
        now = self.clock()
        counts = {"adopted": 0, "requeued": 0, "settled": 0, "pending": 0}
        with self.lock, self.sessions() as session:
            self._next_seq = (session.scalar(select(func.max(JobRow.seq))) or 0) + 1
            for row in session.scalars(select(PoolStateRow)):
                if row.cordoned and row.pool in self.pool_index:
                    self.scheduler.set_cordoned(self.pool_index[row.pool], True)
            for row in session.scalars(select(SiteStateRow)):
                if row.down:
                    for pool in self.fleet.pools_at(row.site):
                        self.scheduler.set_cordoned(pool.index, True)
            rows = list(
                session.scalars(select(JobRow).where(JobRow.state.in_(ACTIVE)).order_by(JobRow.seq))
            )
        # Running work first, so its GPUs are taken before anything else is placed.
        for row in sorted(rows, key=lambda r: (r.state == "pending", r.seq)):
            with self.lock:
                counts[self._recover_one(row, now)] += 1
        with self.sessions() as session, session.begin():
            session.add(AuditRow(actor="arkwright", action="recover", detail=str(counts)))
        return counts

    def _recover_one(self, row: JobRow, now: float) -> str:
        job = core_job(row.id, row.tenant, row.spec, to_epoch(row.submitted_at))
        job.work_done_s = row.work_done_s
        job.attempts = row.attempts
        self._specs[row.id] = row.spec
        if row.state == "pending" or row.pool is None:
            self.scheduler.submit(job, job.submit_time)
            return "pending"
        pool = self.fleet.pools[self.pool_index[row.pool]]
        backend = self.backends[pool.site.name]
        found = backend.recover(row.id, row.handle, row.attempts, now)
        if found is None:  # the start was recorded but never carried out
            self._record_requeued(row.id, "start not carried out before restart")
            self.scheduler.submit(job, job.submit_time)
            return "requeued"
        if isinstance(found, Outcome):
            allocation = tuple(tuple(a) for a in row.allocation or [])
            self.scheduler.adopt(job, pool.index, allocation, to_epoch(row.started_at) or now)
            self._settle_all([found])
            return "settled"
        allocation = tuple(tuple(a) for a in row.allocation or [])
        try:
            self.scheduler.adopt(job, pool.index, allocation, to_epoch(row.started_at) or now)
        except Exception as exc:  # the fleet changed under it: stop it, say why
            backend.cancel(row.id, found)
            self._update(
                row.id,
                "failed",
                reason=f"lost on restart: cannot re-adopt ({exc})",
                finished=now,
                event="failed",
            )
            return "settled"
        self._update(
            row.id, "running", handle=found, event="adopted", detail="found running after restart"
        )
        return "adopted"

    # ---------------------------------------------------------------- submission

    def submit(
        self,
        spec: JobSubmit,
        tenant: str,
        user_id: int,
        actor: str,
        idempotency_key: str | None = None,
    ) -> tuple[JobRow, bool]:
        """Accept a job (stored, then queued) and return it, or raise AdmissionError.
        With an Idempotency-Key already used for the same submission, returns the first
        job and False.

        Submissions are committed in groups by one writer thread: a request returns once
        its row is durable, and the core sees the job only after that commit."""
        stored = spec.model_dump(mode="json")
        stored["owner"] = actor  # the user whose mapped account runs it on each site
        now = self.clock()
        with self.lock:
            if idempotency_key:
                earlier = self._earlier_submission(user_id, idempotency_key)
                if earlier is not None:
                    earlier_row = earlier.row if isinstance(earlier, _PendingSubmit) else earlier
                    if earlier_row.spec != stored or earlier_row.tenant != tenant:
                        raise IdempotencyConflict(
                            f"Idempotency-Key {idempotency_key!r} was used for a different "
                            f"submission (job {earlier_row.id})"
                        )
                    if isinstance(earlier, _PendingSubmit):
                        waiting_for = earlier
                    else:
                        return earlier_row, False
                else:
                    waiting_for = None
            else:
                waiting_for = None
            if waiting_for is None:
                pending = self._admit(spec, stored, tenant, user_id, actor, idempotency_key, now)
        if waiting_for is not None:
            waiting_for.done.wait(60)
            return waiting_for.row, False
        if self._writer_thread is None or not self._writer_thread.is_alive():
            with self.lock:  # not serving: commit this submission here and now
                batch, self._pending = self._pending, []
            self._commit_batch(batch)
        if not pending.done.wait(60):
            raise RuntimeError(f"job {pending.row.id}: the database did not confirm in 60 s")
        if pending.error is not None:
            raise pending.error
        return pending.row, True

    def _earlier_submission(self, user_id: int, key: str) -> _PendingSubmit | JobRow | None:
        waiting = self._pending_keys.get((user_id, key))
        if waiting is not None:
            return waiting
        with self.sessions() as session:
            return session.scalar(
                select(JobRow).where(JobRow.user_id == user_id, JobRow.idempotency_key == key)
            )

    def _admit(
        self,
        spec: JobSubmit,
        stored: dict,
        tenant: str,
        user_id: int,
        actor: str,
        idempotency_key: str | None,
        now: float,
    ) -> _PendingSubmit:
        """Check a submission against the core's rules and queue it for the writer."""
        if tenant not in self._tenants:
            self._load_tenants()
            if tenant not in self._tenants:
                raise AdmissionError(f"tenant: unknown programme {tenant!r}")
        unknown = sorted(set(spec.sites or []) - set(self.fleet.site_by_name))
        if unknown:
            raise AdmissionError(f"sites: unknown site {unknown[0]!r}")
        seq = self._next_seq
        job_id = f"j-{seq:07d}"
        job = core_job(job_id, tenant, stored, now)
        reason = self.scheduler.admission_error(job)
        if reason is not None:
            raise AdmissionError(reason)
        self._next_seq += 1
        row = JobRow(
            id=job_id,
            seq=seq,
            tenant=tenant,
            user_id=user_id,
            name=spec.name,
            spec=stored,
            state="pending",
            reason="",
            attempts=0,
            work_done_s=0.0,
            idempotency_key=idempotency_key,
            submitted_at=from_epoch(now),
        )
        pending = _PendingSubmit(row, job, actor)
        if idempotency_key:
            self._pending_keys[(user_id, idempotency_key)] = pending
        self._pending.append(pending)
        self._writer_wake.set()
        return pending

    def _writer(self) -> None:
        """Commit waiting submissions together, then hand them to the core."""
        while not self._stop.is_set() or self._pending:
            self._writer_wake.wait(0.5)
            self._writer_wake.clear()
            with self.lock:
                batch, self._pending = self._pending, []
            if batch:
                self._commit_batch(batch)

    def _commit_batch(self, batch: list[_PendingSubmit]) -> None:
        try:
            self._insert(batch)
            committed = batch
        except Exception:  # find the one that fails; commit the rest one by one
            committed = []
            for pending in batch:
                try:
                    self._insert([pending])
                    committed.append(pending)
                except Exception as exc:
                    log.warning("submission %s not stored: %s", pending.row.id, exc)
                    pending.error = AdmissionError(f"not stored: {exc}")
        with self.lock:
            for pending in committed:
                self._specs[pending.row.id] = pending.row.spec
                self.scheduler.submit(pending.job, pending.job.submit_time)
                self.stats.submissions += 1
            for pending in batch:
                if pending.row.idempotency_key:
                    key = (pending.row.user_id, pending.row.idempotency_key)
                    self._pending_keys.pop(key, None)
                pending.done.set()

    def _insert(self, batch: list[_PendingSubmit]) -> None:
        columns = (
            "id",
            "seq",
            "tenant",
            "user_id",
            "name",
            "spec",
            "state",
            "reason",
            "attempts",
            "work_done_s",
            "idempotency_key",
            "submitted_at",
        )
        with self.sessions() as session, session.begin():
            session.execute(
                insert(JobRow), [{c: getattr(p.row, c) for c in columns} for p in batch]
            )
            session.execute(
                insert(JobEventRow),
                [
                    {
                        "job_id": p.row.id,
                        "kind": "submitted",
                        "detail": p.actor,
                        "at": p.row.submitted_at,
                    }
                    for p in batch
                ],
            )
            session.execute(
                insert(AuditRow),
                [
                    {
                        "actor": p.actor,
                        "action": "submit",
                        "target": p.row.id,
                        "at": p.row.submitted_at,
                        "detail": "",
                    }
                    for p in batch
                ],
            )

    def refresh_tenants(self) -> None:
        """Re-read the programmes (after one is created)."""
        with self.lock:
            self._load_tenants()

    def _load_tenants(self) -> None:
        with self.sessions() as session:
            self._tenants = set(session.scalars(select(TenantRow.name)))

    def cancel(self, job_id: str, actor: str) -> str:
        """Cancel a queued or running job; returns its state afterwards."""
        now = self.clock()
        with self.lock:
            job = self.scheduler.jobs.get(job_id)
            with self.sessions() as session:
                row = session.get(JobRow, job_id)
            if row is None:
                raise KeyError(job_id)
            if job is None or row.state not in ACTIVE:
                return row.state
            running = job.state is JobState.RUNNING
            if running:
                self._record_usage(job, now)
            self._update(
                job_id,
                "cancelled",
                reason=f"cancelled by {actor}",
                finished=now,
                event="cancelled",
                detail=actor,
                audit=(actor, "cancel"),
            )
            handle = row.handle
            self.scheduler.cancel(job_id, now)
            self._specs.pop(job_id, None)
            if running:
                self._backend_for(job).cancel(job_id, handle or {})
        self._wake.set()
        return "cancelled"

    # -------------------------------------------------------------- admin actions

    def _record_state(self, row_type, key: str, audit: AuditRow, **fields) -> None:
        """Upsert an admin state row (pool cordon, site down) and its audit entry."""
        with self.sessions() as session, session.begin():
            row = session.get(row_type, key) or row_type(
                **{row_type.__mapper__.primary_key[0].key: key}
            )
            for name, value in fields.items():
                setattr(row, name, value)
            session.add(row)
            session.add(audit)

    def set_pool_cordoned(self, pool_name: str, cordoned: bool, reason: str, actor: str) -> None:
        with self.lock:
            index = self.pool_index[pool_name]
            self._record_state(
                PoolStateRow,
                pool_name,
                AuditRow(
                    actor=actor,
                    action="cordon" if cordoned else "uncordon",
                    target=pool_name,
                    detail=reason,
                ),
                cordoned=cordoned,
                reason=reason,
            )
            self._resting.pop(index, None)
            self.scheduler.set_cordoned(index, cordoned)
        self._wake.set()

    def set_site_down(self, site_name: str, down: bool, reason: str, actor: str) -> int:
        """Mark a site down (its running work is lost and re-queued) or up again."""
        requeued = 0
        now = self.clock()
        with self.lock:
            self._record_state(
                SiteStateRow,
                site_name,
                AuditRow(
                    actor=actor,
                    action="site-down" if down else "site-up",
                    target=site_name,
                    detail=reason,
                ),
                down=down,
                reason=reason,
            )
            for pool in self.fleet.pools_at(site_name):
                self._resting.pop(pool.index, None)
                self.scheduler.set_cordoned(pool.index, down)
                if down:
                    for job in list(self.scheduler.running_by_end[pool.index]):
                        self._lose(job, now, f"site {site_name} marked down: {reason}")
                        requeued += 1
        self._wake.set()
        return requeued

    # --------------------------------------------------------------- the loop

    def start(self) -> None:
        self._stop.clear()
        self._load_tenants()
        self._thread = threading.Thread(target=self._loop, name="arkwright-control", daemon=True)
        self._thread.start()
        self._writer_thread = threading.Thread(
            target=self._writer, name="arkwright-writer", daemon=True
        )
        self._writer_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._writer_wake.set()
        for thread in (self._writer_thread, self._thread):
            if thread is not None:
                thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # keep scheduling; the failure is logged with its stack
                log.exception("control loop step failed")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def step(self) -> None:
        now = self.clock()
        outcomes = [o for b in self._distinct_backends() for o in b.poll(now)]
        if outcomes:
            with self.lock:
                self._settle_all(outcomes)
        self._record_backend_events()
        with self.lock:
            self._end_rests(now)
            if self.history.due(now):
                self.history.add(now, self.busy_by_site())
            full = now - self._last_full >= self.full_pass_every_s
            if full:
                self._last_full = now
            started = time.perf_counter()
            decisions = self.scheduler.schedule(now, full=full)
            elapsed = time.perf_counter() - started
            self.stats.passes += 1
            self.stats.last_pass_s = elapsed
            if self.on_pass:
                self.on_pass(elapsed)
            launches = self._carry_out(decisions, now) if decisions else []
        if launches:
            self._launch_all(launches, now)

    def _carry_out(self, decisions: list, now: float) -> list[tuple[Start, RunRequest]]:
        """Record every decision (one transaction), then act on it; the starts are returned
        for `_launch_all`. Bulk statements by primary key: a pass that starts thousands
        of jobs reads none of their rows."""
        updates: list[dict] = []
        events: list[dict] = []
        usage: list[dict] = []
        at = from_epoch(now)
        for decision in decisions:
            job = decision.job
            if isinstance(decision, Start):
                pool = self.fleet.pools[decision.pool]
                updates.append(
                    {
                        "id": job.job_id,
                        "state": "starting",
                        "pool": pool.name,
                        "allocation": [list(a) for a in decision.allocation],
                        "attempts": job.attempts,
                        "started_at": at,
                        "reason": "",
                    }
                )
                events.append(
                    {
                        "job_id": job.job_id,
                        "kind": "starting",
                        "at": at,
                        "detail": f"{pool.name} {list(decision.allocation)}",
                    }
                )
            elif isinstance(decision, Preempt):
                pool = self.fleet.pools[decision.pool]
                usage.append(self._usage(job, pool, decision.gpus, decision.ran_from, now))
                updates.append(
                    {
                        "id": job.job_id,
                        "state": "pending",
                        "reason": decision.reason,
                        "work_done_s": job.work_done_s,
                    }
                )
                events.append(
                    {"job_id": job.job_id, "kind": "preempted", "at": at, "detail": decision.reason}
                )
            elif isinstance(decision, Reject):
                updates.append(
                    {
                        "id": job.job_id,
                        "state": "rejected",
                        "reason": decision.reason,
                        "finished_at": at,
                    }
                )
                events.append(
                    {"job_id": job.job_id, "kind": "rejected", "at": at, "detail": decision.reason}
                )
        self._write(updates, events, usage)
        for decision in decisions:
            if isinstance(decision, Preempt):
                self._backend_for_pool(decision.pool).cancel(
                    decision.job.job_id, self._handle_of(decision.job.job_id)
                )
            elif isinstance(decision, Reject):
                self._specs.pop(decision.job.job_id, None)
        return [(d, self._request_for(d)) for d in decisions if isinstance(d, Start)]

    def _request_for(self, start: Start) -> RunRequest:
        job = start.job
        spec = self._specs.get(job.job_id, {})
        return RunRequest(
            job=job,
            pool=self.fleet.pools[start.pool],
            allocation=start.allocation,
            attempt=job.attempts,
            command=list(spec.get("command") or []),
            env=dict(spec.get("env") or {}),
            runtime_s=max(job.duration_s - job.work_done_s, 0.0) / job.speed,
            owner=spec.get("owner", ""),
        )

    def _launch_all(self, launches: list[tuple[Start, RunRequest]], now: float) -> None:
        """Ask the backends to run the starts, without holding the lock: a backend may take
        seconds (sbatch to a slow controller) and the API must not wait on it. Each start
        was recorded ('starting') first, so a crash here loses nothing."""
        results: list[tuple[Start, RunRequest, dict | Exception]] = []
        unreachable: set[str] = set()
        for start, request in launches:
            site = request.pool.site.name
            try:
                if site in unreachable or request.pool.index in self._resting:
                    raise BackendUnavailable("resting after a failed start there")
                results.append((start, request, self.backends[site].start(request)))
            except BackendUnavailable as exc:
                unreachable.add(site)  # the rest of this pass goes elsewhere at once
                results.append((start, request, exc))
            except Exception as exc:
                results.append((start, request, exc))
        at = from_epoch(now)
        running: list[dict] = []
        events: list[dict] = []
        with self.lock:
            for start, request, result in results:
                handle = self._settle_launch(start, request, result, now)
                if handle is not None:
                    job_id = start.job.job_id
                    running.append({"id": job_id, "state": "running", "handle": handle})
                    events.append(
                        {"job_id": job_id, "kind": "running", "at": at, "detail": request.pool.name}
                    )
            self._write(running, events, [])

    def _write(self, updates: list[dict], events: list[dict], usage: list[dict]) -> None:
        """One transaction: job updates by primary key (grouped by the columns they set,
        as executemany needs), new events, usage rows."""
        if not (updates or events or usage):
            return
        by_columns: dict[tuple[str, ...], list[dict]] = {}
        for row in updates:
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        with self.sessions() as session, session.begin():
            for rows in by_columns.values():
                session.execute(update(JobRow), rows)
            if events:
                session.execute(insert(JobEventRow), events)
            if usage:
                session.execute(insert(UsageRow), usage)

    def _settle_launch(
        self, start: Start, request: RunRequest, result: dict | Exception, now: float
    ) -> dict | None:
        """What a backend said to a start: its handle if the job is running, else None
        (requeued, or failed with the reason). Called under the lock."""
        job = start.job
        pool = request.pool
        current = self.scheduler.jobs.get(job.job_id)
        still_ours = (
            current is job
            and job.state is JobState.RUNNING
            and job.attempts == request.attempt
            and job.pool_index == start.pool
        )
        if not isinstance(result, Exception):
            if still_ours:
                self._refusals.pop(job.job_id, None)
                return result
            # Cancelled, preempted or lost while it was being started: stop that run.
            self.backends[pool.site.name].cancel(job.job_id, result)
            return None
        if not still_ours:
            return None  # nothing started, and the job has moved on
        exc = result
        if isinstance(exc, BackendUnavailable | StartRefused):
            refused = isinstance(exc, StartRefused)
            refusals = self._refusals.get(job.job_id, 0) + refused
            if refusals < MAX_REFUSALS:
                self._refusals[job.job_id] = refusals
                why = (
                    f"{pool.name} refused the start ({exc})"
                    if refused
                    else f"{pool.site.name} not reachable ({exc})"
                )
                log.warning("%s goes back to the queue: %s", job.job_id, why)
                self.scheduler.requeue(job.job_id, now)
                self._record_requeued(job.job_id, why)
                site_pools = [p.index for p in self.fleet.pools_at(pool.site.name)]
                self._rest([pool.index] if refused else site_pools, now)
                return None
            failure = f"refused {refusals} times in a row; last: {exc}"
        else:
            failure = str(exc)
        log.warning("start of %s on %s failed: %s", job.job_id, pool.name, failure)
        self._refusals.pop(job.job_id, None)
        self._update(
            job.job_id,
            "failed",
            reason=f"could not start on {pool.name}: {failure}",
            finished=now,
            event="failed",
        )
        self.scheduler.finish(job.job_id, now)
        self._specs.pop(job.job_id, None)
        return None

    def _settle_all(self, outcomes: list[Outcome]) -> None:
        """Record how runs ended (one transaction), then free their GPUs in the core."""
        updates: list[dict] = []
        events: list[dict] = []
        usage: list[dict] = []
        ended: list[tuple[str, float]] = []
        for outcome in outcomes:
            job = self.scheduler.jobs.get(outcome.job_id)
            if job is None or job.state is not JobState.RUNNING:
                continue  # a run we already stopped (cancelled or preempted)
            if outcome.ending is Ending.LOST:
                self._lose(job, outcome.ended_at, outcome.reason)
                continue
            pool = self.fleet.pools[job.pool_index]
            usage.append(
                self._usage(job, pool, job.allocated_gpus, job.started_at, outcome.ended_at)
            )
            state = {Ending.COMPLETED: "completed", Ending.CANCELLED: "cancelled"}.get(
                outcome.ending, "failed"
            )
            updates.append(
                {
                    "id": job.job_id,
                    "state": state,
                    "reason": outcome.reason,
                    "finished_at": from_epoch(outcome.ended_at),
                    "exit_code": outcome.exit_code,
                }
            )
            events.append(
                {
                    "job_id": job.job_id,
                    "kind": state,
                    "detail": outcome.reason,
                    "at": from_epoch(outcome.ended_at),
                }
            )
            ended.append((job.job_id, outcome.ended_at))
        self._write(updates, events, usage)
        for job_id, at in ended:
            self.scheduler.finish(job_id, at)
            self._specs.pop(job_id, None)

    def _lose(self, job: Job, now: float, reason: str) -> None:
        """A run lost through no fault of the job: re-queue it (policy) or fail it."""
        handle = self._handle_of(job.job_id)
        self._record_usage(job, now)
        if self.requeue_lost:
            self._record_requeued(job.job_id, reason)
            self.scheduler.requeue(job.job_id, now)
            with self.sessions() as session, session.begin():
                session.get(JobRow, job.job_id).work_done_s = job.work_done_s
        else:
            self._update(job.job_id, "failed", reason=reason, finished=now, event="failed")
            self.scheduler.finish(job.job_id, now)
        self._backend_for(job).cancel(job.job_id, handle or {})

    def _record_requeued(self, job_id: str, why: str) -> None:
        """Back in the queue, placement forgotten, with the reason in its history."""
        self._update(
            job_id,
            "pending",
            reason=f"requeued: {why}",
            pool=None,
            allocation=None,
            handle=None,
            event="requeued",
            detail=why,
        )

    def busy_by_site(self) -> dict[str, int]:
        busy: dict[str, int] = {}
        for pool in self.fleet.pools:
            site = pool.site.name
            busy[site] = busy.get(site, 0) + self.scheduler.busy_gpus(pool.index)
        return busy

    def resting_sites(self) -> set[str]:
        """Sites whose backend could not be reached lately: every pool resting. (A pool
        resting after a refused start leaves its site up.)"""
        return {
            site.name
            for site in self.fleet.sites
            if all(p.index in self._resting for p in self.fleet.pools_at(site.name))
        }

    # ------------------------------------------------------- unreachable sites

    def _rest(self, pool_indices: list[int], now: float) -> None:
        """Start nothing more on these pools for a while; work goes elsewhere meanwhile."""
        for index in pool_indices:
            if index in self._resting or not self.scheduler.cordoned_mask >> index & 1:
                self._resting[index] = now + self.site_rest_s
                self.scheduler.set_cordoned(index, True)

    def _end_rests(self, now: float) -> None:
        for index, until in list(self._resting.items()):
            if now >= until:
                del self._resting[index]
                self.scheduler.set_cordoned(index, False)

    def _distinct_backends(self) -> list[Backend]:
        """Each backend once (sites may share one, as the simulated ones do)."""
        return list({id(b): b for b in self.backends.values()}.values())

    def _record_backend_events(self) -> None:
        """Backends that report progress (Slurm's own job states) add to job histories."""
        at = from_epoch(self.clock())
        events = []
        for backend in self._distinct_backends():
            drain = getattr(backend, "drain_events", None)
            if drain is not None:
                events += [
                    {"job_id": job_id, "kind": kind, "detail": detail, "at": at}
                    for job_id, kind, detail in drain()
                ]
        if events:
            self._write([], events, [])

    # --------------------------------------------------------------- helpers

    def _backend_for(self, job: Job) -> Backend:
        return self._backend_for_pool(job.pool_index)

    def _backend_for_pool(self, pool_index: int) -> Backend:
        return self.backends[self.fleet.pools[pool_index].site.name]

    def _handle_of(self, job_id: str) -> dict:
        with self.sessions() as session:
            row = session.get(JobRow, job_id)
            return dict(row.handle or {}) if row is not None else {}

    def _usage_row(self, job: Job, pool, gpus: int, start: float, end: float) -> UsageRow:
        # Simulated sites run in scaled time: account the job time they stand for.
        scale = getattr(self.backends[pool.site.name], "time_scale", 1.0)
        hours = gpus * max(end - start, 0.0) * scale / 3600.0
        return UsageRow(
            job_id=job.job_id,
            tenant=job.tenant,
            site=pool.site.name,
            pool=pool.name,
            gpus=gpus,
            started_at=from_epoch(start),
            ended_at=from_epoch(end),
            gpu_hours=hours,
            cost_gbp=hours * pool.price_gbp_per_gpu_hour,
            energy_kwh=hours * pool.watts_per_gpu * pool.site.pue / 1000.0,
        )

    def _usage(self, job: Job, pool, gpus: int, start: float, end: float) -> dict:
        row = self._usage_row(job, pool, gpus, start, end)
        return {c.key: getattr(row, c.key) for c in UsageRow.__table__.columns if c.key != "id"}

    def _record_usage(self, job: Job, end: float) -> None:
        pool = self.fleet.pools[job.pool_index]
        with self.sessions() as session, session.begin():
            session.add(self._usage_row(job, pool, job.allocated_gpus, job.started_at, end))

    def _update(
        self,
        job_id: str,
        state: str,
        *,
        event: str,
        detail: str = "",
        reason: str | None = None,
        finished: float | None = None,
        exit_code: int | None = None,
        audit: tuple[str, str] | None = None,
        **fields,
    ) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(JobRow, job_id)
            row.state = state
            if reason is not None:
                row.reason = reason
            if finished is not None:
                row.finished_at = from_epoch(finished)
            if exit_code is not None:
                row.exit_code = exit_code
            for name, value in fields.items():
                setattr(row, name, value)
            session.add(JobEventRow(job_id=job_id, kind=event, detail=detail))
            if audit:
                session.add(AuditRow(actor=audit[0], action=audit[1], target=job_id))

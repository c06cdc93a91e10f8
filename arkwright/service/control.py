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
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from arkwright.backends.base import Backend, Ending, Outcome, RunRequest
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
from arkwright.service.schema import JobSubmit
from arkwright.timefmt import parse_duration

log = logging.getLogger("arkwright.control")
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
            self._update(
                row.id,
                "pending",
                reason="requeued: start not carried out before restart",
                pool=None,
                allocation=None,
                handle=None,
                event="requeued",
            )
            self.scheduler.submit(job, job.submit_time)
            return "requeued"
        if isinstance(found, Outcome):
            allocation = tuple(tuple(a) for a in row.allocation or [])
            self.scheduler.adopt(job, pool.index, allocation, to_epoch(row.started_at) or now)
            self._settle(found)
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
        job and False."""
        stored = spec.model_dump(mode="json")
        now = self.clock()
        with self.lock:
            with self.sessions() as session:
                if idempotency_key:
                    earlier = session.scalar(
                        select(JobRow).where(
                            JobRow.user_id == user_id, JobRow.idempotency_key == idempotency_key
                        )
                    )
                    if earlier is not None:
                        if earlier.spec != stored or earlier.tenant != tenant:
                            raise IdempotencyConflict(
                                f"Idempotency-Key {idempotency_key!r} was used for a different "
                                f"submission (job {earlier.id})"
                            )
                        return earlier, False
                if session.get(TenantRow, tenant) is None:
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
            row = JobRow(
                id=job_id,
                seq=seq,
                tenant=tenant,
                user_id=user_id,
                name=spec.name,
                spec=stored,
                state="pending",
                idempotency_key=idempotency_key,
                submitted_at=from_epoch(now),
            )
            with self.sessions() as session, session.begin():
                session.add(row)
                session.flush()  # the job row must exist before rows that point at it
                session.add(JobEventRow(job_id=job_id, kind="submitted", detail=actor))
                session.add(AuditRow(actor=actor, action="submit", target=job_id))
            self._next_seq += 1
            self._specs[job_id] = stored
            self.scheduler.submit(job, now)
            self.stats.submissions += 1
        self._wake.set()
        return row, True

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

    def set_pool_cordoned(self, pool_name: str, cordoned: bool, reason: str, actor: str) -> None:
        with self.lock:
            index = self.pool_index[pool_name]
            with self.sessions() as session, session.begin():
                row = session.get(PoolStateRow, pool_name) or PoolStateRow(pool=pool_name)
                row.cordoned, row.reason = cordoned, reason
                session.add(row)
                session.add(
                    AuditRow(
                        actor=actor,
                        action="cordon" if cordoned else "uncordon",
                        target=pool_name,
                        detail=reason,
                    )
                )
            self.scheduler.set_cordoned(index, cordoned)
        self._wake.set()

    def set_site_down(self, site_name: str, down: bool, reason: str, actor: str) -> int:
        """Mark a site down (its running work is lost and re-queued) or up again."""
        requeued = 0
        now = self.clock()
        with self.lock:
            with self.sessions() as session, session.begin():
                row = session.get(SiteStateRow, site_name) or SiteStateRow(site=site_name)
                row.down, row.reason = down, reason
                session.add(row)
                session.add(
                    AuditRow(
                        actor=actor,
                        action="site-down" if down else "site-up",
                        target=site_name,
                        detail=reason,
                    )
                )
            for pool in self.fleet.pools_at(site_name):
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
        self._thread = threading.Thread(target=self._loop, name="arkwright-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

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
        for backend in {id(b): b for b in self.backends.values()}.values():
            for outcome in backend.poll(now):
                with self.lock:
                    self._settle(outcome)
        with self.lock:
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
            if decisions:
                self._carry_out(decisions, now)

    def _carry_out(self, decisions: list, now: float) -> None:
        starts = [d for d in decisions if isinstance(d, Start)]
        # Record first: every start, preemption and rejection is committed before any
        # backend is asked to act on it.
        with self.sessions() as session, session.begin():
            for decision in decisions:
                job = decision.job
                row = session.get(JobRow, job.job_id)
                if isinstance(decision, Start):
                    pool = self.fleet.pools[decision.pool]
                    row.state, row.pool = "starting", pool.name
                    row.allocation = [list(a) for a in decision.allocation]
                    row.attempts = job.attempts
                    row.started_at = from_epoch(now)
                    row.reason = ""
                    session.add(
                        JobEventRow(
                            job_id=job.job_id,
                            kind="starting",
                            detail=f"{pool.name} {list(decision.allocation)}",
                        )
                    )
                elif isinstance(decision, Preempt):
                    pool = self.fleet.pools[decision.pool]
                    session.add(self._usage_row(job, pool, decision.gpus, decision.ran_from, now))
                    row.state, row.reason = "pending", decision.reason
                    row.work_done_s = job.work_done_s
                    session.add(
                        JobEventRow(job_id=job.job_id, kind="preempted", detail=decision.reason)
                    )
                elif isinstance(decision, Reject):
                    row.state, row.reason = "rejected", decision.reason
                    row.finished_at = from_epoch(now)
                    session.add(
                        JobEventRow(job_id=job.job_id, kind="rejected", detail=decision.reason)
                    )
        for decision in decisions:
            if isinstance(decision, Preempt):
                self._backend_for_pool(decision.pool).cancel(
                    decision.job.job_id, self._handle_of(decision.job.job_id)
                )
            elif isinstance(decision, Reject):
                self._specs.pop(decision.job.job_id, None)
        for start in starts:
            self._launch(start, now)

    def _launch(self, start: Start, now: float) -> None:
        job = start.job
        pool = self.fleet.pools[start.pool]
        spec = self._specs.get(job.job_id, {})
        request = RunRequest(
            job=job,
            pool=pool,
            allocation=start.allocation,
            attempt=job.attempts,
            command=list(spec.get("command") or []),
            env=dict(spec.get("env") or {}),
            runtime_s=max(job.duration_s - job.work_done_s, 0.0) / job.speed,
        )
        try:
            handle = self.backends[pool.site.name].start(request)
        except Exception as exc:
            log.warning("start of %s on %s failed: %s", job.job_id, pool.name, exc)
            self._update(
                job.job_id,
                "failed",
                reason=f"could not start on {pool.name}: {exc}",
                finished=now,
                event="failed",
            )
            self.scheduler.finish(job.job_id, now)
            self._specs.pop(job.job_id, None)
            return
        self._update(job.job_id, "running", handle=handle, event="running", detail=pool.name)

    def _settle(self, outcome: Outcome) -> None:
        job = self.scheduler.jobs.get(outcome.job_id)
        if job is None or job.state is not JobState.RUNNING:
            return  # a run we already stopped (cancelled or preempted)
        if outcome.ending is Ending.LOST:
            self._lose(job, outcome.ended_at, outcome.reason)
            return
        self._record_usage(job, outcome.ended_at)
        state = {Ending.COMPLETED: "completed", Ending.CANCELLED: "cancelled"}.get(
            outcome.ending, "failed"
        )
        self._update(
            job.job_id,
            state,
            reason=outcome.reason,
            finished=outcome.ended_at,
            exit_code=outcome.exit_code,
            event=state,
            detail=outcome.reason,
        )
        self.scheduler.finish(job.job_id, outcome.ended_at)
        self._specs.pop(job.job_id, None)

    def _lose(self, job: Job, now: float, reason: str) -> None:
        """A run lost through no fault of the job: re-queue it (policy) or fail it."""
        handle = self._handle_of(job.job_id)
        self._record_usage(job, now)
        if self.requeue_lost:
            self._update(
                job.job_id,
                "pending",
                reason=f"requeued: {reason}",
                pool=None,
                allocation=None,
                handle=None,
                event="requeued",
                detail=reason,
            )
            self.scheduler.requeue(job.job_id, now)
            with self.sessions() as session, session.begin():
                session.get(JobRow, job.job_id).work_done_s = job.work_done_s
        else:
            self._update(job.job_id, "failed", reason=reason, finished=now, event="failed")
            self.scheduler.finish(job.job_id, now)
        self._backend_for(job).cancel(job.job_id, handle or {})

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
        hours = gpus * max(end - start, 0.0) / 3600.0
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

    def session(self) -> Session:
        return self.sessions()

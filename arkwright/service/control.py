"""The control plane: the scheduler core on the wall clock, with nothing lost.

One lock guards the core, and no backend I/O ever runs under it. Each unit of work (a
scheduling pass, a batch of finished runs, a cancel, an admin action) changes the core
and collects its rows, then commits them in one transaction (`_transaction`); when that
commit fails, the core is rebuilt from the database, so memory never runs ahead of it
(Armada's WriteTxn/Commit; Kueue's assume/forget). Starts are committed ('starting')
before any backend hears of them; stops go through the run_stops outbox.

Any number of replicas share one PostgreSQL database: all serve the API and take
submissions; one leader (an advisory lock, fenced by an epoch) runs the loop and the
backends. A replica that does not lead keeps a read model (rebuilt from the database)
and hands the actions that need the core to the leader as requests.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from arkwright.backends.base import Backend, Outcome
from arkwright.core.fleet import Fleet
from arkwright.core.job import Job, JobState
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler, SchedulerConfig
from arkwright.core.throughput import ThroughputTable
from arkwright.service import dependencies, loop, outcomes, recovery, replicas
from arkwright.service.cordons import CordonReason, Cordons
from arkwright.service.db import JobRow, PoolStateRow, SiteStateRow
from arkwright.service.dispatch import RetryPolicy, Stopper
from arkwright.service.errors import (
    AdmissionError,
    IdempotencyConflict,
    NotLeader,
    StoreUnavailable,
)
from arkwright.service.history import UtilisationHistory
from arkwright.service.intake import Intake
from arkwright.service.leader import election_for
from arkwright.service.records import core_job, from_epoch, to_epoch
from arkwright.service.schema import JobSubmit
from arkwright.service.shares import entitled_shares
from arkwright.service.states import ACTIVE, RunState
from arkwright.service.store import Store, Writes

__all__ = [
    "ACTIVE",
    "AdmissionError",
    "ControlPlane",
    "IdempotencyConflict",
    "StoreUnavailable",
    "core_job",
    "from_epoch",
    "to_epoch",
]
log = logging.getLogger("arkwright.control")


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
        retry: RetryPolicy | None = None,
        on_pass: Callable[[float], None] | None = None,
        api_only: bool = False,
    ) -> None:
        self.fleet = fleet
        self.policy = policy
        self.throughput = throughput
        self.config = config
        self.sessions = sessions
        self.backends = backends  # by site name
        self.clock = clock
        self.tick_s = tick_s
        self.full_pass_every_s = full_pass_every_s
        self.requeue_lost = requeue_lost
        self.site_rest_s = site_rest_s
        self.retry = retry or RetryPolicy()
        self.history = UtilisationHistory(history_every_s)
        self.on_pass = on_pass
        self.lock = threading.RLock()  # the core and the maps below; never held over I/O
        self.stats = PassStats()
        self.pool_index = {p.name: p.index for p in fleet.pools}
        self.store = Store(sessions)
        self.scheduler = Scheduler(fleet, policy, throughput, config)
        # The admission rules (eligibility, shapes, wall-time limits) depend only on the
        # fleet and the job, so requests check them on a core of their own under a lock of
        # their own: a submission never waits for the loop's pass or its commit. The live
        # core still decides at `submit` (a refusal there is a Reject decision, recorded).
        self._admission = Scheduler(fleet, policy, throughput, config)
        self._admission_lock = threading.Lock()
        self.cordons = Cordons(len(fleet.pools), self.scheduler.set_cordoned)
        self.stopper = Stopper(self.store, backends)
        self.intake = Intake(self.store, fleet, self._admission_error, self._stored, clock)
        engine = sessions.kw.get("bind")
        self.api_only = api_only  # an API worker: never leads (see leader.NeverLead)
        self.election = election_for(engine, api_only=api_only)
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.is_leader = False
        # State beside the core, rebuilt with it (recovery.rebuild):
        self._specs: dict[str, dict] = {}  # active job id -> accepted spec
        self._handles: dict[str, dict] = {}  # job id -> backend handle of its live run
        self._held: dict[str, tuple[Job, float]] = {}  # backing off: job id -> (job, until)
        self._arrival_notices: list = []  # what the core said when rebuilt, still to write
        self._lost: dict[str, int] = {}  # job id -> runs lost so far
        self._refused: dict[str, int] = {}  # job id -> starts refused in a row
        self._resting: dict[int, float] = {}  # pool index -> when its rest ends
        self._unrecovered: dict[str, JobRow] = {}  # placed runs a backend has not answered for
        self._unadoptable: dict[str, tuple[JobRow, str]] = {}
        self._unsettled: list[Outcome] = []  # outcomes whose commit failed: settle again
        self._unsettled_launches: list = []  # start answers whose commit failed: again
        self._seen_seq = 0  # the intake's high-water mark: jobs numbered up to it are taken
        self._stale = False  # a rollback could not rebuild (database down): rebuild first
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_lock = threading.Lock()  # one step at a time (the loop, or a test)
        self._last_full = 0.0
        self._last_follow = 0.0
        self._last_lead_check = 0.0

    # ------------------------------------------------------------------ start-up

    def ensure_tenants(self) -> None:
        """Programmes named in the fleet file exist as tenants."""
        self.store.ensure_tenants(self.fleet)

    def recover(self) -> dict[str, int]:
        """Take the lead if it is free (then rebuild the core and ask each backend what
        became of its runs); otherwise build the read model a standby serves."""
        if self.election.try_acquire():
            return self._become_leader()
        with self.lock:
            recovery.rebuild(self)
        return {"adopted": 0, "requeued": 0, "settled": 0, "pending": 0, "unanswered": 0}

    def _become_leader(self) -> dict[str, int]:
        epoch = self.store.take_leadership(self.identity)
        log.info("%s leads (epoch %d)", self.identity, epoch)
        self.is_leader = True
        self._last_lead_check = time.monotonic()
        return recovery.recover(self)

    def _step_down(self, why: str) -> None:
        if self.is_leader:
            log.warning("%s no longer leads: %s", self.identity, why)
        self.is_leader = False
        self.store.epoch = None
        self.election.release()

    # ------------------------------------------------------------- transactions

    @contextmanager
    def _transaction(self) -> Iterator[Writes]:
        """Core changes made inside and the rows collected commit as one unit: if the
        commit (or anything before it) fails, the core is rebuilt from the database and
        the error goes on. Stops the unit owes are handed to the Stopper after commit.
        Call under the lock."""
        writes = Writes()
        try:
            yield writes
            stop_ids = self.store.write(writes)
        except NotLeader as exc:
            self._step_down(str(exc))
            self._rollback()
            raise
        except BaseException:
            self._rollback()
            raise
        self.stopper.send(
            [
                (i, s["job_id"], s["site"], s["handle"])
                for i, s in zip(stop_ids, writes.stops, strict=True)
            ]
        )

    def _rollback(self) -> None:
        try:
            recovery.rebuild(self)
        except StoreUnavailable as exc:  # the database is away: rebuild before anything
            log.error("core out of step with the database until it answers: %s", exc)
            self._stale = True

    def _require_core(self) -> None:
        if self._stale:
            try:
                recovery.rebuild(self)
            except StoreUnavailable:
                raise StoreUnavailable("the database is not answering; try again") from None

    # ---------------------------------------------------------------- submission

    def submit(
        self,
        spec: JobSubmit,
        tenant: str,
        user_id: int,
        actor: str,
        idempotency_key: str | None = None,
        warnings: list[str] | None = None,
    ) -> tuple[JobRow, bool]:
        """Accept a job (stored, then queued) and return it, or raise AdmissionError.
        With an Idempotency-Key already used for the same submission, returns the first
        job and False. A database failure raises StoreUnavailable (a 503). `warnings`:
        what resolving the submission's Slurm names and defaults changed, kept with it."""
        return self.intake.submit(spec, tenant, user_id, actor, idempotency_key, warnings)

    def test_submission(self, spec: JobSubmit, tenant: str, actor: str) -> dict:
        """sbatch --test-only: what admission says and when the job could start, with
        nothing stored. AdmissionError for a job that could never run."""
        stored = self.intake.stored_spec(spec, tenant, actor)
        if not stored["owner_sites"]:
            raise AdmissionError(f"sites: user {actor!r} has no account on any site")
        now = self.clock()
        job = core_job("j-test", tenant, stored, now)
        with self.lock:
            reason = self.scheduler.admission_error(job)
            if reason is not None:
                raise AdmissionError(reason)
            when, pool = self.scheduler.estimate_start(job, now)
        name = self.fleet.pools[pool].name if pool is not None else None
        if spec.dependency:
            why = "after its dependency is satisfied, at the earliest"
        elif when is None:
            why = "no estimate: every pool it may use is cordoned"
        elif when <= now:
            why = "it fits now"
        else:
            why = "when enough running jobs reach their time limits (work queued ahead not counted)"
        return {"would_start_at": when, "pool": name, "reason": why}

    def expected_starts(self, job_ids: list[str]) -> dict[str, float]:
        """The core's start estimate (epoch) for each of these pending jobs it has one for."""
        now = self.clock()
        found: dict[str, float] = {}
        with self.lock:
            for job_id in job_ids[:1000]:
                job = self.scheduler.jobs.get(job_id)
                if job is None or job.state is not JobState.PENDING:
                    continue
                when, _ = self.scheduler.estimate_start(job, now)
                if when is not None:
                    found[job_id] = when
        return found

    def _admission_error(self, job: Job) -> str | None:
        with self._admission_lock:
            return self._admission.admission_error(job)

    def _stored(self, count: int) -> None:
        self.stats.submissions += count
        self._wake.set()

    def _take_new_submissions(self, now: float) -> None:
        """The leader's intake: jobs stored (by any replica) since it last looked."""
        rows = self.store.new_submissions(self._seen_seq)
        if not rows:
            return
        # How the jobs their dependencies name ended (read first; any that ends after
        # this read the core itself remembers).
        ended = dependencies.parents_ended(self.store, [r.spec for r in rows])
        with self._transaction() as writes:
            for row in rows:
                self._seen_seq = max(self._seen_seq, row.seq)
                if row.state != RunState.PENDING or row.id in self.scheduler.jobs:
                    continue
                job = recovery.job_of(row)
                self._specs[row.id] = row.spec
                decisions = self.scheduler.submit(job, job.submit_time, ended)
                outcomes.carry_out(self, writes, decisions, now)

    def refresh_tenants(self) -> None:
        """Re-read the programmes and their weights (after one is created or changed):
        the running scheduler uses the new weights at once."""
        self.intake.load_tenants()
        if not self.is_leader:
            replicas.ask_leader(self, "tenants", "", "arkwright", {})
            return
        weights = self.store.tenant_weights()
        with self.lock:
            for tenant, weight in weights.items():
                if self.scheduler.weights.get(tenant) != weight:
                    self.scheduler.set_weight(tenant, weight)
        self._wake.set()

    def entitled_shares(self) -> dict[str, float]:
        """Each programme's entitled fraction of the fleet, as the scheduler uses it."""
        with self.lock:
            return entitled_shares(self.scheduler.weights)

    # -------------------------------------------------------------------- cancel

    def cancel(self, job_id: str, actor: str) -> str:
        """Cancel a queued or running job; returns its state afterwards. Its run is
        stopped on the backend after this returns (the outbox), never under the lock."""
        if not self.is_leader:
            row = self.store.job(job_id)
            if row is None:
                raise KeyError(job_id)
            if row.state not in ACTIVE:
                return row.state
            return replicas.ask_leader(self, "cancel", job_id, actor, {}) or row.state
        now = self.clock()
        with self.lock:
            self._require_core()
            row = self.store.job(job_id)
            if row is None:
                raise KeyError(job_id)
            if row.state not in ACTIVE:
                return row.state
            if job_id not in self.scheduler.jobs and job_id not in self._held:
                self._take_new_submissions(now)
            job = self.scheduler.jobs.get(job_id)
            with self._transaction() as writes:
                writes.updates.append(
                    {
                        "id": job_id,
                        "state": RunState.CANCELLED,
                        "reason": f"cancelled by {actor}",
                        "finished_at": from_epoch(now),
                    }
                )
                outcomes.event(writes, job_id, RunState.CANCELLED, actor, now)
                writes.audits.append(
                    {"actor": actor, "action": "cancel", "target": job_id, "detail": ""}
                )
                if job is not None and job.state is JobState.RUNNING:
                    outcomes.charge(self, writes, job, job.allocated_gpus, job.started_at, now)
                    outcomes.owe_stop(self, writes, job, f"cancelled by {actor}")
                if job is not None:
                    self.scheduler.cancel(job_id, now)
                self._forget(job_id)
        self._wake.set()
        return RunState.CANCELLED

    def _forget(self, job_id: str) -> None:
        for table in (self._specs, self._handles, self._held, self._lost, self._refused):
            table.pop(job_id, None)

    # -------------------------------------------------------------- admin actions

    def set_pool_cordoned(self, pool_name: str, cordoned: bool, reason: str, actor: str) -> None:
        """An admin's cordon: one reason among others (site down, resting) for the pool."""
        if not self.is_leader:
            replicas.ask_leader(
                self, "cordon", pool_name, actor, {"cordoned": cordoned, "reason": reason}
            )
            return
        with self.lock:
            self._require_core()
            with self._transaction() as writes:
                writes.states.append(
                    (PoolStateRow, pool_name, {"cordoned": cordoned, "reason": reason})
                )
                writes.audits.append(
                    {
                        "actor": actor,
                        "action": "cordon" if cordoned else "uncordon",
                        "target": pool_name,
                        "detail": reason,
                    }
                )
                self.cordons.set(self.pool_index[pool_name], CordonReason.ADMIN, cordoned)
        self._wake.set()

    def set_site_down(self, site_name: str, down: bool, reason: str, actor: str) -> int:
        """Mark a site down (its running work is lost and re-queued) or up again. Marking
        it up lifts only the site-down reason: an admin's pool cordon stays."""
        if not self.is_leader:
            answer = replicas.ask_leader(
                self, "site", site_name, actor, {"down": down, "reason": reason}
            )
            return int(answer or 0)
        requeued = 0
        now = self.clock()
        with self.lock:
            self._require_core()
            with self._transaction() as writes:
                writes.states.append((SiteStateRow, site_name, {"down": down, "reason": reason}))
                writes.audits.append(
                    {
                        "actor": actor,
                        "action": "site-down" if down else "site-up",
                        "target": site_name,
                        "detail": reason,
                    }
                )
                for pool in self.fleet.pools_at(site_name):
                    self.cordons.set(pool.index, CordonReason.SITE_DOWN, down)
                    if down:
                        for job in list(self.scheduler.running_by_end[pool.index]):
                            outcomes.lose(
                                self, writes, job, now, f"site {site_name} marked down: {reason}"
                            )
                            requeued += 1
        self._wake.set()
        return requeued

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

    def _rest(self, pool_indices: list[int], now: float) -> None:
        """Start nothing more on these pools for a while; work goes elsewhere meanwhile."""
        for index in pool_indices:
            self._resting[index] = now + self.site_rest_s
            self.cordons.set(index, CordonReason.RESTING, True)

    def _end_rests(self, now: float) -> None:
        for index, until in list(self._resting.items()):
            if now >= until:
                del self._resting[index]
                self.cordons.set(index, CordonReason.RESTING, False)

    # ------------------------------------------------- requests between replicas

    # --------------------------------------------------------------- the loop

    def start(self) -> None:
        self._stop.clear()
        self.intake.load_tenants()
        self.intake.start()
        self._thread = threading.Thread(target=self._loop, name="arkwright-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.intake.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._step_lock:
            # The lock goes, so a successor can lead at once; this replica's epoch stays
            # valid (its writes fenced by it) until one does.
            self.election.release()
        self.stopper.shutdown()
        engine = self.sessions.kw.get("bind")
        if engine is not None:  # idle connections go back (the engine stays usable)
            engine.dispose()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except StoreUnavailable as exc:  # the database is away: try again next tick
                log.warning("control loop step: %s", exc)
            except Exception:  # keep scheduling; the failure is logged with its stack
                log.exception("control loop step failed")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def step(self) -> None:
        with self._step_lock:
            if not self.is_leader:
                loop.follow(self)
            if self.is_leader and loop.still_leading(self):
                loop.lead(self)

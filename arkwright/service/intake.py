"""Intake: a submission checked, stored durably, and its Idempotency-Key honoured.

Any replica takes submissions. A request returns once its row is committed; one writer
thread commits waiting submissions in groups (group commit). The leader reads new rows
from the database by number (`ControlPlane._take_new_submissions`), so the core sees a
job only after it is durable, whichever replica took it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from arkwright.core.arrays import parse_array_spec
from arkwright.core.fleet import Fleet
from arkwright.core.job import Job
from arkwright.fleets.identity import sites_that_can_run
from arkwright.service.db import JobRow
from arkwright.service.dependencies import resolve_dependency
from arkwright.service.errors import AdmissionError, IdempotencyConflict, StoreUnavailable
from arkwright.service.records import core_job, from_epoch
from arkwright.service.schema import JobSubmit
from arkwright.service.states import RunState
from arkwright.service.store import DuplicateKey, Store

log = logging.getLogger("arkwright.intake")
CONFIRM_S = 60.0  # how long a request waits for the database to confirm its row


@dataclass
class _Waiting:
    row: dict  # the JobRow's columns; `id` and `seq` once stored
    tenant: str
    actor: str
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    stored: JobRow | None = None
    fresh: bool = True  # False when another replica had stored the same key first
    tasks: list[dict] = field(default_factory=list)  # an array's other tasks' rows


class Intake:
    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        admission_error: Callable[[Job], str | None],
        on_stored: Callable[[int], None],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.admission_error = admission_error  # the core's rules (never the live core's lock)
        self.on_stored = on_stored  # told how many were stored (wakes the leader)
        self.clock = clock
        self.lock = threading.Lock()  # guards the queue and the keys below, never I/O
        self._queue: list[_Waiting] = []
        self._keys: dict[tuple[int, str], _Waiting] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tenants: set[str] = set()

    # --------------------------------------------------------------- requests

    def submit(
        self,
        spec: JobSubmit,
        tenant: str,
        user_id: int,
        actor: str,
        idempotency_key: str | None = None,
        warnings: list[str] | None = None,
    ) -> tuple[JobRow, bool]:
        stored = self.stored_spec(spec, tenant, actor)
        if warnings:
            stored["warnings"] = list(warnings)
        array_tasks: list[int] = []
        if spec.array:
            try:
                array_tasks, limit = parse_array_spec(spec.array)
            except ValueError as exc:
                raise AdmissionError(str(exc)) from None
            stored["array_task_id"], stored["array_limit"] = array_tasks[0], limit
        now = self.clock()
        if idempotency_key:
            earlier = self._earlier(user_id, idempotency_key, stored, tenant)
            if earlier is not None:
                return self._settled(earlier), False
        self._check(spec, stored, tenant, now)
        row = {
            "tenant": tenant,
            "user_id": user_id,
            "name": spec.name,
            "spec": stored,
            "state": RunState.PENDING,
            "reason": "",
            "attempts": 0,
            "work_done_s": 0.0,
            "idempotency_key": idempotency_key,
            "submitted_at": from_epoch(now),
        }
        waiting = _Waiting(row, tenant, actor)
        for task in array_tasks[1:]:  # stored with the first, in one transaction
            spec_of_task = {**stored, "array_task_id": task}
            waiting.tasks.append({**row, "spec": spec_of_task, "idempotency_key": None})
        with self.lock:
            if idempotency_key:
                raced = self._keys.get((user_id, idempotency_key))
                if raced is not None:  # the same key arrived meanwhile: share its answer
                    waiting = raced
                    if raced.row["spec"] != stored or raced.tenant != tenant:
                        raise IdempotencyConflict(_conflict(idempotency_key, None))
                    created = False
                else:
                    self._keys[(user_id, idempotency_key)] = waiting
                    created = True
            else:
                created = True
            if created:
                self._queue.append(waiting)
                self._wake.set()
        if created and not self.serving:  # no writer: commit this one here and now
            self._commit_waiting()
        row = self._settled(waiting)
        return row, created and waiting.fresh

    def stored_spec(self, spec: JobSubmit, tenant: str, actor: str) -> dict:
        """The spec as stored (and read back by `records.core_job`): the submission, its
        owner, and its dependency with every id resolved (AdmissionError naming it)."""
        stored = spec.model_dump(mode="json")
        # The user whose mapped account runs the job on each site, and the sites where
        # that user has one: the core never places a job where it could not start.
        stored["owner"] = actor
        stored["owner_sites"] = sorted(sites_that_can_run(self.fleet, actor, tenant))
        if spec.dependency:
            stored["dependency"] = resolve_dependency(
                self.store, tenant, spec.dependency, spec.kill_on_invalid_dep
            )
        return stored

    def _earlier(
        self, user_id: int, key: str, stored: dict, tenant: str
    ) -> _Waiting | JobRow | None:
        with self.lock:
            waiting = self._keys.get((user_id, key))
        if waiting is not None:
            if waiting.row["spec"] != stored or waiting.tenant != tenant:
                raise IdempotencyConflict(_conflict(key, None))
            return waiting
        row = self.store.by_idempotency_key(user_id, key)
        if row is not None and (not _same_spec(row.spec, stored) or row.tenant != tenant):
            raise IdempotencyConflict(_conflict(key, row.id))
        return row

    def _settled(self, waiting: _Waiting | JobRow) -> JobRow:
        """The stored row, once the database confirmed it. A submission that failed to
        store raises its error to every request that waits on it (the original and any
        idempotent retry alike): none gets back a job that was never stored."""
        if isinstance(waiting, JobRow):
            return waiting
        if not waiting.done.wait(CONFIRM_S):
            raise StoreUnavailable(f"the database did not confirm the job in {CONFIRM_S:g} s")
        if waiting.error is not None:
            raise waiting.error
        return waiting.stored

    def _check(self, spec: JobSubmit, stored: dict, tenant: str, now: float) -> None:
        if tenant not in self.tenants:
            self.load_tenants()
            if tenant not in self.tenants:
                raise AdmissionError(f"tenant: unknown programme {tenant!r}")
        unknown = sorted(set(spec.sites or []) - set(self.fleet.site_by_name))
        if unknown:
            raise AdmissionError(f"sites: unknown site {unknown[0]!r}")
        able = set(stored["owner_sites"])
        if not able or (spec.sites and not able & set(spec.sites)):
            raise AdmissionError(
                f"sites: user {stored['owner']!r} has no account on any site that could run it"
            )
        # The number comes with the insert; the rules do not depend on it.
        reason = self.admission_error(core_job("j-new", tenant, stored, now))
        if reason is not None:
            raise AdmissionError(reason)

    def load_tenants(self) -> None:
        self.tenants = set(self.store.tenant_weights())

    # ----------------------------------------------------------------- writer

    @property
    def serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._writer, name="arkwright-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _writer(self) -> None:
        """Commit waiting submissions together. Survives anything: a batch that fails in an
        unexpected way fails its own callers, is logged, and the writer goes on."""
        while not self._stop.is_set() or self._queue:
            self._wake.wait(0.5)
            self._wake.clear()
            self._commit_waiting()

    def _commit_waiting(self) -> None:
        with self.lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            self._commit(batch)
        except Exception as exc:  # a bug, not a database answer: never kill the writer
            log.exception("submission batch failed")
            for waiting in batch:
                if not waiting.done.is_set():
                    waiting.error = StoreUnavailable(f"submission not stored: {exc}")
        finally:
            with self.lock:
                for waiting in batch:
                    key = waiting.row["idempotency_key"]
                    if key:
                        self._keys.pop((waiting.row["user_id"], key), None)
            for waiting in batch:
                waiting.done.set()

    def _commit(self, batch: list[_Waiting]) -> None:
        try:
            self._insert(batch)
            return
        except (DuplicateKey, StoreUnavailable) as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
        for waiting in batch:  # find the one that fails; store the rest one by one
            try:
                self._insert([waiting])
            except (DuplicateKey, StoreUnavailable) as exc:
                self._fail(waiting, exc)

    def _insert(self, batch: list[_Waiting]) -> None:
        rows: list[dict] = []
        actors: list[str] = []
        firsts: list[dict] = []
        for waiting in batch:
            first = dict(waiting.row)
            if "array_task_id" in first["spec"]:
                first["array_first"] = first  # the store names the array after it
            firsts.append(first)
            rows.append(first)
            rows += [dict(task, array_first=first) for task in waiting.tasks]
            actors += [waiting.actor] * (1 + len(waiting.tasks))
        self.store.insert_submissions(rows, actors)
        for waiting, first in zip(batch, firsts, strict=True):
            waiting.stored = JobRow(**{k: v for k, v in first.items() if k != "array_first"})
        self.on_stored(len(rows))

    def _fail(self, waiting: _Waiting, exc: Exception) -> None:
        row = waiting.row
        if isinstance(exc, DuplicateKey) and row["idempotency_key"]:
            # Another replica stored the same key first: answer with its job.
            try:
                earlier = self.store.by_idempotency_key(row["user_id"], row["idempotency_key"])
            except StoreUnavailable as lookup:
                waiting.error = lookup
                return
            if earlier is not None:
                if _same_spec(earlier.spec, row["spec"]) and earlier.tenant == waiting.tenant:
                    waiting.stored, waiting.fresh = earlier, False
                else:
                    waiting.error = IdempotencyConflict(
                        _conflict(row["idempotency_key"], earlier.id)
                    )
                return
        log.warning("submission not stored: %s", exc)
        waiting.error = (
            exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(f"not stored: {exc}")
        )


def _same_spec(stored: dict, asked: dict) -> bool:
    """Whether a stored job is the one this submission asks for (an array's first task
    carries the array's id, given only when it was stored)."""
    return {k: v for k, v in stored.items() if k != "array_job_id"} == asked


def _conflict(key: str, job_id: str | None) -> str:
    first = f" (job {job_id})" if job_id else ""
    return f"Idempotency-Key {key!r} was used for a different submission{first}"

"""The store: every SQL statement the control plane runs, and nothing else.

Writes are bulk statements in one transaction each (`Writes`). The hot ones (new jobs,
job updates, events, usage) are Core statements on the tables, executed many rows at a
time: the ORM's bulk persistence (identity bookkeeping, per-row attribute expansion,
session synchronisation) cost more CPU than the database itself on every submission.
A database error never escapes as SQLAlchemy's: it becomes StoreUnavailable (a 503), or
NotLeader when this replica's fencing token is stale. Leader writes are fenced: each
transaction first checks that the leadership row still carries the epoch this replica
took, inside the same transaction, so a deposed leader cannot write after a new one has
taken over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from arkwright.core.fleet import Fleet
from arkwright.service.db import (
    AuditRow,
    ControlRequestRow,
    CounterRow,
    JobEventRow,
    JobRow,
    LeadershipRow,
    PoolStateRow,
    RunStopRow,
    SiteStateRow,
    TenantRow,
    UsageRow,
    utcnow,
)
from arkwright.service.errors import NotLeader, StoreUnavailable
from arkwright.service.states import ACTIVE

JOB_SEQ = "job_seq"
SUBMISSION_COLUMNS = (
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


_JOBS = JobRow.__table__
_EVENTS = JobEventRow.__table__
_USAGE = UsageRow.__table__
_AUDITS = AuditRow.__table__
_COUNTERS = CounterRow.__table__
_LEADERSHIP = LeadershipRow.__table__
_JOB_ID_PARAM = "job_id_"  # the WHERE parameter of a job update (no column has this name)


def _job_update(columns: tuple[str, ...]):
    """UPDATE jobs SET <columns but id> WHERE id = :job_id_, for executemany."""
    return (
        update(_JOBS)
        .where(_JOBS.c.id == bindparam(_JOB_ID_PARAM))
        .values({c: bindparam(c) for c in columns if c != "id"})
    )


def _by_id(row: dict) -> dict:
    values = dict(row)
    values[_JOB_ID_PARAM] = values.pop("id")
    return values


def job_id_for(seq: int) -> str:
    return f"j-{seq:07d}"


class DuplicateKey(Exception):
    """An insert met an Idempotency-Key another request (perhaps another replica) stored."""


@dataclass
class Writes:
    """What one unit of work changes, applied in one transaction."""

    updates: list[dict] = field(default_factory=list)  # JobRow columns by primary key
    events: list[dict] = field(default_factory=list)  # new JobEventRow
    usage: list[dict] = field(default_factory=list)  # new UsageRow
    stops: list[dict] = field(default_factory=list)  # new RunStopRow (backend cancels owed)
    audits: list[dict] = field(default_factory=list)  # new AuditRow
    states: list[tuple[type, str, dict]] = field(default_factory=list)  # admin state upserts
    requests_done: list[tuple[int, str]] = field(default_factory=list)  # (id, result)

    def __bool__(self) -> bool:
        return any(
            (
                self.updates,
                self.events,
                self.usage,
                self.stops,
                self.audits,
                self.states,
                self.requests_done,
            )
        )


class Store:
    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self.epoch: int | None = None  # fencing token while leading; None: unfenced

    # ----------------------------------------------------------- transactions

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        try:
            with self.sessions() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database read failed: {_short(exc)}") from exc

    @contextmanager
    def _writing(self, fenced: bool) -> Iterator[Session]:
        try:
            with self.sessions() as session, session.begin():
                if fenced and self.epoch is not None:
                    held = session.execute(
                        update(_LEADERSHIP)
                        .where(_LEADERSHIP.c.id == 1, _LEADERSHIP.c.epoch == self.epoch)
                        .values(epoch=_LEADERSHIP.c.epoch)
                    ).rowcount
                    if held != 1:
                        raise NotLeader(f"leadership epoch {self.epoch} is no longer current")
                yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database write failed: {_short(exc)}") from exc

    def write(self, writes: Writes) -> list[int]:
        """Apply a unit of work (fenced); returns the ids of the stops it recorded."""
        if not writes:
            return []
        by_columns: dict[tuple[str, ...], list[dict]] = {}
        for row in writes.updates:  # executemany needs the same columns in every row
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        stop_ids: list[int] = []
        try:
            with self._writing(fenced=True) as session:
                for columns, rows in by_columns.items():
                    session.execute(_job_update(columns), [_by_id(row) for row in rows])
                if writes.events:
                    session.execute(insert(_EVENTS), writes.events)
                if writes.usage:
                    session.execute(insert(_USAGE), writes.usage)
                if writes.audits:
                    session.execute(insert(_AUDITS), writes.audits)
                for row_type, key, values in writes.states:
                    _upsert(session, row_type, key, values)
                for request_id, result in writes.requests_done:
                    session.execute(
                        update(ControlRequestRow)
                        .where(ControlRequestRow.id == request_id)
                        .values(done_at=utcnow(), result=result)
                    )
                if writes.stops:
                    stop_ids = list(
                        session.scalars(
                            insert(RunStopRow).returning(
                                RunStopRow.id, sort_by_parameter_order=True
                            ),
                            writes.stops,
                        )
                    )
        except IntegrityError as exc:
            raise StoreUnavailable(f"database refused the write: {_short(exc)}") from exc
        return stop_ids

    # ----------------------------------------------------------------- intake

    def insert_submissions(self, rows: list[dict], actors: list[str]) -> None:
        """Store new jobs in one transaction. Their numbers come from the shared counter,
        taken in this transaction: the counter row stays locked until commit, so numbers
        commit in the order they are taken (the leader reads new jobs by number).
        Fills in each row's `id` and `seq`. Raises DuplicateKey or StoreUnavailable."""
        try:
            with self._writing(fenced=False) as session:
                last = session.scalar(
                    update(_COUNTERS)
                    .where(_COUNTERS.c.name == JOB_SEQ)
                    .values(value=_COUNTERS.c.value + len(rows))
                    .returning(_COUNTERS.c.value)
                )
                if last is None:
                    raise StoreUnavailable("the job counter is missing (migration 0003)")
                for n, row in enumerate(rows):
                    row["seq"] = last - len(rows) + 1 + n
                    row["id"] = job_id_for(row["seq"])
                for row in rows:  # an array is known by its first task's id, as in Slurm
                    first = row.get("array_first")
                    if first is not None:
                        row["spec"] = {**row["spec"], "array_job_id": first["id"]}
                session.execute(
                    insert(_JOBS),
                    [
                        {"id": r["id"], "seq": r["seq"], **{c: r[c] for c in SUBMISSION_COLUMNS}}
                        for r in rows
                    ],
                )
                session.execute(
                    insert(_EVENTS),
                    [
                        {
                            "job_id": r["id"],
                            "kind": "submitted",
                            "detail": a,
                            "at": r["submitted_at"],
                        }
                        for r, a in zip(rows, actors, strict=True)
                    ],
                )
                session.execute(
                    insert(_AUDITS),
                    [
                        {
                            "actor": a,
                            "action": "submit",
                            "target": r["id"],
                            "at": r["submitted_at"],
                            "detail": "",
                        }
                        for r, a in zip(rows, actors, strict=True)
                    ],
                )
        except IntegrityError as exc:
            raise DuplicateKey(_short(exc)) from exc

    def by_idempotency_key(self, user_id: int, key: str) -> JobRow | None:
        with self._reading() as session:
            return session.scalar(
                select(JobRow).where(JobRow.user_id == user_id, JobRow.idempotency_key == key)
            )

    def jobs_for_dependency(
        self, tenant: str, ids: list[str], task_refs: list[tuple[str, int]]
    ) -> list[tuple[str, str | None, int | None]]:
        """(id, array id, array task id) of the programme's jobs a dependency names: by
        id, every task of an array by the array's id, and array tasks as (array, task)."""
        if not ids and not task_refs:
            return []
        array_of = JobRow.spec["array_job_id"].as_string()
        task_of = JobRow.spec["array_task_id"].as_integer()
        named = [JobRow.id.in_(ids), array_of.in_(ids)] if ids else []
        named += [and_(array_of == a, task_of == t) for a, t in task_refs]
        with self._reading() as session:
            rows = session.execute(
                select(JobRow.id, array_of, task_of).where(JobRow.tenant == tenant, or_(*named))
            ).all()
        return [tuple(r) for r in rows]

    def states_of(self, ids: list[str]) -> dict[str, tuple[str, int | None]]:
        """(state, exit code) of each of these jobs that exists."""
        if not ids:
            return {}
        with self._reading() as session:
            rows = session.execute(
                select(JobRow.id, JobRow.state, JobRow.exit_code).where(JobRow.id.in_(ids))
            ).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    def new_submissions(self, after_seq: int, limit: int = 5000) -> list:
        """Jobs numbered above `after_seq`, in number order (the leader's intake): plain
        rows of the columns the core needs (no ORM objects on this hot path)."""
        columns = (
            JobRow.id,
            JobRow.seq,
            JobRow.tenant,
            JobRow.spec,
            JobRow.state,
            JobRow.work_done_s,
            JobRow.attempts,
            JobRow.submitted_at,
        )
        with self._reading() as session:
            return list(
                session.execute(
                    select(*columns).where(JobRow.seq > after_seq).order_by(JobRow.seq).limit(limit)
                )
            )

    def highest_seq(self) -> int:
        with self._reading() as session:
            return session.scalar(select(func.max(JobRow.seq))) or 0

    # ------------------------------------------------------------------ reads

    def active_rows(self, up_to_seq: int | None = None) -> list[JobRow]:
        with self._reading() as session:
            query = select(JobRow).where(JobRow.state.in_(ACTIVE)).order_by(JobRow.seq)
            if up_to_seq is not None:
                query = query.where(JobRow.seq <= up_to_seq)
            return list(session.scalars(query))

    def job(self, job_id: str) -> JobRow | None:
        with self._reading() as session:
            return session.get(JobRow, job_id)

    def requeue_reasons(self, job_id: str) -> list[str]:
        """Why each earlier run of this job went back to the queue, oldest first."""
        with self._reading() as session:
            return list(
                session.scalars(
                    select(JobEventRow.detail)
                    .where(JobEventRow.job_id == job_id, JobEventRow.kind == "requeued")
                    .order_by(JobEventRow.id)
                )
            )

    def admin_cordons(self) -> set[str]:
        with self._reading() as session:
            return {r.pool for r in session.scalars(select(PoolStateRow)) if r.cordoned}

    def sites_down(self) -> set[str]:
        with self._reading() as session:
            return {r.site for r in session.scalars(select(SiteStateRow)) if r.down}

    def tenant_weights(self) -> dict[str, float]:
        with self._reading() as session:
            return {t.name: t.weight for t in session.scalars(select(TenantRow))}

    def ensure_tenants(self, fleet: Fleet) -> None:
        """Programmes named in the fleet file exist as tenants."""
        with self._writing(fenced=False) as session:
            for tenant in fleet.tenants:
                if session.get(TenantRow, tenant.name) is None:
                    session.add(
                        TenantRow(
                            name=tenant.name,
                            weight=tenant.weight,
                            description=tenant.description,
                            gpu_hours_allocation=tenant.gpu_hours_allocation,
                        )
                    )

    def audit(self, actor: str, action: str, detail: str = "", target: str = "") -> None:
        with self._writing(fenced=False) as session:
            session.add(AuditRow(actor=actor, action=action, target=target, detail=detail))

    # ------------------------------------------------------------------ stops

    def pending_stops(self) -> list[RunStopRow]:
        with self._reading() as session:
            return list(session.scalars(select(RunStopRow).order_by(RunStopRow.id)))

    def stop_done(self, stop_id: int) -> None:
        with self._writing(fenced=False) as session:
            session.execute(delete(RunStopRow).where(RunStopRow.id == stop_id))

    # ------------------------------------------------------------- leadership

    def take_leadership(self, holder: str) -> int:
        """Become the leader: a new epoch, which every later leader write checks."""
        with self._writing(fenced=False) as session:
            epoch = session.scalar(
                update(LeadershipRow)
                .where(LeadershipRow.id == 1)
                .values(epoch=LeadershipRow.epoch + 1, holder=holder, since=utcnow())
                .returning(LeadershipRow.epoch)
            )
        self.epoch = epoch
        return epoch

    def leader(self) -> tuple[int, str]:
        with self._reading() as session:
            row = session.get(LeadershipRow, 1)
            return (row.epoch, row.holder) if row is not None else (0, "")

    # --------------------------------------------------------------- requests

    def ask_leader(self, kind: str, target: str, actor: str, args: dict) -> int:
        with self._writing(fenced=False) as session:
            row = ControlRequestRow(kind=kind, target=target, actor=actor, args=args, result="")
            session.add(row)
            session.flush()
            return row.id

    def answer(self, request_id: int) -> str | None:
        """The leader's answer to a request, or None while it is not done."""
        with self._reading() as session:
            row = session.get(ControlRequestRow, request_id)
            return row.result if row is not None and row.done_at is not None else None

    def open_requests(self) -> list[ControlRequestRow]:
        with self._reading() as session:
            return list(
                session.scalars(
                    select(ControlRequestRow)
                    .where(ControlRequestRow.done_at.is_(None))
                    .order_by(ControlRequestRow.id)
                )
            )


def _upsert(session: Session, row_type: type, key: str, values: dict) -> None:
    row = session.get(row_type, key) or row_type(**{row_type.__mapper__.primary_key[0].key: key})
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300]

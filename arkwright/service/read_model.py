"""The one read model: what the JSON API and the dashboard both show, and who may see it.

Every read of jobs, their history and output, the fleet's state and usage goes through
here, so the API's answer and the page's table cannot drift apart. Jobs are read as plain
column rows (no ORM objects hydrated per row) and turned into dicts of JSON-ready values
once; the API serialises those dicts as they are, and the templates read the same keys.

Nothing here speaks HTTP: an absent or foreign job is `None`, and the caller answers 404.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from arkwright.service.auth import Principal
from arkwright.service.control import ControlPlane
from arkwright.service.db import (
    JobEventRow,
    JobRow,
    PoolStateRow,
    SiteStateRow,
    UsageRow,
    UserRow,
)
from arkwright.service.overview import Overview, overview
from arkwright.timefmt import parse_duration

__all__ = ["Overview", "overview"]

# The columns a job's view needs, and its owner's name, in one statement (outer join: a
# job outlives nothing, but the read must not lose a row if a user row ever went).
_JOB_COLUMNS = (
    JobRow.id,
    JobRow.seq,
    JobRow.name,
    JobRow.tenant,
    JobRow.state,
    JobRow.reason,
    JobRow.spec,
    JobRow.pool,
    JobRow.handle,
    JobRow.attempts,
    JobRow.exit_code,
    JobRow.submitted_at,
    JobRow.started_at,
    JobRow.finished_at,
    JobRow.allocation,
    UserRow.name.label("user"),
)

LOG_CHUNK_BYTES = 1 << 20  # the most one log read returns
MAX_LOG_OFFSET = 1 << 50  # far past any real log, still a valid file offset
MAX_CURSOR_SEQ = (1 << 62) - 1  # a job sequence number fits a signed 64-bit column


def _job_view(row: Any, user: str | None) -> dict:
    """One job as the API's `JobOut` and the job pages read it, from a column row or a
    `JobRow` (what a submission just stored)."""
    spec = row.spec
    return {
        "id": row.id,
        "name": row.name,
        "tenant": row.tenant,
        "user": user or "",
        "state": row.state,
        "reason": row.reason,
        "gpus": spec["gpus"],
        "gpu_type": spec.get("gpu_type"),
        "time_limit_s": parse_duration(spec["time"]),
        "priority": spec["priority"],
        "residency": spec.get("residency"),
        "classification": spec["classification"],
        "personal_data": spec["personal_data"],
        "pool": row.pool,
        "site": row.pool.split("/", 1)[0] if row.pool else None,
        "attempts": row.attempts,
        "exit_code": row.exit_code,
        "slurm_job_id": (row.handle or {}).get("slurm_job_id"),
        "submitted_at": row.submitted_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "command": spec.get("command") or [],
        "nodes": spec.get("nodes"),
        "dependency": spec.get("dependency"),
        "array_job_id": spec.get("array_job_id"),
        "array_task_id": spec.get("array_task_id"),
        "expected_start": None,  # the core's estimate, added by the API for pending jobs
        "warnings": spec.get("warnings") or [],
        # The pool's node numbers the run holds (sorted, distinct); None before a start.
        "allocated_nodes": _nodes_of(getattr(row, "allocation", None)),
        "partition": spec.get("partition"),  # as asked (a Slurm-world name), if any
        "output": spec.get("output"),
        "error": spec.get("error"),
    }


def _nodes_of(allocation: list | None) -> list[int] | None:
    """Node numbers from a stored allocation ([[node, gpus], ...])."""
    if not allocation:
        return None
    return sorted({int(node) for node, _gpus in allocation})


def job_view_of(row: JobRow, user: str) -> dict:
    """The view of a job row already in hand (a submission's answer needs no re-read)."""
    return _job_view(row, user)


def _jobs_select(me: Principal) -> Select:
    query = select(*_JOB_COLUMNS).outerjoin(UserRow, UserRow.id == JobRow.user_id)
    if not me.is_admin:  # another programme's jobs do not exist for this caller
        query = query.where(JobRow.tenant == me.tenant)
    return query


# A job id the list filters take: an id, or an array task as Slurm writes it (ID_TASK).
JOB_ID_TOKEN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9.-]{0,63})(?:_(\d{1,9}))?$")


@dataclass(frozen=True)
class JobFilter:
    """What a job list may be narrowed by (every field ANDed; each tuple ORed within).
    Applied in the query, so a page holds only matching jobs whatever the table holds.

    ids: job ids, where an array's id also matches every task of the array, and
    "ID_TASK" one task of it (Slurm's job-id forms). ended_after: jobs that ended at or
    after the moment, or have not ended (sacct's --starttime: in any state since then).
    """

    states: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    user_id: int | None = None  # the caller's own jobs only (squeue --me)
    submitted_after: datetime | None = None
    submitted_before: datetime | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None


NO_FILTER = JobFilter()


def as_utc(moment: datetime) -> datetime:
    """An aware UTC moment (a naive one is taken as UTC, as the database stores them);
    OverflowError for one whose offset moves it off the calendar."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _id_matches(tokens: Iterable[str]) -> ColumnElement[bool]:
    array_of = JobRow.spec["array_job_id"].as_string()
    clauses: list[ColumnElement[bool]] = []
    for token in tokens:
        match = JOB_ID_TOKEN.match(token)
        if match is None:  # the API validates first; a stray token matches nothing
            clauses.append(false())
            continue
        job_id, task = match.groups()
        if task is None:
            clauses.append(or_(JobRow.id == job_id, array_of == job_id))
        else:
            task_of = JobRow.spec["array_task_id"].as_integer()
            clauses.append(and_(array_of == job_id, task_of == int(task)))
    return or_(*clauses)


def _filtered(query: Select, where: JobFilter) -> Select:
    if where.states:
        query = query.where(JobRow.state.in_(where.states))
    if where.names:
        query = query.where(JobRow.name.in_(where.names))
    if where.users:
        query = query.where(UserRow.name.in_(where.users))
    if where.user_id is not None:
        query = query.where(JobRow.user_id == where.user_id)
    if where.tenants:
        query = query.where(JobRow.tenant.in_(where.tenants))
    if where.pools:
        # The pool it holds, or the partition it asked for (as Slurm lists a job under
        # its partition whether it waits or runs).
        asked = JobRow.spec["partition"].as_string()
        query = query.where(or_(JobRow.pool.in_(where.pools), asked.in_(where.pools)))
    if where.ids:
        query = query.where(_id_matches(where.ids))
    if where.submitted_after is not None:
        query = query.where(JobRow.submitted_at >= as_utc(where.submitted_after))
    if where.submitted_before is not None:
        query = query.where(JobRow.submitted_at <= as_utc(where.submitted_before))
    if where.ended_after is not None:
        ended_after = as_utc(where.ended_after)
        query = query.where(or_(JobRow.finished_at.is_(None), JobRow.finished_at >= ended_after))
    if where.ended_before is not None:
        query = query.where(JobRow.finished_at <= as_utc(where.ended_before))
    return query


def list_jobs(
    session: Session,
    me: Principal,
    *,
    tenant: str | None = None,
    states: Iterable[str] = (),
    limit: int = 100,
    before_seq: int | None = None,
    search: str | None = None,
    where: JobFilter = NO_FILTER,
) -> tuple[list[dict], int | None]:
    """Jobs the caller may see, newest first, and the sequence number to continue before
    (None when this page is the last). Every filter narrows what the caller may see:
    none reaches past it (`_jobs_select`)."""
    query = _jobs_select(me).order_by(JobRow.seq.desc()).limit(limit + 1)
    if tenant:
        query = query.where(JobRow.tenant == tenant)
    states = list(states)
    if states:
        query = query.where(JobRow.state.in_(states))
    if before_seq is not None:
        query = query.where(JobRow.seq < before_seq)
    if search:
        query = query.where(JobRow.name.contains(search) | JobRow.id.contains(search))
    query = _filtered(query, where)
    # Core, not the ORM: plain column rows need none of its identity-map bookkeeping.
    rows = session.connection().execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_job_view(r, r.user) for r in rows], (rows[-1].seq if more else None)


def find_job(session: Session, me: Principal, job_id: str) -> dict | None:
    """The job's view, or None when it is absent or belongs to another programme."""
    row = session.connection().execute(_jobs_select(me).where(JobRow.id == job_id)).first()
    return None if row is None else _job_view(row, row.user)


def job_events(session: Session, job_id: str) -> list[dict]:
    rows = session.execute(
        select(JobEventRow.at, JobEventRow.kind, JobEventRow.detail)
        .where(JobEventRow.job_id == job_id)
        .order_by(JobEventRow.id)
    )
    return [{"at": at, "kind": kind, "detail": detail} for at, kind, detail in rows]


def job_usage(session: Session, job_id: str) -> dict:
    hours, cost, kwh = session.execute(
        select(
            func.sum(UsageRow.gpu_hours), func.sum(UsageRow.cost_gbp), func.sum(UsageRow.energy_kwh)
        ).where(UsageRow.job_id == job_id)
    ).one()
    return {"gpu_hours": hours or 0.0, "cost_gbp": cost or 0.0, "energy_kwh": kwh or 0.0}


def job_allocation(session: Session, job_id: str) -> list | None:
    return session.scalar(select(JobRow.allocation).where(JobRow.id == job_id))


def _log_file(control: ControlPlane, session: Session, job: dict, stream: str) -> BinaryIO | None:
    """This run's stream opened for reading, if the backend keeps one. A backend that can
    opens it itself (`open_log`: a log in the job's own run directory is read without
    following links the job may have planted there); otherwise its `log_path` is opened,
    never through a final link. (The backend's handle stays out of the job's view: it is
    the backend's record, not the tenant's.)"""
    if not job["pool"]:
        return None
    run = session.scalar(select(JobRow.handle).where(JobRow.id == job["id"]))
    if not run:
        return None
    backend = control.backends[job["site"]]
    opener = getattr(backend, "open_log", None)
    if opener is not None:
        return opener(job["id"], run, stream)
    path = backend.log_path(job["id"], run, stream)
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # not written yet, or already cleaned away
        return None
    return os.fdopen(fd, "rb")


def read_log(
    control: ControlPlane,
    session: Session,
    job: dict,
    stream: str,
    offset: int,
    max_bytes: int = LOG_CHUNK_BYTES,
) -> tuple[str, int]:
    """Up to `max_bytes` of a stream from `offset`, and the offset to read from next."""
    opened = _log_file(control, session, job, stream)
    if opened is None:
        return "", offset
    try:
        with opened as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
    except OSError:
        return "", offset
    return data.decode(errors="replace"), offset + len(data)


def tail_log(
    control: ControlPlane, session: Session, job: dict, stream: str, max_bytes: int
) -> str:
    """The last `max_bytes` of a stream (the job page shows the end of a long log)."""
    opened = _log_file(control, session, job, stream)
    if opened is None:
        return ""
    try:
        with opened as handle:
            size = handle.seek(0, 2)
            handle.seek(max(size - max_bytes, 0))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _busy_by_pool(control: ControlPlane) -> dict[int, int]:
    with control.lock:
        return {p.index: control.scheduler.busy_gpus(p.index) for p in control.fleet.pools}


def sites(control: ControlPlane, session: Session) -> list[dict]:
    """Every site (visible to everyone): where it is, what it holds, whether it is down."""
    down = {r.site: r.reason for r in session.scalars(select(SiteStateRow)) if r.down}
    busy = _busy_by_pool(control)
    return [
        {
            "name": s.name,
            "region": s.region,
            "jurisdiction": s.jurisdiction,
            "operator": s.operator,
            "accreditations": sorted(s.accreditations),
            "carbon_g_per_kwh": s.carbon_g_per_kwh,
            "backend": type(control.backends[s.name]).__name__,
            "down": s.name in down,
            "reason": down.get(s.name, ""),
            "gpus": sum(p.gpus for p in control.fleet.pools_at(s.name)),
            "gpus_busy": sum(busy[p.index] for p in control.fleet.pools_at(s.name)),
        }
        for s in control.fleet.sites
    ]


def pools(control: ControlPlane, session: Session) -> list[dict]:
    cordoned = {r.pool: r.reason for r in session.scalars(select(PoolStateRow)) if r.cordoned}
    busy = _busy_by_pool(control)
    return [
        {
            "name": p.name,
            "site": p.site.name,
            "gpu_model": p.gpu_model,
            "nodes": p.nodes,
            "gpus_per_node": p.gpus_per_node,
            "gpus": p.gpus,
            "gpus_busy": busy[p.index],
            "price_gbp_per_gpu_hour": p.price_gbp_per_gpu_hour,
            "cordoned": p.name in cordoned,
            "reason": cordoned.get(p.name, ""),
        }
        for p in control.fleet.pools
    ]


def usage(session: Session, me: Principal) -> tuple[dict, dict]:
    """GPU-hours, cost and energy by programme and by site (the caller's programme only,
    unless an admin)."""
    query = select(
        UsageRow.tenant,
        UsageRow.site,
        func.sum(UsageRow.gpu_hours),
        func.sum(UsageRow.cost_gbp),
        func.sum(UsageRow.energy_kwh),
    ).group_by(UsageRow.tenant, UsageRow.site)
    if not me.is_admin:
        query = query.where(UsageRow.tenant == me.tenant)
    by_tenant: dict[str, dict] = {}
    by_site: dict[str, dict] = {}
    for tenant, site, hours, cost, kwh in session.execute(query):
        for bucket, key in ((by_tenant, tenant), (by_site, site)):
            entry = bucket.setdefault(key, {"gpu_hours": 0.0, "cost_gbp": 0.0, "energy_kwh": 0.0})
            entry["gpu_hours"] += hours or 0.0
            entry["cost_gbp"] += cost or 0.0
            entry["energy_kwh"] += kwh or 0.0
    return by_tenant, by_site

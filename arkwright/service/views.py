"""Shared by the API and the dashboard: who is asking, and what they may see of a job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from arkwright.service.auth import Principal, TokenCache, principal_for
from arkwright.service.db import JobRow, UserRow
from arkwright.service.schema import JobOut
from arkwright.timefmt import parse_duration

SESSION_COOKIE = "arkwright_token"


def job_out(row: JobRow, user: str) -> JobOut:
    spec = row.spec
    site = row.pool.split("/", 1)[0] if row.pool else None
    return JobOut(
        id=row.id,
        name=row.name,
        tenant=row.tenant,
        user=user,
        state=row.state,
        reason=row.reason,
        gpus=spec["gpus"],
        gpu_type=spec.get("gpu_type"),
        time_limit_s=parse_duration(spec["time"]),
        priority=spec["priority"],
        residency=spec.get("residency"),
        classification=spec["classification"],
        personal_data=spec["personal_data"],
        pool=row.pool,
        site=site,
        attempts=row.attempts,
        exit_code=row.exit_code,
        slurm_job_id=(row.handle or {}).get("slurm_job_id"),
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        command=spec.get("command") or [],
    )


def db(request: Request) -> Iterator[Session]:
    with request.app.state.control.sessions() as session:
        yield session


def lookup_token(request: Request, token: str) -> Principal | None:
    cache: TokenCache = request.app.state.tokens
    found = cache.get(token)
    if found is None:
        with request.app.state.control.sessions() as session:
            found = principal_for(session, token)
        if found is not None:
            cache.put(token, found)
    return found


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller, from a bearer token or the dashboard's session cookie.

    A cookie is sent by the browser on its own, so a request that changes something on the
    strength of a cookie must also carry the header the dashboard's script adds (a page on
    another site cannot set it without the browser asking us first)."""
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    elif (token := request.cookies.get(SESSION_COOKIE, "")) and (
        request.method in ("GET", "HEAD") or request.headers.get("x-arkwright-ui") == "1"
    ):
        pass
    else:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    found = lookup_token(request, token)
    if found is None:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return found


Me = Annotated[Principal, Depends(principal)]
Db = Annotated[Session, Depends(db)]


def jobs_query(me: Principal, tenant: str | None, state: str | None) -> Select:
    """Jobs the caller may see, newest first, filtered by programme and states (a,b,...)."""
    query = select(JobRow).order_by(JobRow.seq.desc())
    if not me.is_admin:
        query = query.where(JobRow.tenant == me.tenant)
    if tenant:
        query = query.where(JobRow.tenant == tenant)
    if state:
        query = query.where(JobRow.state.in_(state.split(",")))
    return query


def visible_job(session: Session, me: Principal, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None or not me.may_see_tenant(row.tenant):
        raise HTTPException(404, f"no job {job_id!r}")  # another tenant's job is absent
    return row


def user_names(session: Session, rows: list[JobRow]) -> dict[int, str]:
    ids = {r.user_id for r in rows}
    if not ids:
        return {}
    return dict(session.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(ids))).all())

"""`/v1/users`, `/v1/tokens`, `/v1/audit`: accounts, their tokens, and the audit log.

A token outside the caller's reach answers exactly as an absent one does (404, the same
words): revoking or rotating by prefix must not tell a caller which prefixes exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from arkwright.service.api.deps import Db, Me, require
from arkwright.service.api.errors import ERRORS
from arkwright.service.auth import PREFIX_CHARS, Principal, expiry, issue_token, live_token
from arkwright.service.db import AuditRow, TenantRow, UserRow, utcnow
from arkwright.service.schema import TokenOut, UserIn
from arkwright.timefmt import format_duration, parse_duration

router = APIRouter(prefix="/v1", tags=["admin"], responses=ERRORS)

MAX_TOKEN_TTL_S = 5 * 366 * 86400.0
Prefix = Annotated[str, Path(min_length=1, max_length=PREFIX_CHARS)]
Ttl = Annotated[
    str | None,
    Query(max_length=32, description="Lifetime, e.g. 30d or 12h; none: until revoked."),
]


def _ttl_seconds(ttl: str | None) -> float | None:
    if ttl is None:
        return None
    try:
        seconds = parse_duration(ttl)
    except (ValueError, OverflowError) as exc:
        raise HTTPException(422, f"ttl: {exc}") from None
    if seconds > MAX_TOKEN_TTL_S:
        raise HTTPException(422, f"ttl: at most {format_duration(MAX_TOKEN_TTL_S)}")
    return seconds


def _token_out(token: str, user: str, expires: datetime | None) -> TokenOut:
    return TokenOut(token=token, prefix=token[:PREFIX_CHARS], user=user, expires_at=expires)


def _user_in_reach(session: Session, me: Principal, name: str) -> UserRow:
    user = session.scalar(select(UserRow).where(UserRow.name == name))
    if user is None or not me.may_manage(user):
        raise HTTPException(404, f"no user {name!r}")  # out of reach reads as absent
    return user


@router.post("/users", status_code=201, response_model=TokenOut)
def create_user(body: UserIn, me: Me, session: Db, ttl: Ttl = None) -> TokenOut:
    require(me, "admin", "tenant-admin")
    expires = expiry(_ttl_seconds(ttl))
    tenant = body.tenant if me.is_admin else me.tenant
    if body.role == "admin" and not me.is_admin:
        raise HTTPException(403, "only an admin may create an admin")
    if body.role != "admin" and (tenant is None or session.get(TenantRow, tenant) is None):
        raise HTTPException(422, f"tenant: unknown programme {tenant!r}")
    if not me.is_admin and body.tenant not in (None, me.tenant):
        raise HTTPException(403, "a tenant-admin creates users in their own programme")
    try:
        user = UserRow(
            name=body.name, tenant=None if body.role == "admin" else tenant, role=body.role
        )
        session.add(user)
        session.flush()
        token = issue_token(session, user, expires)
        out = _token_out(token, body.name, expires)
        session.add(
            AuditRow(
                actor=me.name,
                action="create-user",
                target=body.name,
                detail=f"{body.role} in {tenant}",
            )
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, f"user {body.name!r} exists") from None
    return out


@router.post("/tokens", status_code=201, response_model=TokenOut)
def create_token(
    me: Me,
    session: Db,
    user: Annotated[str | None, Query(max_length=128)] = None,
    ttl: Ttl = None,
) -> TokenOut:
    """A new token for yourself, or for a user you manage."""
    expires = expiry(_ttl_seconds(ttl))
    target = _user_in_reach(session, me, user or me.name)
    token = issue_token(session, target, expires)
    out = _token_out(token, target.name, expires)
    session.add(AuditRow(actor=me.name, action="create-token", target=target.name))
    session.commit()
    return out


def _no_live_token(prefix: str) -> HTTPException:
    return HTTPException(404, f"no live token {prefix!r}")


@router.post("/tokens/{prefix}/rotate", status_code=201, response_model=TokenOut)
def rotate_token(
    prefix: Prefix, me: Me, session: Db, request: Request, ttl: Ttl = None
) -> TokenOut:
    """Replace a token by a new one for the same user, in one commit: there is no moment
    when both work, and none when neither does."""
    expires = expiry(_ttl_seconds(ttl))
    old = live_token(session, me, prefix)
    if old is None:
        raise _no_live_token(prefix)
    owner = session.get(UserRow, old.user_id)
    old.revoked_at = utcnow()
    token = issue_token(session, owner, expires)
    out = _token_out(token, owner.name, expires)
    session.add(AuditRow(actor=me.name, action="rotate-token", target=prefix, detail=out.prefix))
    session.commit()
    request.app.state.tokens.forget(old.token_hash)
    return out


@router.delete("/tokens/{prefix}")
def revoke_token(prefix: Prefix, me: Me, session: Db, request: Request) -> dict:
    row = live_token(session, me, prefix)
    if row is None:
        raise _no_live_token(prefix)
    row.revoked_at = utcnow()
    session.add(AuditRow(actor=me.name, action="revoke-token", target=prefix))
    session.commit()
    request.app.state.tokens.forget(row.token_hash)
    return {"revoked": prefix}


@router.get("/audit")
def audit(me: Me, session: Db, limit: Annotated[int, Query(gt=0, le=1000)] = 100) -> list:
    require(me, "admin")
    rows = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
    return [
        {"at": r.at, "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}
        for r in rows
    ]

"""Bearer tokens: random, shown once, stored only as a SHA-256 hash, optionally expiring.

Tokens carry 256 bits of randomness, so a plain cryptographic hash is the right store:
slow password hashes exist to protect guessable secrets, which these are not.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from arkwright.service.db import TokenRow, UserRow, utcnow

TOKEN_PREFIX = "ark_"
PREFIX_CHARS = 12  # what a token is known by in lists, audit lines and revocation


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    tenant: str | None
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see_tenant(self, tenant: str) -> bool:
        return self.is_admin or self.tenant == tenant

    def may_manage(self, user: UserRow) -> bool:
        """Whose tokens this caller may make, rotate and revoke: an admin anyone's, a
        tenant-admin their programme's users', everyone their own."""
        return (
            self.is_admin
            or user.id == self.user_id
            or (self.role == "tenant-admin" and user.tenant == self.tenant)
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def expiry(ttl_s: float | None, now: datetime | None = None) -> datetime | None:
    """When a token made `now` with a lifetime of `ttl_s` seconds expires (None: never)."""
    return (now or utcnow()) + timedelta(seconds=ttl_s) if ttl_s is not None else None


def issue_token(session: Session, user: UserRow, expires: datetime | None = None) -> str:
    """A new token for `user`, added to the session (the caller commits); it stops working
    at `expires`, or lives until revoked."""
    token = new_token()
    session.add(
        TokenRow(
            user_id=user.id,
            token_hash=hash_token(token),
            prefix=token[:PREFIX_CHARS],
            expires_at=expires,
        )
    )
    return token


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def principal_for(session: Session, token: str) -> tuple[Principal, datetime | None] | None:
    """Who holds `token` and when it expires, if it is live (not revoked, not expired)."""
    now = utcnow()
    row = session.execute(
        select(UserRow.id, UserRow.name, UserRow.tenant, UserRow.role, TokenRow.expires_at)
        .join(TokenRow, TokenRow.user_id == UserRow.id)
        .where(
            TokenRow.token_hash == hash_token(token),
            TokenRow.revoked_at.is_(None),
            or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > now),
        )
    ).first()
    if row is None:
        return None
    expires = _aware(row.expires_at) if row.expires_at is not None else None
    if expires is not None and expires <= now:  # SQLite compares the stored text
        return None
    return Principal(row.id, row.name, row.tenant, row.role), expires


def live_token(session: Session, me: Principal, prefix: str) -> TokenRow | None:
    """The caller's live token (or one they manage) known by `prefix`. Absent, revoked,
    expired and someone else's all read the same: None."""
    now = utcnow()
    rows = session.execute(
        select(TokenRow, UserRow)
        .join(UserRow, UserRow.id == TokenRow.user_id)
        .where(TokenRow.prefix == prefix, TokenRow.revoked_at.is_(None))
    ).all()
    for token, owner in rows:
        expired = token.expires_at is not None and _aware(token.expires_at) <= now
        if not expired and me.may_manage(owner):
            return token
    return None


class TokenCache:
    """Recently checked tokens, by hash, for a few seconds: most requests then need no
    database round trip. Revocation through this server forgets a token at once; one
    revoked elsewhere stops working within `ttl_s`. An expiring token is never kept past
    its expiry."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        key = hash_token(token)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, token: str, principal: Principal, expires: datetime | None = None) -> None:
        until = time.monotonic() + self.ttl_s
        if expires is not None:
            until = min(until, time.monotonic() + (expires - utcnow()).total_seconds())
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[hash_token(token)] = (principal, until)

    def forget(self, token_hash: str) -> None:
        with self._lock:
            self._entries.pop(token_hash, None)

"""Bearer tokens: random, shown once, stored only as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a plain cryptographic hash is the right store:
slow password hashes exist to protect guessable secrets, which these are not.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from arkwright.service.db import TokenRow, UserRow

TOKEN_PREFIX = "ark_"


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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(session: Session, user: UserRow) -> str:
    token = new_token()
    session.add(TokenRow(user_id=user.id, token_hash=hash_token(token), prefix=token[:12]))
    return token


def principal_for(session: Session, token: str) -> Principal | None:
    row = session.execute(
        select(UserRow, TokenRow)
        .join(TokenRow, TokenRow.user_id == UserRow.id)
        .where(TokenRow.token_hash == hash_token(token), TokenRow.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    user = row[0]
    return Principal(user.id, user.name, user.tenant, user.role)


class TokenCache:
    """Recently checked tokens, by hash, for a few seconds: most requests then need no
    database round trip. Revocation through this server forgets a token at once; one
    revoked elsewhere stops working within `ttl_s`."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(hash_token(token))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, token: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[hash_token(token)] = (principal, time.monotonic() + self.ttl_s)

    def forget(self, token_hash: str) -> None:
        with self._lock:
            self._entries.pop(token_hash, None)

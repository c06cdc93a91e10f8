"""Bearer tokens: random, shown once, stored only as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a plain cryptographic hash is the right store:
slow password hashes exist to protect guessable secrets, which these are not.
"""

from __future__ import annotations

import hashlib
import secrets
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

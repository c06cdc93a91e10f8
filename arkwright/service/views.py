"""Shared by the API and the dashboard: who is asking, and a database session.

The caller is found from the token cache without leaving the event loop; only a cache miss
goes to the database, on a worker thread. (Every request pays for this dependency, so it
is kept cheap: issue 13 measured the thread hop alone at ~9% of a submission's CPU.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from arkwright.service.auth import Principal, TokenCache, principal_for

SESSION_COOKIE = "arkwright_token"
MAX_TOKEN_CHARS = 256  # ours are 47; anything far longer is not one of ours


def db(request: Request) -> Iterator[Session]:
    with request.app.state.control.sessions() as session:
        yield session


def _lookup_in_database(request: Request, token: str) -> Principal | None:
    with request.app.state.control.sessions() as session:
        found = principal_for(session, token)
    if found is None:
        return None
    principal, expires = found
    request.app.state.tokens.put(token, principal, expires)
    return principal


def lookup_token(request: Request, token: str) -> Principal | None:
    """The token's holder, if it is live (blocking: for code already off the event loop)."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    cache: TokenCache = request.app.state.tokens
    return cache.get(token) or _lookup_in_database(request, token)


async def principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
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
    found = None
    if len(token) <= MAX_TOKEN_CHARS:
        found = request.app.state.tokens.get(token)
        if found is None:
            found = await run_in_threadpool(_lookup_in_database, request, token)
    if found is None:
        raise HTTPException(
            401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


Me = Annotated[Principal, Depends(principal)]
Db = Annotated[Session, Depends(db)]

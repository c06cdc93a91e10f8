"""How the API says no: every refusal is a 4xx with a `detail` naming what was wrong.

Validation errors name their field; a value that cannot be echoed safely (NaN, a huge
string, an object) is not echoed. Every route documents these answers in the OpenAPI
document (`ERRORS`), so a client generated from it knows them all.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class FieldError(BaseModel):
    field: str
    message: str
    input: str | int | float | bool | None = None


class ErrorOut(BaseModel):
    detail: str | list[FieldError]


def _documented(description: str) -> dict:
    return {"model": ErrorOut, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _documented("Malformed body, header, cursor or query"),
    401: _documented("Missing, unknown, expired or revoked token"),
    403: _documented("The caller's role or programme does not allow this"),
    404: _documented("Absent (another programme's job answers the same)"),
    409: _documented("Conflict: exists already, or an Idempotency-Key reused differently"),
    413: _documented("The request body is over the size limit"),
    422: _documented("A field is invalid (named), or no eligible pool can hold the job"),
    503: _documented("The database did not take the write; nothing changed: retry"),
}


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A database outage is nobody's fault in the request: 503, with a retry hint, and
    the control plane guarantees nothing the call asked for happened."""
    return JSONResponse(
        status_code=503,
        content={"detail": f"service unavailable: {exc}"},
        headers={"Retry-After": "1"},
    )


def _echo(value: object) -> str | int | float | bool | None:
    """The offending input, where it is small and plain enough to repeat back."""
    if isinstance(value, bool | int) and abs(int(value)) < 1 << 63:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= 200 and "\x00" not in value:
        return value
    return None


def field_errors(errors: list) -> list[dict]:
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", ""),
            "input": _echo(e.get("input")),
        }
        for e in errors
    ]


async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"detail": "malformed JSON body"}, status_code=400)
    return JSONResponse({"detail": field_errors(errors)}, status_code=422)


class BodyLimit:
    """Refuse a request body over `max_bytes` with 413 before the app reads it: at once
    when Content-Length says so, else as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, 413 if declared.isdigit() else 400)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._refuse(send, 413)

    async def _refuse(self, send: Send, status: int) -> None:
        text = (
            f"request body over {self.max_bytes} bytes"
            if status == 413
            else "Content-Length is not a number"
        )
        response = JSONResponse({"detail": text}, status_code=status)
        await response({"type": "http"}, _nothing, send)


class NoNulInUrl:
    """Refuse a NUL in the path or query with 400: no name we hold contains one, and
    PostgreSQL refuses one in any text it is asked to compare (a 500 otherwise)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")
        ):
            response = JSONResponse({"detail": "a NUL in the URL"}, status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _nothing() -> Message:
    return {"type": "http.disconnect"}

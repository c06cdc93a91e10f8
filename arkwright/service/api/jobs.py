"""`/v1/jobs`: submit, list, inspect, cancel, and read a job's history and output."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import pydantic_core
import yaml
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from arkwright.service import read_model
from arkwright.service.api.deps import Control, Db, Me
from arkwright.service.api.errors import ERRORS, field_errors
from arkwright.service.control import AdmissionError, IdempotencyConflict
from arkwright.service.schema import EventOut, JobOut, JobPage, JobSubmit, Limits
from arkwright.service.slurm_names import resolve_submission

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
MAX_CURSOR_CHARS = 24
MAX_IDEMPOTENCY_KEY = 128


def _json(content: Any, status_code: int = 200, headers: dict | None = None) -> Response:
    """A response serialised once, straight from the read model's dicts (the same encoder
    the response models use, without validating each row again)."""
    return Response(
        pydantic_core.to_json(content),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor this API gave out stands for; 400 for anything else."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.isdigit():
            raise ValueError
        seq = int(text)
        if seq > read_model.MAX_CURSOR_SEQ:
            raise ValueError
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise HTTPException(400, "cursor: not a cursor this API gave out") from None
    return seq


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few KB of nested aliases expand to gigabytes
    (the "billion laughs"), and a job description never needs them."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_submission(body: bytes, content_type: str, limits: Limits) -> JobSubmit:
    """A job from a JSON body, or a YAML one when the client says so; 400 or 422 naming the
    problem for anything else."""
    kind = content_type.split(";")[0].strip().lower() or "application/json"
    is_yaml = kind in YAML_TYPES
    try:
        data = yaml.load(body, Loader=_NoAliasLoader) if is_yaml else json.loads(body)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, RecursionError):
            first = "nested too deeply"
        raise HTTPException(
            400, f"malformed {'YAML' if is_yaml else 'JSON'} body: {first}"
        ) from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the body must be an object of job fields")
    try:
        return JobSubmit.model_validate(data, context={"limits": limits})
    except ValidationError as exc:
        raise HTTPException(422, field_errors(exc.errors())) from None
    except RecursionError:
        raise HTTPException(400, "the body is nested too deeply") from None


_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": JobSubmit.model_json_schema()},
        "application/yaml": {"schema": JobSubmit.model_json_schema()},
    },
}


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    openapi_extra={"requestBody": _BODY},
    responses={200: {"model": JobOut, "description": "An idempotent retry: the job it made"}},
)
async def submit(
    request: Request,
    me: Me,
    control: Control,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
) -> Response:
    """Submit a job (JSON, or YAML with `Content-Type: application/yaml`)."""
    spec = parse_submission(
        await request.body(), request.headers.get("content-type", ""), request.app.state.limits
    )
    try:
        spec, warnings = resolve_submission(spec, control.fleet)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    tenant = spec.tenant or me.tenant
    if tenant is None:
        raise HTTPException(422, "tenant: an admin must name the programme to charge")
    if not me.may_see_tenant(tenant):
        raise HTTPException(403, f"you may not submit for programme {tenant!r}")
    if idempotency_key is not None and not idempotency_key:
        raise HTTPException(400, "Idempotency-Key must be 1 to 128 characters")
    try:
        row, created = await run_in_threadpool(
            control.submit, spec, tenant, me.user_id, me.name, idempotency_key, warnings
        )
    except AdmissionError as exc:
        raise HTTPException(422, str(exc)) from None
    except IdempotencyConflict as exc:
        raise HTTPException(409, str(exc)) from None
    view = read_model.job_view_of(row, me.name)
    return _json(view, status_code=201 if created else 200)


@router.get("", response_model=JobPage)
async def list_jobs(
    me: Me,
    control: Control,
    state: Annotated[str | None, Query(max_length=256)] = None,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(gt=0, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> Response:
    """Your programme's jobs (every job, for an admin), newest first; pass `next_cursor`
    back as `cursor` for the next page."""
    before_seq = decode_cursor(cursor) if cursor else None
    states = [s for s in (state or "").split(",") if s]

    def read() -> tuple[list[dict], int | None]:  # one hop to a worker thread, not three
        with control.sessions() as session:
            return read_model.list_jobs(
                session, me, tenant=tenant, states=states, limit=limit, before_seq=before_seq
            )

    items, next_seq = await run_in_threadpool(read)
    next_cursor = encode_cursor(next_seq) if next_seq is not None else None
    return _json({"items": items, "next_cursor": next_cursor})


def _visible(session, me, job_id: str) -> dict:
    job = read_model.find_job(session, me, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id[:64]!r}")  # another tenant's job is absent
    return job


JobId = Annotated[str, Path(max_length=64)]


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: JobId, me: Me, control: Control) -> Response:
    def read() -> dict:
        with control.sessions() as session:
            return _visible(session, me, job_id)

    return _json(await run_in_threadpool(read))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: JobId, me: Me, session: Db, control: Control) -> Response:
    """Cancel a queued or running job (SIGTERM, then SIGKILL after a grace period)."""
    _visible(session, me, job_id)
    control.cancel(job_id, me.name)
    session.expire_all()
    return _json(_visible(session, me, job_id))


@router.get("/{job_id}/events", response_model=list[EventOut])
def job_events(job_id: JobId, me: Me, session: Db) -> Response:
    _visible(session, me, job_id)
    return _json(read_model.job_events(session, job_id))


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Output from `offset`"}},
)
def job_logs(
    job_id: JobId,
    me: Me,
    session: Db,
    control: Control,
    stream: Annotated[str, Query(pattern="^(stdout|stderr)$")] = "stdout",
    offset: Annotated[int, Query(ge=0, le=read_model.MAX_LOG_OFFSET)] = 0,
) -> PlainTextResponse:
    """Up to 1 MiB of a stream from `offset`; `X-Log-Offset` is where to read on from."""
    job = _visible(session, me, job_id)
    text, end = read_model.read_log(control, session, job, stream, offset)
    return PlainTextResponse(text, headers={"X-Log-Offset": str(end), "X-Job-State": job["state"]})

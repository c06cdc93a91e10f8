"""`/v1/jobs`: submit, test, list, inspect, cancel, and read a job's history and output."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Annotated, Any

import pydantic_core
import yaml
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ValidationError

from arkwright.service import read_model
from arkwright.service.api.deps import Control, Db, Me
from arkwright.service.api.errors import ERRORS, ErrorOut, field_errors
from arkwright.service.auth import Principal
from arkwright.service.control import AdmissionError, IdempotencyConflict, from_epoch
from arkwright.service.schema import EventOut, JobOut, JobPage, JobSubmit, Limits
from arkwright.service.slurm_names import resolve_submission
from arkwright.service.states import RunState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
MAX_CURSOR_CHARS = 24
MAX_IDEMPOTENCY_KEY = 128
MAX_FILTER_VALUES = 100  # names, users, pools or programmes in one list filter
MAX_FILTER_IDS = 1000  # job ids in one `id` filter (sacct -j, scancel ID...)
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")  # as UserIn allows


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


async def _resolved(request: Request, me: Principal, control) -> tuple[JobSubmit, str, list[str]]:
    """The body as a validated submission with its Slurm names resolved, the programme
    to charge, and the warnings resolving gave; 4xx naming the problem otherwise."""
    spec = parse_submission(
        await request.body(), request.headers.get("content-type", ""), request.app.state.limits
    )
    try:
        spec, warnings = resolve_submission(
            spec,
            control.fleet,
            control.intake.tenants | set(control.fleet.tenant_by_name),
            control.scheduler.throughput,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    tenant = spec.tenant or me.tenant
    if tenant is None:
        raise HTTPException(422, "tenant: an admin must name the programme to charge")
    if not me.may_see_tenant(tenant):
        raise HTTPException(403, f"you may not submit for programme {tenant!r}")
    return spec, tenant, warnings


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
    spec, tenant, warnings = await _resolved(request, me, control)
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


class JobTestOut(BaseModel):
    """What `sbatch --test-only` prints: when and where the job would start, or why not
    yet (nothing is stored)."""

    would_start_at: datetime | None  # None: no estimate (e.g. behind unbounded work)
    pool: str | None
    reason: str
    warnings: list[str] = []


@router.post(
    "/test",
    response_model=JobTestOut,
    openapi_extra={"requestBody": _BODY},
    responses={501: {"model": ErrorOut, "description": "This build's core gives no estimate"}},
)
async def test_submission(request: Request, me: Me, control: Control) -> Response:
    """Validate a job and run admission on it without storing anything (sbatch's
    --test-only): when it would start, on which pool, and why then."""
    spec, tenant, warnings = await _resolved(request, me, control)
    if not hasattr(control, "test_submission"):  # a control plane from before issue 14
        raise HTTPException(501, "test-only: this control plane cannot estimate a start")
    try:
        answer = await run_in_threadpool(control.test_submission, spec, tenant, me.name)
    except AdmissionError as exc:
        raise HTTPException(422, str(exc)) from None
    when = answer.get("would_start_at")
    return _json(
        {
            "would_start_at": from_epoch(when) if when is not None else None,
            "pool": answer.get("pool"),
            "reason": answer.get("reason", ""),
            "warnings": warnings,
        }
    )


def _listed(
    field: str,
    text: str | None,
    valid: Any = None,
    *,
    most: int = MAX_FILTER_VALUES,
    what: str = "",
) -> tuple[str, ...]:
    """A comma-separated filter's values, each checked; 422 naming the field and value."""
    values = tuple(dict.fromkeys(v.strip() for v in (text or "").split(",") if v.strip()))
    if len(values) > most:
        raise HTTPException(422, f"{field}: at most {most} values, got {len(values)}")
    for value in values:
        if valid is not None and not valid(value):
            raise HTTPException(422, f"{field}: {value[:64]!r} is not {what}")
    return values


_STATES = {s.value for s in RunState}


def job_filter(
    me: Principal,
    *,
    state: str | None = None,
    tenant: str | None = None,
    name: str | None = None,
    user: str | None = None,
    pool: str | None = None,
    job_id: str | None = None,
    mine: bool = False,
    submitted_after: datetime | None = None,
    submitted_before: datetime | None = None,
    ended_after: datetime | None = None,
    ended_before: datetime | None = None,
) -> read_model.JobFilter:
    """The list filters a request names, each validated (422 naming it). What they can
    select stays inside what the caller may see: the read model applies visibility first."""
    states = _listed(
        "state", state, _STATES.__contains__, what=f"a job state ({', '.join(sorted(_STATES))})"
    )
    times = {
        "submitted_after": submitted_after,
        "submitted_before": submitted_before,
        "ended_after": ended_after,
        "ended_before": ended_before,
    }
    for field, moment in times.items():
        if moment is not None:
            try:  # naive: UTC; an offset that leaves the calendar is refused here
                times[field] = read_model.as_utc(moment)
            except OverflowError:
                raise HTTPException(422, f"{field}: {moment} is out of range") from None
    return read_model.JobFilter(
        states=states,
        names=_listed("name", name, lambda v: len(v) <= 128, what="a job name (128 chars at most)"),
        users=_listed("user", user, USER_NAME.match, what="a user name"),
        pools=_listed("pool", pool, lambda v: len(v) <= 256, what="a pool or partition name"),
        tenants=_listed("tenant", tenant, lambda v: len(v) <= 64, what="a programme name"),
        ids=_listed(
            "id",
            job_id,
            read_model.JOB_ID_TOKEN.match,
            most=MAX_FILTER_IDS,
            what="a job id (ID, or ID_TASK for an array task)",
        ),
        user_id=me.user_id if mine else None,
        **times,
    )


def with_expected_starts(control, items: list[dict]) -> list[dict]:
    """Pending jobs' views with the core's estimate of when each starts (epoch seconds
    from `ControlPlane.expected_starts`), where it has one."""
    pending = [job["id"] for job in items if job["state"] == RunState.PENDING]
    estimate = getattr(control, "expected_starts", None)  # the lead's core hook (issue 14)
    if not pending or estimate is None:
        return items
    starts = estimate(pending)
    for job in items:
        when = starts.get(job["id"])
        if when is not None:
            job["expected_start"] = from_epoch(when)
    return items


Csv = Annotated[str | None, Query(max_length=8192)]


@router.get("", response_model=JobPage)
async def list_jobs(
    me: Me,
    control: Control,
    state: Csv = None,
    tenant: Csv = None,
    name: Csv = None,
    user: Csv = None,
    pool: Csv = None,
    job_id: Annotated[str | None, Query(alias="id", max_length=16384)] = None,
    mine: bool = False,
    submitted_after: datetime | None = None,
    submitted_before: datetime | None = None,
    ended_after: datetime | None = None,
    ended_before: datetime | None = None,
    limit: Annotated[int, Query(gt=0, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> Response:
    """Your programme's jobs (every job, for an admin), newest first; pass `next_cursor`
    back as `cursor` for the next page. Each filter is a comma-separated list (any of its
    values matches; filters combine with AND): `state`, `tenant` (programme), `name`,
    `user`, `pool` (the pool a job holds, or the partition it asked for), `id`
    (an array's id matches all its tasks; `ID_TASK` one task), `mine` (your own jobs);
    `submitted_after`/`_before` and `ended_after` (ended then or later, or not ended)
    /`ended_before` take ISO 8601 times (UTC if no zone)."""
    before_seq = decode_cursor(cursor) if cursor else None
    where = job_filter(
        me,
        state=state,
        tenant=tenant,
        name=name,
        user=user,
        pool=pool,
        job_id=job_id,
        mine=mine,
        submitted_after=submitted_after,
        submitted_before=submitted_before,
        ended_after=ended_after,
        ended_before=ended_before,
    )

    def read() -> tuple[list[dict], int | None]:  # one hop to a worker thread, not three
        with control.sessions() as session:
            items, next_seq = read_model.list_jobs(
                session, me, limit=limit, before_seq=before_seq, where=where
            )
        return with_expected_starts(control, items), next_seq

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
            return with_expected_starts(control, [_visible(session, me, job_id)])[0]

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

"""The HTTP API: FastAPI over the control plane, with tenant-scoped bearer-token auth."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from arkwright.service.auth import Principal, TokenCache, issue_token
from arkwright.service.control import AdmissionError, ControlPlane, IdempotencyConflict
from arkwright.service.dashboard import mount_dashboard
from arkwright.service.db import (
    AuditRow,
    JobEventRow,
    JobRow,
    PoolStateRow,
    SiteStateRow,
    TenantRow,
    TokenRow,
    UsageRow,
    UserRow,
    utcnow,
)
from arkwright.service.schema import (
    EventOut,
    JobOut,
    JobPage,
    JobSubmit,
    PoolPatch,
    SitePatch,
    TenantIn,
    TokenOut,
    UserIn,
)
from arkwright.service.views import Db, Me, job_out, jobs_query, user_names, visible_job


class CoreCollector:
    """Prometheus gauges read from the core at scrape time (no double bookkeeping)."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    def collect(self) -> Iterator:
        scheduler = self.control.scheduler
        queue = GaugeMetricFamily(
            "arkwright_queue_length", "Jobs waiting, by programme", labels=["tenant"]
        )
        busy = GaugeMetricFamily(
            "arkwright_gpus_busy", "GPUs allocated, by pool", labels=["pool", "site", "gpu_model"]
        )
        total = GaugeMetricFamily("arkwright_gpus_total", "GPUs, by pool", labels=["pool"])
        submissions = CounterMetricFamily("arkwright_submissions", "Jobs accepted")
        with self.control.lock:
            waiting: dict[str, int] = {}
            for job in scheduler.queue:
                waiting[job.tenant] = waiting.get(job.tenant, 0) + 1
            busy_by_pool = [scheduler.busy_gpus(p.index) for p in self.control.fleet.pools]
            accepted = self.control.stats.submissions
        for tenant, count in sorted(waiting.items()):
            queue.add_metric([tenant], count)
        for pool, used in zip(self.control.fleet.pools, busy_by_pool, strict=True):
            busy.add_metric([pool.name, pool.site.name, pool.gpu_model], used)
            total.add_metric([pool.name], pool.gpus)
        submissions.add_metric([], accepted)
        yield from (queue, busy, total, submissions)


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "cursor: not a cursor this API gave out") from None


def create_app(control: ControlPlane, *, run_loop: bool = True) -> FastAPI:
    registry = CollectorRegistry()
    registry.register(CoreCollector(control))
    pass_seconds = Histogram(
        "arkwright_schedule_pass_seconds",
        "Scheduling pass latency",
        registry=registry,
        buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
    )
    control.on_pass = pass_seconds.observe

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if run_loop:
            control.start()
        yield
        if run_loop:
            control.stop()

    app = FastAPI(
        title="Arkwright",
        version="0.1.0",
        lifespan=lifespan,
        description="Scheduler and control plane for sovereign AI compute.",
    )
    app.state.control = control
    app.state.tokens = TokenCache()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "malformed JSON body"}, status_code=400)
        return JSONResponse({"detail": _field_errors(errors)}, status_code=422)

    def require(me: Principal, *roles: str) -> None:
        if me.role not in roles:
            raise HTTPException(403, f"needs role {' or '.join(roles)}; you are {me.role}")

    # ----------------------------------------------------------------- health

    @app.get("/healthz")
    def healthz() -> dict:
        with control.lock:
            return {
                "status": "ok",
                "pending": control.scheduler.pending,
                "running": control.scheduler.running,
                "passes": control.stats.passes,
            }

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------- jobs

    @app.post("/v1/jobs", status_code=201, response_model=JobOut)
    async def submit(
        request: Request,
        me: Me,
        response: Response,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> JobOut:
        spec = await _read_submission(request)
        tenant = spec.tenant or me.tenant
        if tenant is None:
            raise HTTPException(422, "tenant: an admin must name the programme to charge")
        if not me.may_see_tenant(tenant):
            raise HTTPException(403, f"you may not submit for programme {tenant!r}")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 128:
            raise HTTPException(400, "Idempotency-Key must be 1 to 128 characters")
        try:
            row, created = await run_in_threadpool(
                control.submit, spec, tenant, me.user_id, me.name, idempotency_key
            )
        except AdmissionError as exc:
            raise HTTPException(422, str(exc)) from None
        except IdempotencyConflict as exc:
            raise HTTPException(409, str(exc)) from None
        if not created:
            response.status_code = 200
        return job_out(row, me.name)

    @app.get("/v1/jobs", response_model=JobPage)
    def list_jobs(
        me: Me,
        session: Db,
        state: str | None = None,
        tenant: str | None = None,
        limit: Annotated[int, Query(gt=0, le=1000)] = 100,
        cursor: str | None = None,
    ) -> JobPage:
        query = jobs_query(me, tenant, state).limit(limit + 1)
        if cursor:
            query = query.where(JobRow.seq < _decode_cursor(cursor))
        rows = list(session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        names = user_names(session, rows)
        return JobPage(
            items=[job_out(r, names.get(r.user_id, "")) for r in rows],
            next_cursor=_cursor(rows[-1].seq) if more else None,
        )

    @app.get("/v1/jobs/{job_id}", response_model=JobOut)
    def get_job(job_id: str, me: Me, session: Db) -> JobOut:
        row = visible_job(session, me, job_id)
        return job_out(row, user_names(session, [row]).get(row.user_id, ""))

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobOut)
    def cancel_job(job_id: str, me: Me, session: Db) -> JobOut:
        visible_job(session, me, job_id)
        control.cancel(job_id, me.name)
        session.expire_all()
        row = session.get(JobRow, job_id)
        return job_out(row, user_names(session, [row]).get(row.user_id, ""))

    @app.get("/v1/jobs/{job_id}/events", response_model=list[EventOut])
    def job_events(job_id: str, me: Me, session: Db) -> list[EventOut]:
        visible_job(session, me, job_id)
        rows = session.scalars(
            select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        )
        return [EventOut(at=r.at, kind=r.kind, detail=r.detail) for r in rows]

    @app.get("/v1/jobs/{job_id}/logs", response_class=PlainTextResponse)
    def job_logs(
        job_id: str,
        me: Me,
        session: Db,
        response: Response,
        stream: str = "stdout",
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> str:
        row = visible_job(session, me, job_id)
        if stream not in ("stdout", "stderr"):
            raise HTTPException(422, "stream: use stdout or stderr")
        text, end = "", offset
        if row.pool and row.handle:
            site = row.pool.split("/", 1)[0]
            path = control.backends[site].log_path(job_id, row.handle, stream)
            if path and Path(path).exists():
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(1 << 20)
                text, end = data.decode(errors="replace"), offset + len(data)
        response.headers["X-Log-Offset"] = str(end)
        response.headers["X-Job-State"] = row.state
        return text

    # -------------------------------------------------------------- fleet

    @app.get("/v1/sites")
    def sites(me: Me, session: Db) -> list[dict]:
        down = {r.site: r for r in session.scalars(select(SiteStateRow)) if r.down}
        with control.lock:
            busy = {p.index: control.scheduler.busy_gpus(p.index) for p in control.fleet.pools}
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
                "reason": down[s.name].reason if s.name in down else "",
                "gpus": sum(p.gpus for p in control.fleet.pools_at(s.name)),
                "gpus_busy": sum(busy[p.index] for p in control.fleet.pools_at(s.name)),
            }
            for s in control.fleet.sites
        ]

    @app.get("/v1/pools")
    def pools(me: Me, session: Db) -> list[dict]:
        cordoned = {r.pool: r for r in session.scalars(select(PoolStateRow)) if r.cordoned}
        with control.lock:
            busy = {p.index: control.scheduler.busy_gpus(p.index) for p in control.fleet.pools}
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
                "reason": cordoned[p.name].reason if p.name in cordoned else "",
            }
            for p in control.fleet.pools
        ]

    @app.patch("/v1/pools/{site}/{pool}")
    def patch_pool(site: str, pool: str, body: PoolPatch, me: Me) -> dict:
        require(me, "admin")
        name = f"{site}/{pool}"
        if name not in control.pool_index:
            raise HTTPException(404, f"no pool {name!r}")
        control.set_pool_cordoned(name, body.cordoned, body.reason, me.name)
        return {"pool": name, "cordoned": body.cordoned}

    @app.patch("/v1/sites/{site}")
    def patch_site(site: str, body: SitePatch, me: Me) -> dict:
        require(me, "admin")
        if site not in control.fleet.site_by_name:
            raise HTTPException(404, f"no site {site!r}")
        requeued = control.set_site_down(site, body.down, body.reason, me.name)
        return {"site": site, "down": body.down, "requeued": requeued}

    # ------------------------------------------------------ tenants, users, tokens

    @app.get("/v1/tenants")
    def tenants(me: Me, session: Db) -> list[dict]:
        rows = session.scalars(select(TenantRow).order_by(TenantRow.name))
        return [
            {
                "name": t.name,
                "weight": t.weight,
                "description": t.description,
                "gpu_hours_allocation": t.gpu_hours_allocation,
            }
            for t in rows
            if me.may_see_tenant(t.name)
        ]

    @app.post("/v1/tenants", status_code=201)
    def create_tenant(body: TenantIn, me: Me, session: Db) -> dict:
        require(me, "admin")
        if session.get(TenantRow, body.name) is not None:
            raise HTTPException(409, f"tenant {body.name!r} exists")
        session.add(TenantRow(**body.model_dump()))
        session.add(AuditRow(actor=me.name, action="create-tenant", target=body.name))
        session.commit()
        control.refresh_tenants()
        return body.model_dump()

    @app.post("/v1/users", status_code=201, response_model=TokenOut)
    def create_user(body: UserIn, me: Me, session: Db) -> TokenOut:
        require(me, "admin", "tenant-admin")
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
            token = issue_token(session, user)
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
        return TokenOut(token=token, prefix=token[:12], user=body.name)

    @app.post("/v1/tokens", status_code=201, response_model=TokenOut)
    def create_token(me: Me, session: Db, user: str | None = None) -> TokenOut:
        target = _user_in_reach(session, me, user or me.name)
        token = issue_token(session, target)
        session.add(AuditRow(actor=me.name, action="create-token", target=target.name))
        session.commit()
        return TokenOut(token=token, prefix=token[:12], user=target.name)

    @app.delete("/v1/tokens/{prefix}")
    def revoke_token(prefix: str, me: Me, session: Db, request: Request) -> dict:
        row = session.scalar(
            select(TokenRow).where(TokenRow.prefix == prefix, TokenRow.revoked_at.is_(None))
        )
        if row is None:
            raise HTTPException(404, f"no live token {prefix!r}")
        owner = session.get(UserRow, row.user_id)
        _user_in_reach(session, me, owner.name)
        row.revoked_at = utcnow()
        session.add(AuditRow(actor=me.name, action="revoke-token", target=prefix))
        session.commit()
        request.app.state.tokens.forget(row.token_hash)
        return {"revoked": prefix}

    def _user_in_reach(session: Session, me: Principal, name: str) -> UserRow:
        user = session.scalar(select(UserRow).where(UserRow.name == name))
        if user is None or not (
            me.is_admin
            or user.id == me.user_id
            or (me.role == "tenant-admin" and user.tenant == me.tenant)
        ):
            raise HTTPException(404, f"no user {name!r}")
        return user

    # --------------------------------------------------------- usage and audit

    @app.get("/v1/usage")
    def usage(me: Me, session: Db) -> dict:
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
                entry = bucket.setdefault(
                    key, {"gpu_hours": 0.0, "cost_gbp": 0.0, "energy_kwh": 0.0}
                )
                entry["gpu_hours"] += hours or 0.0
                entry["cost_gbp"] += cost or 0.0
                entry["energy_kwh"] += kwh or 0.0
        return {"by_tenant": by_tenant, "by_site": by_site, "as_of": datetime.now(UTC).isoformat()}

    @app.get("/v1/audit")
    def audit(me: Me, session: Db, limit: Annotated[int, Query(gt=0, le=1000)] = 100) -> list:
        require(me, "admin")
        rows = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
        return [
            {
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in rows
        ]

    mount_dashboard(app, control)
    return app


async def _read_submission(request: Request) -> JobSubmit:
    """A job from JSON, or from YAML when the client says so."""
    body = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if kind in ("application/yaml", "application/x-yaml", "text/yaml"):
            data = yaml.safe_load(body)
        else:
            data = json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise HTTPException(
            400,
            f"malformed {'YAML' if 'yaml' in kind else 'JSON'} body: {str(exc).splitlines()[0]}",
        ) from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the body must be an object of job fields")
    try:
        return JobSubmit.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, _field_errors(exc.errors())) from None


def _field_errors(errors: list) -> list[dict]:
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", ""),
            "input": e.get("input")
            if isinstance(e.get("input"), str | int | float | bool | None)
            else None,
        }
        for e in errors
    ]

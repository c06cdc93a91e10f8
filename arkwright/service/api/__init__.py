"""The HTTP API, assembled from one router per resource over the control plane.

Routes are data (Starlette's idea): each module below holds one resource's routes and
nothing else; `create_app` only wires them, the limits, the error answers, the metrics
and the dashboard together.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from arkwright.service.api import admin, fleet, health, jobs, overview, programmes
from arkwright.service.api.errors import BodyLimit, NoNulInUrl, invalid_request, store_unavailable
from arkwright.service.auth import TokenCache
from arkwright.service.control import ControlPlane
from arkwright.service.dashboard import mount_dashboard
from arkwright.service.errors import NotLeader, StoreUnavailable
from arkwright.service.schema import DEFAULT_LIMITS, Limits

ROUTERS = (health.router, jobs.router, fleet.router, programmes.router, admin.router)


def create_app(
    control: ControlPlane, *, run_loop: bool = True, limits: Limits = DEFAULT_LIMITS
) -> FastAPI:
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
    app.state.limits = limits
    app.state.metrics = health.metrics_registry(control)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(NoNulInUrl)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StoreUnavailable, store_unavailable)
    app.add_exception_handler(NotLeader, store_unavailable)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(overview.router)
    mount_dashboard(app, control)
    return app


__all__ = ["create_app"]

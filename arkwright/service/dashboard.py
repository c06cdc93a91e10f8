"""The web dashboard: server-rendered pages over the same data and tenant rules as the API.

Log in with an API token (kept in an HttpOnly, SameSite=Strict cookie). Each page renders
whole on the server; regions marked `data-live` are re-fetched every few seconds as HTML
fragments of the same templates (`?part=live`), so the numbers shown live and the numbers
on first load come from one place. Charts use Chart.js, fetched from the npm registry at
install time and served from the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode, urlparse

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from arkwright.service import read_model
from arkwright.service.auth import Principal
from arkwright.service.control import ControlPlane
from arkwright.service.views import SESSION_COOKIE, lookup_token
from arkwright.templates import environment

STATIC = Path(__file__).parent / "static"
VENDOR_CHART = STATIC / "vendor" / "chart.umd.min.js"
LOG_TAIL_BYTES = 16_384
JOB_STATES = ("pending", "running", "completed", "failed", "cancelled", "rejected")


def _page(name: str, request: Request, me: Principal | None, **context) -> HTMLResponse:
    html = (
        environment()
        .get_template(name)
        .render(
            me=me,
            path=request.url.path,
            chart_library=VENDOR_CHART.exists(),
            **context,
        )
    )
    return HTMLResponse(html)


def _viewer(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return lookup_token(request, token) if token else None


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": str(request.url.path)}), 303)


def _same_origin(request: Request) -> bool:
    """A form post from our own pages (Origin, or Referer, names this host)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    return urlparse(source).netloc == request.url.netloc


def mount_dashboard(app: FastAPI, control: ControlPlane) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return _page("login.html", request, None, error="", next=next)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
    ) -> Response:
        found = lookup_token(request, token.strip()) if token.strip() else None
        if found is None:
            response = _page(
                "login.html",
                request,
                None,
                error="That token is not valid, or it has been revoked.",
                next=next,
            )
            response.status_code = 401
            return response
        # Only a path on this site: "//host" and "/\\host" would leave it.
        target = next if next.startswith("/") and next[1:2] not in ("/", "\\") else "/"
        response = RedirectResponse(target, 303)
        response.set_cookie(
            SESSION_COOKIE,
            token.strip(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=12 * 3600,
        )
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # ------------------------------------------------------------------ fleet

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def fleet_page(request: Request, part: str = "") -> Response:
        me = _viewer(request)
        if me is None:
            return _to_login(request)
        view = read_model.overview(control, me)
        template = "_fleet_live.html" if part == "live" else "fleet.html"
        return _page(template, request, me, view=view, fleet=control.fleet)

    # ------------------------------------------------------------------- jobs

    @app.get("/jobs", response_class=HTMLResponse, include_in_schema=False)
    def jobs_page(
        request: Request,
        state: str = "",
        tenant: str = "",
        q: str = "",
        limit: Annotated[int, Query(gt=0, le=1000)] = 200,
        part: str = "",
    ) -> Response:
        me = _viewer(request)
        if me is None:
            return _to_login(request)
        with control.sessions() as session:
            jobs, _ = read_model.list_jobs(
                session,
                me,
                tenant=tenant or None,
                states=[s for s in state.split(",") if s],
                limit=limit,
                search=q or None,
            )
        filters = {"state": state, "tenant": tenant, "q": q}
        live = "/jobs?" + urlencode({**{k: v for k, v in filters.items() if v}, "part": "live"})
        template = "_jobs_live.html" if part == "live" else "jobs.html"
        tenants = sorted(t.name for t in control.fleet.tenants if me.may_see_tenant(t.name))
        return _page(
            template,
            request,
            me,
            jobs=jobs,
            filters=filters,
            states=JOB_STATES,
            tenants=tenants,
            live=live,
        )

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: str, part: str = "") -> Response:
        me = _viewer(request)
        if me is None:
            return _to_login(request)
        with control.sessions() as session:
            job = read_model.find_job(session, me, job_id)
            if job is None:
                response = _page("missing.html", request, me, job_id=job_id)
                response.status_code = 404  # another programme's job is absent, as in the API
                return response
            events = read_model.job_events(session, job_id)
            usage = read_model.job_usage(session, job_id)
            logs = {
                stream: read_model.tail_log(control, session, job, stream, LOG_TAIL_BYTES)
                for stream in ("stdout", "stderr")
            }
            allocation = read_model.job_allocation(session, job_id)
        template = "_job_live.html" if part == "live" else "job.html"
        return _page(
            template,
            request,
            me,
            job=job,
            events=events,
            usage=usage,
            logs=logs,
            allocation=allocation,
        )

    @app.post("/sites/{site}/state", include_in_schema=False)
    def site_state_from_page(
        request: Request,
        site: str,
        down: Annotated[bool, Form()],
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        me = _viewer(request)
        if me is None:
            return _to_login(request)
        if not _same_origin(request):
            raise HTTPException(403, "change a site from the dashboard's own page")
        if not me.is_admin:
            raise HTTPException(403, "only an admin marks a site down or up")
        if site not in control.fleet.site_by_name:
            raise HTTPException(404, f"no site {site!r}")
        control.set_site_down(site, down, reason.strip() or "marked from the dashboard", me.name)
        return RedirectResponse("/", 303)

    @app.post("/jobs/{job_id}/cancel", include_in_schema=False)
    def cancel_from_page(request: Request, job_id: str) -> Response:
        me = _viewer(request)
        if me is None:
            return _to_login(request)
        if not _same_origin(request):
            raise HTTPException(403, "cancel from the dashboard's own page")
        with control.sessions() as session:
            if read_model.find_job(session, me, job_id) is None:
                raise HTTPException(404, f"no job {job_id!r}")
        control.cancel(job_id, me.name)
        return RedirectResponse(f"/jobs/{job_id}", 303)

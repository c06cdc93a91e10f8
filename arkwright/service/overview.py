"""The fleet at a glance, for the dashboard and `GET /v1/overview`.

Sites and their GPUs are visible to everyone (as `/v1/sites` is); programmes follow the
API's tenant rule: an admin sees every programme, anyone else only their own.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from sqlalchemy import select

from arkwright.core.job import JobState
from arkwright.service.auth import Principal
from arkwright.service.control import ControlPlane
from arkwright.service.db import PoolStateRow, SiteStateRow
from arkwright.service.shares import entitled_shares


@dataclass
class SiteView:
    name: str
    region: str
    jurisdiction: str
    operator: str
    backend: str
    gpu_models: list[str]
    gpus: int
    gpus_busy: int
    gpus_free: int
    carbon_g_per_kwh: float
    state: str  # up, down, cordoned (every pool), unreachable (backend not answering)
    reason: str = ""


@dataclass
class ProgrammeView:
    name: str
    weight: float
    queued_jobs: int
    running_jobs: int
    running_gpus: int
    attained_share: float  # of GPUs busy now
    entitled_share: float  # weight over the weights of every programme (service/shares.py)


@dataclass
class Overview:
    as_of: float
    gpus: int
    gpus_busy: int
    queued_jobs: int
    running_jobs: int
    sites: list[SiteView]
    programmes: list[ProgrammeView]
    utilisation: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class JobCounts:
    """Per programme: jobs waiting (queued, or held by a dependency, an array throttle or
    a retry's backoff: squeue's PENDING) and running, and the GPUs running ones hold. The
    one count the overview, `/metrics` and `/healthz` all show. Read under the lock."""

    waiting: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    running_gpus: dict[str, int] = field(default_factory=dict)


def job_counts(scheduler) -> JobCounts:
    counts = JobCounts()
    for job in scheduler.jobs.values():
        if job.state is JobState.RUNNING:
            counts.running[job.tenant] = counts.running.get(job.tenant, 0) + 1
            counts.running_gpus[job.tenant] = (
                counts.running_gpus.get(job.tenant, 0) + job.allocated_gpus
            )
        else:
            counts.waiting[job.tenant] = counts.waiting.get(job.tenant, 0) + 1
    return counts


def overview(control: ControlPlane, me: Principal) -> Overview:
    now = time.time()
    fleet = control.fleet
    with control.sessions() as session:
        down = {r.site: r.reason for r in session.scalars(select(SiteStateRow)) if r.down}
        cordoned = {r.pool for r in session.scalars(select(PoolStateRow)) if r.cordoned}
    with control.lock:
        busy_by_site = control.busy_by_site()
        counts = job_counts(control.scheduler)
        queued, running, running_gpus = counts.waiting, counts.running, counts.running_gpus
        resting = control.resting_sites()
        weights = dict(control.scheduler.weights)
        gpus_by_site = {s.name: sum(p.gpus for p in fleet.pools_at(s.name)) for s in fleet.sites}
        history = control.history.series(gpus_by_site)
    sites = []
    for site in fleet.sites:
        pools = fleet.pools_at(site.name)
        busy = busy_by_site.get(site.name, 0)
        if site.name in down:
            state, reason = "down", down[site.name]
        elif site.name in resting:
            state, reason = "unreachable", "its backend is not answering; starts paused"
        elif pools and all(p.name in cordoned for p in pools):
            state, reason = "cordoned", ""
        else:
            state, reason = "up", ""
        sites.append(
            SiteView(
                name=site.name,
                region=site.region,
                jurisdiction=site.jurisdiction,
                operator=site.operator,
                backend=site.backend,
                gpu_models=sorted({p.gpu_model for p in pools}),
                gpus=gpus_by_site[site.name],
                gpus_busy=busy,
                gpus_free=gpus_by_site[site.name] - busy,
                carbon_g_per_kwh=site.carbon_at(now),
                state=state,
                reason=reason,
            )
        )
    total_busy = sum(busy_by_site.values())
    with_work = set(queued) | set(running)
    names = {t.name for t in fleet.tenants} | with_work
    entitled = entitled_shares(weights)  # the scheduler's own definition
    programmes = [
        ProgrammeView(
            name=name,
            weight=weights.get(name, fleet.tenant(name).weight),
            queued_jobs=queued.get(name, 0),
            running_jobs=running.get(name, 0),
            running_gpus=running_gpus.get(name, 0),
            attained_share=running_gpus.get(name, 0) / total_busy if total_busy else 0.0,
            entitled_share=entitled.get(name, 0.0),
        )
        for name in sorted(names)
        if me.may_see_tenant(name)
    ]
    return Overview(
        as_of=now,
        gpus=fleet.total_gpus,
        gpus_busy=total_busy,
        queued_jobs=sum(queued.values()) if me.is_admin else queued.get(me.tenant or "", 0),
        running_jobs=sum(running.values()) if me.is_admin else running.get(me.tenant or "", 0),
        sites=sites,
        programmes=programmes,
        utilisation=history,
    )

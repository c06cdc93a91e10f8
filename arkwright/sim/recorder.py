"""The simulation's running tallies, updated at every start, finish and preemption (the
twin's per-event bookkeeping; `metrics.summarize` turns them into the summary). Compiled
with the core where it can be (`arkwright/compiled.py`): it is called several times per
job."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from arkwright.core.fleet import Fleet, Pool, Site
from arkwright.core.job import Job

SAMPLE_S = 3600.0  # utilisation timeline resolution


class CarbonClock:
    """Integrates a site's grid intensity over time (g/kWh × hours), hourly where given."""

    def __init__(self, site: Site) -> None:
        self.flat = site.carbon_g_per_kwh
        self.hourly: list[float] | None = None
        # Plain floats: indexing a NumPy array per run segment costs more than the sum.
        self.cumulative: list[float] = []
        self.cycle_hours = 1.0
        self.cycle_total = 0.0
        if site.carbon_hourly is not None:
            self.hourly = [float(g) for g in site.carbon_hourly]
            self.cumulative = [float(g) for g in np.cumsum([0.0, *self.hourly])]
            self.cycle_hours = float(len(self.hourly))
            self.cycle_total = self.cumulative[-1]

    def _upto(self, hourly: list[float], t: float) -> float:
        hours = t / 3600.0
        cycles, rest = divmod(hours, self.cycle_hours)
        whole = int(rest)
        partial = self.cumulative[whole] + (rest - whole) * hourly[whole]
        return cycles * self.cycle_total + partial

    def integral(self, start: float, end: float) -> float:
        hourly = self.hourly
        if hourly is None:
            return self.flat * (end - start) / 3600.0
        return self._upto(hourly, end) - self._upto(hourly, start)

    def mean(self) -> float:
        return self.flat if self.hourly is None else self.cycle_total / self.cycle_hours


@dataclass
class TenantTally:
    jobs: int = 0
    completed: int = 0
    gpu_s: float = 0.0
    demand_gpu_s: float = 0.0
    cost_gbp: float = 0.0
    waits: list[float] = field(default_factory=list)


class Recorder:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.clocks = {s.name: CarbonClock(s) for s in fleet.sites}
        n = len(fleet.pools)
        # Per-pool totals as plain lists while the run goes on (a NumPy element update
        # costs several times a list's, once per start and finish); arrays in `summary`.
        self.busy_gpu_s = [0.0] * n
        self.energy_kwh = [0.0] * n
        self.carbon_g = [0.0] * n
        self.cost_gbp = [0.0] * n
        self.tenants: dict[str, TenantTally] = {}
        self.waits: list[float] = []
        self.jcts: list[float] = []
        self.slowdowns: list[float] = []
        self.submitted = 0
        self.completed = 0
        self.timed_out = 0
        self.rejected = 0
        self.preemptions = 0
        self.work_lost_gpu_s = 0.0
        self.eligibility_violations = 0
        self.rejections: Counter[str] = Counter()
        self.first_submit = float("inf")
        self.last_event = 0.0
        self.busy_now = [0.0] * n
        # Utilisation is measured while demand is offered (first to last submission);
        # a short trace's long tail would otherwise hide how busy the fleet was.
        self.window = (0.0, 0.0)
        self.busy_in_window = [0.0] * n
        self.timeline: list[list[float]] = []  # busy GPUs per pool, sampled hourly
        self.busy_by_tenant_now: dict[str, float] = {}
        self.tenant_timeline: list[dict[str, float]] = []  # busy GPUs per programme, hourly
        self.timeline_start = 0.0

    def _tenant(self, name: str) -> TenantTally:
        tally = self.tenants.get(name)
        if tally is None:
            tally = self.tenants[name] = TenantTally()
        return tally

    def advance(self, now: float) -> None:
        """Sample the utilisation timeline for every hour boundary passed."""
        if not self.timeline:
            self.timeline_start = now - now % SAMPLE_S
        due = int((now - self.timeline_start) // SAMPLE_S) + 1
        while len(self.timeline) < due:
            self.timeline.append(self.busy_now.copy())
            self.tenant_timeline.append(dict(self.busy_by_tenant_now))

    def submitted_job(self, job: Job) -> None:
        self.submitted += 1
        self.first_submit = min(self.first_submit, job.submit_time)
        tally = self._tenant(job.tenant)
        tally.jobs += 1
        tally.demand_gpu_s += job.gpus * job.duration_s

    def rejected_job(self, job: Job, reason: str) -> None:
        self.rejected += 1
        # Eligibility reasons are per job class, so few; size reasons carry each job's
        # numbers, so they are counted under one heading.
        if reason.startswith("asks for") and "GPUs" in reason:
            reason = "asks for more GPUs than the largest eligible pool has"
        elif reason.startswith("asks for"):
            reason = "asks for a longer run than any eligible site allows"
        self.rejections[reason] += 1

    def started(self, job: Job, pool: Pool, eligible: bool) -> None:
        self.busy_now[pool.index] += job.allocated_gpus
        tenant = job.tenant
        self.busy_by_tenant_now[tenant] = (
            self.busy_by_tenant_now.get(tenant, 0) + job.allocated_gpus
        )
        if not eligible:
            self.eligibility_violations += 1

    def run_segment(self, pool: Pool, gpus: int, start: float, end: float) -> float:
        """Account one run of a job on a pool: GPU-seconds, energy, carbon, money."""
        seconds = end - start
        gpu_s = gpus * seconds
        self.busy_now[pool.index] -= gpus
        self.busy_gpu_s[pool.index] += gpu_s
        overlap = min(end, self.window[1]) - max(start, self.window[0])
        if overlap > 0:
            self.busy_in_window[pool.index] += gpus * overlap
        kw = gpus * pool.watts_per_gpu * pool.site.pue / 1000.0
        self.energy_kwh[pool.index] += kw * seconds / 3600.0
        self.carbon_g[pool.index] += kw * self.clocks[pool.site.name].integral(start, end)
        cost = gpu_s / 3600.0 * pool.price_gbp_per_gpu_hour
        self.cost_gbp[pool.index] += cost
        self.last_event = max(self.last_event, end)
        return cost

    def finished(self, job: Job, pool: Pool, gpus: int, end: float, timed_out: bool) -> None:
        cost = self.run_segment(pool, gpus, job.started_at, end)
        self.busy_by_tenant_now[job.tenant] -= gpus
        tally = self._tenant(job.tenant)
        tally.gpu_s += gpus * (end - job.started_at)
        tally.cost_gbp += cost
        tally.completed += 1
        self.completed += 1
        self.timed_out += timed_out
        wait = job.first_started_at - job.submit_time
        jct = end - job.submit_time
        run_time = job.duration_s / job.speed
        self.waits.append(wait)
        tally.waits.append(wait)
        self.jcts.append(jct)
        self.slowdowns.append(jct / run_time)

    def preempted(
        self, job: Job, pool: Pool, gpus: int, ran_from: float, at: float, lost_s: float
    ) -> None:
        cost = self.run_segment(pool, gpus, ran_from, at)
        self.busy_by_tenant_now[job.tenant] -= gpus
        tally = self._tenant(job.tenant)
        tally.gpu_s += gpus * (at - ran_from)
        tally.cost_gbp += cost
        self.preemptions += 1
        self.work_lost_gpu_s += lost_s / max(job.speed, 1e-9) * gpus

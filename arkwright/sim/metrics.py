"""What every simulation reports: throughput, waits, fairness, energy, carbon, cost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from arkwright.core.fleet import Fleet, Pool, Site
from arkwright.core.job import Job

# An idle GPU still draws power; a fifth of board power is a common planning figure.
IDLE_POWER_FRACTION = 0.2
SAMPLE_S = 3600.0  # utilisation timeline resolution


class CarbonClock:
    """Integrates a site's grid intensity over time (g/kWh × hours), hourly where given."""

    def __init__(self, site: Site) -> None:
        self.flat = site.carbon_g_per_kwh
        self.hourly = site.carbon_hourly
        if self.hourly is not None:
            # Plain floats: indexing a NumPy array per run segment costs more than the sum.
            self.cumulative = np.concatenate([[0.0], np.cumsum(self.hourly)]).tolist()
            self.cycle_hours = float(len(self.hourly))
            self.cycle_total = float(self.cumulative[-1])

    def _upto(self, t: float) -> float:
        hours = t / 3600.0
        cycles, rest = divmod(hours, self.cycle_hours)
        whole = int(rest)
        partial = self.cumulative[whole] + (rest - whole) * self.hourly[whole]
        return cycles * self.cycle_total + float(partial)

    def integral(self, start: float, end: float) -> float:
        if self.hourly is None:
            return self.flat * (end - start) / 3600.0
        return self._upto(end) - self._upto(start)

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

    def summary(
        self, *, unfinished: int, wall_time_s: float, events: int, policy: str, trace: str
    ) -> dict:
        fleet = self.fleet
        busy_gpu_s, busy_in_window, energy_kwh, carbon_g, cost_gbp = (
            np.array(totals, dtype=float)
            for totals in (
                self.busy_gpu_s,
                self.busy_in_window,
                self.energy_kwh,
                self.carbon_g,
                self.cost_gbp,
            )
        )
        start = 0.0 if self.first_submit == float("inf") else self.first_submit
        span = max(self.last_event - start, 1e-9)
        pool_gpus = np.array([p.gpus for p in fleet.pools], dtype=float)
        capacity = pool_gpus * span
        window_s = self.window[1] - self.window[0]
        if window_s > 0:
            window_capacity = pool_gpus * window_s
            busy_window = busy_in_window
        else:  # everything arrived at once: use the whole run
            window_capacity, busy_window = capacity, busy_gpu_s
        idle_gpu_s = np.maximum(capacity - busy_gpu_s, 0.0)
        idle_kwh = np.array(
            [
                idle_gpu_s[p.index]
                * p.watts_per_gpu
                * IDLE_POWER_FRACTION
                * p.site.pue
                / 3_600_000.0
                for p in fleet.pools
            ]
        )
        idle_carbon = np.array(
            [idle_kwh[p.index] * self.clocks[p.site.name].mean() for p in fleet.pools]
        )
        waits = np.array(self.waits) if self.waits else np.zeros(1)
        jcts = np.array(self.jcts) if self.jcts else np.zeros(1)
        slow = np.array(self.slowdowns) if self.slowdowns else np.zeros(1)
        total_busy = float(busy_gpu_s.sum())
        weights = {t.name: t.weight for t in fleet.tenants}
        for name in self.tenants:
            weights.setdefault(name, 1.0)
        total_weight = sum(weights.values())

        def pct(values: np.ndarray, q: float) -> float:
            return float(np.percentile(values, q))

        by_tenant = {}
        for name in sorted(weights):
            tally = self.tenants.get(name, TenantTally())
            tw = np.array(tally.waits) if tally.waits else np.zeros(1)
            by_tenant[name] = {
                "jobs": tally.jobs,
                "completed": tally.completed,
                "gpu_hours": tally.gpu_s / 3600.0,
                "entitled_share": weights[name] / total_weight,
                "attained_share": tally.gpu_s / total_busy if total_busy else 0.0,
                "demand_share": tally.demand_gpu_s
                / max(sum(t.demand_gpu_s for t in self.tenants.values()), 1e-9),
                "mean_wait_s": float(tw.mean()),
                "p95_wait_s": pct(tw, 95),
                "cost_gbp": tally.cost_gbp,
            }
        by_pool = {
            p.name: {
                "gpus": p.gpus,
                "gpu_model": p.gpu_model,
                "utilization": float(busy_window[p.index] / window_capacity[p.index]),
                "gpu_hours": float(busy_gpu_s[p.index] / 3600.0),
                "energy_mwh": float((energy_kwh[p.index] + idle_kwh[p.index]) / 1000.0),
                "carbon_tco2e": float((carbon_g[p.index] + idle_carbon[p.index]) / 1e6),
                "cost_gbp": float(cost_gbp[p.index]),
            }
            for p in fleet.pools
        }
        by_site: dict[str, dict] = {}
        for p in fleet.pools:
            site = by_site.setdefault(
                p.site.name,
                {
                    "region": p.site.region,
                    "gpus": 0,
                    "gpu_hours": 0.0,
                    "energy_mwh": 0.0,
                    "carbon_tco2e": 0.0,
                    "cost_gbp": 0.0,
                    "utilization": 0.0,
                },
            )
            row = by_pool[p.name]
            site["utilization"] += row["utilization"] * p.gpus
            site["gpus"] += p.gpus
            for k in ("gpu_hours", "energy_mwh", "carbon_tco2e", "cost_gbp"):
                site[k] += row[k]
        for site in by_site.values():
            site["utilization"] /= site["gpus"]
        return {
            "fleet": fleet.name,
            "policy": policy,
            "trace": trace,
            "jobs_submitted": self.submitted,
            "jobs_completed": self.completed,
            "jobs_rejected": self.rejected,
            "jobs_unfinished": unfinished,
            "jobs_timed_out": self.timed_out,
            "gpu_utilization": float(busy_window.sum() / window_capacity.sum()),
            "gpu_utilization_makespan": total_busy / float(capacity.sum()),
            "offered_window_s": window_s,
            "mean_wait_s": float(waits.mean()),
            "p50_wait_s": pct(waits, 50),
            "p95_wait_s": pct(waits, 95),
            "p99_wait_s": pct(waits, 99),
            "mean_jct_s": float(jcts.mean()),
            "p50_jct_s": pct(jcts, 50),
            "p95_jct_s": pct(jcts, 95),
            "p99_jct_s": pct(jcts, 99),
            "mean_slowdown": float(slow.mean()),
            "preemptions": self.preemptions,
            "work_lost_gpu_hours": self.work_lost_gpu_s / 3600.0,
            "energy_mwh": float((energy_kwh.sum() + idle_kwh.sum()) / 1000.0),
            "carbon_tco2e": float((carbon_g.sum() + idle_carbon.sum()) / 1e6),
            "cost_gbp": float(cost_gbp.sum()),
            "eligibility_violations": self.eligibility_violations,
            "makespan_s": span,
            "wall_time_s": wall_time_s,
            "events": events,
            "rejection_reasons": dict(self.rejections.most_common()),
            "by_tenant": by_tenant,
            "by_site": by_site,
            "by_pool": by_pool,
        }

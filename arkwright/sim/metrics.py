"""What every simulation reports: throughput, waits, fairness, energy, carbon, cost (the
summary made once from the `recorder.Recorder`'s tallies at the end of a run)."""

from __future__ import annotations

import numpy as np

from arkwright.sim.recorder import Recorder, TenantTally

# An idle GPU still draws power; a fifth of board power is a common planning figure.
IDLE_POWER_FRACTION = 0.2


def summarize(
    recorder: Recorder, *, unfinished: int, wall_time_s: float, events: int, policy: str, trace: str
) -> dict:
    """The run's summary (summary.json) from the recorder's tallies."""
    fleet = recorder.fleet
    busy_gpu_s, busy_in_window, energy_kwh, carbon_g, cost_gbp = (
        np.array(totals, dtype=float)
        for totals in (
            recorder.busy_gpu_s,
            recorder.busy_in_window,
            recorder.energy_kwh,
            recorder.carbon_g,
            recorder.cost_gbp,
        )
    )
    start = 0.0 if recorder.first_submit == float("inf") else recorder.first_submit
    span = max(recorder.last_event - start, 1e-9)
    pool_gpus = np.array([p.gpus for p in fleet.pools], dtype=float)
    capacity = pool_gpus * span
    window_s = recorder.window[1] - recorder.window[0]
    if window_s > 0:
        window_capacity = pool_gpus * window_s
        busy_window = busy_in_window
    else:  # everything arrived at once: use the whole run
        window_capacity, busy_window = capacity, busy_gpu_s
    idle_gpu_s = np.maximum(capacity - busy_gpu_s, 0.0)
    idle_kwh = np.array(
        [
            idle_gpu_s[p.index] * p.watts_per_gpu * IDLE_POWER_FRACTION * p.site.pue / 3_600_000.0
            for p in fleet.pools
        ]
    )
    idle_carbon = np.array(
        [idle_kwh[p.index] * recorder.clocks[p.site.name].mean() for p in fleet.pools]
    )
    waits = np.array(recorder.waits) if recorder.waits else np.zeros(1)
    jcts = np.array(recorder.jcts) if recorder.jcts else np.zeros(1)
    slow = np.array(recorder.slowdowns) if recorder.slowdowns else np.zeros(1)
    total_busy = float(busy_gpu_s.sum())
    weights = {t.name: t.weight for t in fleet.tenants}
    for name in recorder.tenants:
        weights.setdefault(name, 1.0)
    total_weight = sum(weights.values())

    def pct(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q))

    by_tenant = {}
    for name in sorted(weights):
        tally = recorder.tenants.get(name, TenantTally())
        tw = np.array(tally.waits) if tally.waits else np.zeros(1)
        by_tenant[name] = {
            "jobs": tally.jobs,
            "completed": tally.completed,
            "gpu_hours": tally.gpu_s / 3600.0,
            "entitled_share": weights[name] / total_weight,
            "attained_share": tally.gpu_s / total_busy if total_busy else 0.0,
            "demand_share": tally.demand_gpu_s
            / max(sum(t.demand_gpu_s for t in recorder.tenants.values()), 1e-9),
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
        "jobs_submitted": recorder.submitted,
        "jobs_completed": recorder.completed,
        "jobs_rejected": recorder.rejected,
        "jobs_unfinished": unfinished,
        "jobs_timed_out": recorder.timed_out,
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
        "preemptions": recorder.preemptions,
        "work_lost_gpu_hours": recorder.work_lost_gpu_s / 3600.0,
        "energy_mwh": float((energy_kwh.sum() + idle_kwh.sum()) / 1000.0),
        "carbon_tco2e": float((carbon_g.sum() + idle_carbon.sum()) / 1e6),
        "cost_gbp": float(cost_gbp.sum()),
        "eligibility_violations": recorder.eligibility_violations,
        "makespan_s": span,
        "wall_time_s": wall_time_s,
        "events": events,
        "rejection_reasons": dict(recorder.rejections.most_common()),
        "by_tenant": by_tenant,
        "by_site": by_site,
        "by_pool": by_pool,
    }

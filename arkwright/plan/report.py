"""What a plan says: the additions, their cost, energy, carbon and economic return."""

from __future__ import annotations

import json
import math
from pathlib import Path

from arkwright.core.fleet import Fleet
from arkwright.core.throughput import ThroughputTable
from arkwright.plan.economics import EconomicModel
from arkwright.plan.options import Option, with_additions
from arkwright.plan.search import PlanResult
from arkwright.plan.targets import Target
from arkwright.sim import plots

YEAR_S = 365 * 86400.0


def year_scale(summary: dict) -> float:
    """Multiply a simulated period's totals by this to get a year's."""
    span = summary.get("offered_window_s") or summary.get("makespan_s") or YEAR_S
    return YEAR_S / max(span, 1.0)


def typical_speed(table: ThroughputTable, model: str) -> float:
    job_types = list(table.speeds) or ["default"]
    return math.exp(sum(math.log(table.speed(jt, model)) for jt in job_types) / len(job_types))


def build_report(
    result: PlanResult,
    fleet: Fleet,
    options: list[Option],
    targets: list[Target],
    table: ThroughputTable,
    model: EconomicModel,
) -> dict:
    summary = result.summary
    scale = year_scale(summary)
    planned = with_additions(fleet, options, result.units)
    additions = []
    for option, count in zip(options, result.units, strict=True):
        if count:
            site = planned.site_by_name[option.site]
            additions.append(
                {
                    "option": option.name,
                    "units": count,
                    "gpus": count * option.gpus_per_unit,
                    "gpu": option.gpu,
                    "site": site.name,
                    "region": site.region,
                    "capex_gbp": count * option.capex_per_unit,
                    "annual_cost_gbp": count * option.annual_cost_per_unit,
                    "lead_time_months": option.lead_time_months,
                }
            )
    sites = {}
    for pool in planned.pools:
        row = sites.setdefault(
            pool.site.name, {"region": pool.site.region, "gpus": 0, "peak_mw": 0.0}
        )
        row["gpus"] += pool.gpus
        row["peak_mw"] += pool.gpus * pool.watts_per_gpu * pool.site.pue / 1e6
    for name, row in summary["by_site"].items():
        if name in sites:
            sites[name]["annual_mwh"] = row["energy_mwh"] * scale
            sites[name]["annual_tco2e"] = row["carbon_tco2e"] * scale
            sites[name]["utilization"] = row["utilization"]
    # Compute delivered by the additions, in H100-hours a year, and what it returns.
    added_hours_by_region: dict[str, float] = {}
    added_pool_names = {p.name for p in planned.pools[len(fleet.pools) :]}
    for pool in planned.pools:
        if pool.name in added_pool_names:
            delivered = (
                summary["by_pool"][pool.name]["gpu_hours"]
                * scale
                * typical_speed(table, pool.gpu_model)
            )
            added_hours_by_region[pool.site.region] = (
                added_hours_by_region.get(pool.site.region, 0.0) + delivered
            )
    added_hours = sum(added_hours_by_region.values())
    gva = model.gva_per_year(added_hours)
    hours_by_programme = {name: row["gpu_hours"] for name, row in summary["by_tenant"].items()}
    return {
        "feasible": result.feasible,
        "reason": result.reason,
        "targets": [
            {
                "target": t.text,
                "baseline": t.value(result.baseline),
                "planned": t.value(summary),
                "met": t.met(summary),
            }
            for t in targets
        ],
        "additions": additions,
        "capex_gbp": sum(a["capex_gbp"] for a in additions),
        "annual_cost_gbp": sum(a["annual_cost_gbp"] for a in additions),
        "longest_lead_time_months": max((a["lead_time_months"] for a in additions), default=0),
        "energy": {
            "annual_mwh": summary["energy_mwh"] * scale,
            "annual_tco2e": summary["carbon_tco2e"] * scale,
            "peak_mw": sum(s["peak_mw"] for s in sites.values()),
            "by_site": sites,
        },
        "economics": {
            "added_h100_hours_per_year": added_hours,
            "gva_gbp_per_year": gva,
            "by_region_gbp": model.split(gva, added_hours_by_region, weighted=False),
            "by_programme_gbp": model.split(gva, hours_by_programme, weighted=True),
            "model": {
                "A_gbp": model.scale_gbp,
                "beta": model.beta,
                "baseline_h100_hours": model.baseline_h100_hours,
                "calibration": model.check_calibration(),
            },
        },
        "search": {
            "evaluations": result.evaluations,
            "cache_hits": result.cache_hits,
            "steps": [
                {
                    "kind": s.kind,
                    "units": list(s.units),
                    "note": s.note,
                    "annual_cost_gbp": s.annual_cost_gbp,
                    "shortfall": s.shortfall,
                    "values": s.values,
                    "tried": s.tried,
                }
                for s in result.steps
            ],
        },
        "year_scale": scale,
    }


def write_report(out: Path, report: dict, result: PlanResult) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    plt = plots.pyplot()

    written = [out / "plan.json"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    costs = [c / 1e6 for _, c, _ in result.evaluated]
    gaps = [s for _, _, s in result.evaluated]
    ax.scatter(
        costs, gaps, marker="o", facecolors="none", edgecolors="0.4", label="fleets simulated"
    )
    path = [(s.annual_cost_gbp / 1e6, s.shortfall) for s in result.steps if s.kind != "stop"]
    ax.plot([p[0] for p in path], [p[1] for p in path], "k-", marker="s", label="search path")
    plots.label(
        ax,
        "added cost, £M a year (capex over 5 years + opex)",
        "shortfall against targets (0 = all met)",
        "Cost against service level",
    )
    written.append(plots.save(fig, out / "cost_vs_service.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    by_region: dict[str, int] = {}
    for addition in report["additions"]:
        by_region[addition["region"]] = by_region.get(addition["region"], 0) + addition["gpus"]
    names = sorted(by_region) or ["(none)"]
    bars = ax.bar(
        names, [by_region.get(n, 0) for n in names], color="0.7", edgecolor="black", hatch="//"
    )
    ax.bar_label(bars, fmt="%d")
    ax.set_ylabel("GPUs added")
    ax.set_title("Chosen additions by region")
    written.append(plots.save(fig, out / "additions_by_region.png"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    sites = report["energy"]["by_site"]
    names = list(sites)
    for axis, key, label in (
        (left, "annual_mwh", "MWh a year"),
        (right, "annual_tco2e", "tCO2e a year"),
    ):
        bars = axis.bar(
            range(len(names)),
            [sites[n].get(key, 0.0) for n in names],
            color="0.75",
            edgecolor="black",
        )
        axis.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        axis.set_title(label)
    written.append(plots.save(fig, out / "energy_carbon.png"))
    return written

"""A self-contained HTML report of one or more simulation runs.

Plots are PNGs embedded as data URIs, the style sheet is inline, and every chart has a
table of the numbers behind it, so the file opens offline, prints, and reads without
colour (lines differ by style and marker as well as hue).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from arkwright.core.fleet import Fleet
from arkwright.sim import plots
from arkwright.sim.simulator import SimulationResult
from arkwright.templates import render

STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "x", "+", "*"]
HOURS_PER_DAY = 24


@dataclass
class Chart:
    title: str
    image: str  # data URI
    alt: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=96)
    plots.pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _style(n: int) -> dict:
    return {
        "linestyle": STYLES[n % len(STYLES)],
        "marker": MARKERS[n % len(MARKERS)],
        "markevery": 0.1,
        "markersize": 4,
    }


def _daily(series: np.ndarray, how: str = "mean") -> np.ndarray:
    """Hourly samples folded into days (the tables behind the charts)."""
    days = -(-len(series) // HOURS_PER_DAY)
    padded = np.full(days * HOURS_PER_DAY, np.nan)
    padded[: len(series)] = series
    by_day = padded.reshape(days, HOURS_PER_DAY)
    return np.nansum(by_day, axis=1) if how == "sum" else np.nanmean(by_day, axis=1)


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:,.{digits}f}"


def _subplots(count: int, height: float = 3.2):
    plt = plots.pyplot()
    fig, axes = plt.subplots(count, 1, figsize=(8, height * count), squeeze=False)
    return fig, [row[0] for row in axes]


def site_utilisation(fleet: Fleet, results: dict[str, SimulationResult]) -> Chart:
    sites = [s.name for s in fleet.sites]
    site_gpus = {s: sum(p.gpus for p in fleet.pools_at(s)) for s in sites}
    fig, axes = _subplots(len(results))
    rows: list[list[str]] = []
    for ax, (policy, result) in zip(axes, results.items(), strict=True):
        for n, site in enumerate(sites):
            columns = [p.index for p in fleet.pools_at(site)]
            busy = result.timeline[:, columns].sum(axis=1) if len(result.timeline) else np.zeros(0)
            share = busy / max(site_gpus[site], 1) * 100
            ax.plot(np.arange(len(share)) / HOURS_PER_DAY, share, label=site, **_style(n))
            for day, value in enumerate(_daily(share)):
                rows.append([policy, site, str(day), _fmt(value)])
        ax.set_ylim(0, 105)
        plots.label(ax, "day", "GPUs busy (%)", f"{policy}: utilisation by site")
    return Chart(
        "Utilisation over time, by site",
        _png(fig),
        "Line chart of the share of each site's GPUs that were busy, hour by hour.",
        ["policy", "site", "day", "mean GPUs busy %"],
        rows,
        "Sampled hourly; the table gives each day's mean.",
    )


def wait_cdfs(results: dict[str, SimulationResult]) -> Chart:
    fig, axes = _subplots(len(results))
    rows: list[list[str]] = []
    for ax, (policy, result) in zip(axes, results.items(), strict=True):
        for n, (tenant, waits) in enumerate(sorted(result.waits_by_tenant.items())):
            hours = np.sort(np.asarray(waits or [0.0])) / 3600
            ax.plot(
                np.maximum(hours, 1e-3),
                np.linspace(0, 1, len(hours)),
                label=tenant,
                **_style(n),
            )
            rows.append(
                [policy, tenant, str(len(waits))]
                + [_fmt(float(np.percentile(hours, q)), 2) for q in (50, 90, 99)]
                + [_fmt(float(hours.mean()), 2)]
            )
        ax.set_xscale("log")
        plots.label(
            ax,
            "wait before first start (hours, log; 0 shown at 0.001)",
            "fraction of jobs",
            f"{policy}: wait-time CDF by programme",
        )
    return Chart(
        "Wait before first start, by programme",
        _png(fig),
        "Cumulative distribution of each programme's waits, log scale.",
        ["policy", "programme", "jobs", "p50 h", "p90 h", "p99 h", "mean h"],
        rows,
    )


def shares(fleet: Fleet, results: dict[str, SimulationResult]) -> Chart:
    fig, axes = _subplots(len(results))
    rows: list[list[str]] = []
    for ax, (policy, result) in zip(axes, results.items(), strict=True):
        by_tenant = result.tenant_timeline
        total = sum(by_tenant.values()) if by_tenant else np.zeros(0)
        entitled = {
            name: data["entitled_share"] * 100
            for name, data in result.summary.get("by_tenant", {}).items()
        }
        for n, (tenant, busy) in enumerate(sorted(by_tenant.items())):
            share = np.divide(busy, total, out=np.zeros_like(busy), where=total > 0) * 100
            style = _style(n)
            line = ax.plot(np.arange(len(share)) / HOURS_PER_DAY, share, label=tenant, **style)
            if tenant in entitled:
                ax.axhline(
                    entitled[tenant],
                    color=line[0].get_color(),
                    linewidth=0.8,
                    linestyle=style["linestyle"],
                    alpha=0.6,
                )
            for day, value in enumerate(_daily(share)):
                rows.append([policy, tenant, str(day), _fmt(value), _fmt(entitled.get(tenant))])
        ax.set_ylim(0, 105)
        plots.label(
            ax,
            "day",
            "share of busy GPUs (%)",
            f"{policy}: share by programme (thin lines: entitled)",
        )
    return Chart(
        "Share of the fleet over time, by programme",
        _png(fig),
        "Line chart of each programme's share of busy GPUs, with its entitled share.",
        ["policy", "programme", "day", "mean attained %", "entitled %"],
        rows,
        "Entitled share is the programme's weight over the weights of programmes with work.",
    )


def energy_and_carbon(fleet: Fleet, results: dict[str, SimulationResult]) -> Chart:
    plt = plots.pyplot()
    fig, (ax_energy, ax_carbon) = plt.subplots(2, 1, figsize=(8, 6.4), sharex=True)
    kw_per_gpu = np.array([p.watts_per_gpu * p.site.pue / 1000 for p in fleet.pools])
    rows: list[list[str]] = []
    for n, (policy, result) in enumerate(results.items()):
        hours = len(result.timeline)
        if not hours:
            continue
        mwh = result.timeline @ kw_per_gpu / 1000  # per hour
        moments = result.timeline_start + np.arange(hours) * 3600.0
        intensity = np.array([[p.site.carbon_at(t) for p in fleet.pools] for t in moments])
        tonnes = (result.timeline * kw_per_gpu * intensity).sum(axis=1) / 1e6
        days = np.arange(hours) / HOURS_PER_DAY
        ax_energy.plot(days, mwh, label=policy, **_style(n))
        ax_carbon.plot(days, tonnes, label=policy, **_style(n))
        for day, (energy, carbon) in enumerate(
            zip(_daily(mwh, "sum"), _daily(tonnes, "sum"), strict=True)
        ):
            rows.append([policy, str(day), _fmt(energy), _fmt(carbon, 2)])
    plots.label(ax_energy, "", "MWh per hour", "Energy drawn by busy GPUs (with PUE)")
    plots.label(ax_carbon, "day", "tCO2e per hour", "Carbon at each site's hourly intensity")
    return Chart(
        "Energy and carbon over time",
        _png(fig),
        "Two line charts: energy per hour and carbon per hour for each policy.",
        ["policy", "day", "MWh", "tCO2e"],
        rows,
        "From hourly samples of busy GPUs; the summary's totals integrate every run exactly "
        "and add idle power.",
    )


# (summary key, label, scale, decimals): units that read well for a fleet of any size.
REPORT_METRICS = (
    ("jobs_submitted", "jobs submitted", 1, 0),
    ("jobs_completed", "jobs completed", 1, 0),
    ("jobs_rejected", "jobs rejected", 1, 0),
    ("mean_jct_s", "mean job completion time (h)", 1 / 3600, 2),
    ("mean_wait_s", "mean wait (h)", 1 / 3600, 2),
    ("p50_wait_s", "median wait (h)", 1 / 3600, 2),
    ("p95_wait_s", "p95 wait (h)", 1 / 3600, 2),
    ("p99_wait_s", "p99 wait (h)", 1 / 3600, 2),
    ("gpu_utilization", "GPU utilisation (%)", 100, 1),
    ("energy_mwh", "energy (MWh)", 1, 1),
    ("carbon_tco2e", "carbon (tCO2e)", 1, 2),
    ("cost_gbp", "cost (£)", 1, 0),
    ("preemptions", "preemptions", 1, 0),
)


def summary_table(results: dict[str, SimulationResult]) -> tuple[list[str], list[list[str]]]:
    names = list(results)
    base = results[names[0]].summary
    rows = []
    for key, label, scale, digits in REPORT_METRICS:
        row = [label]
        for name in names:
            value = results[name].summary.get(key)
            cell = _fmt(value * scale, digits) if value is not None else "–"
            if name != names[0] and base.get(key):
                cell += f" (×{value / base[key]:.2f})"
            row.append(cell)
        rows.append(row)
    return ["metric", *names], rows


def write_report(
    path: Path, fleet: Fleet, results: dict[str, SimulationResult], title: str, trace: str
) -> Path:
    columns, rows = summary_table(results)
    charts = [
        site_utilisation(fleet, results),
        wait_cdfs(results),
        shares(fleet, results),
        energy_and_carbon(fleet, results),
    ]
    html = render(
        "report.html",
        title=title,
        fleet=fleet,
        trace=trace,
        policies=list(results),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        summary_columns=columns,
        summary_rows=rows,
        charts=charts,
        ratios=len(results) > 1,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".html.partial")
    partial.write_text(html)
    partial.rename(path)
    return path

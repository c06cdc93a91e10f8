"""Run one trace under several policies, side by side, across the machine's cores."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arkwright.core.fleet import Fleet
from arkwright.core.job import Job
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import SchedulerConfig
from arkwright.fleets import load_fleet
from arkwright.sim import plots
from arkwright.sim.simulator import SimulationResult, Simulator
from arkwright.sim.throughput_file import table_for

# (summary key, label, scale for display, shown on the terminal)
KEY_METRICS = (
    ("mean_jct_s", "mean JCT h", 1 / 3600, True),
    ("p95_wait_s", "p95 wait h", 1 / 3600, True),
    ("mean_wait_s", "mean wait h", 1 / 3600, False),
    ("gpu_utilization", "util %", 100, True),
    ("carbon_tco2e", "ktCO2e", 1e-3, True),
    ("energy_mwh", "GWh", 1e-3, False),
    ("cost_gbp", "£M", 1e-6, True),
    ("preemptions", "preemptions", 1, False),
)


@dataclass(frozen=True)
class CompareTask:
    fleet: Fleet
    policy: str
    jobs: list[Job]
    trace_name: str
    throughput_path: str | None
    config: SchedulerConfig | None


def _run(task: CompareTask) -> SimulationResult:
    fleet = task.fleet
    simulator = Simulator(
        fleet, PolicySpec.parse(task.policy), table_for(fleet, task.throughput_path), task.config
    )
    return simulator.run(task.jobs, trace_name=task.trace_name)


def run_policies(
    fleet: Fleet | str,
    policies: list[str],
    jobs: list[Job],
    trace_name: str = "",
    throughput_path: str | None = None,
    config: SchedulerConfig | None = None,
    workers: int | None = None,
) -> dict[str, SimulationResult]:
    """Each policy in its own process (up to one per core); results in the order asked."""
    for name in policies:
        PolicySpec.parse(name)  # fail before starting any work
    if isinstance(fleet, str):
        fleet = load_fleet(fleet)
    tasks = [CompareTask(fleet, p, jobs, trace_name, throughput_path, config) for p in policies]
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        return {t.policy: _run(t) for t in tasks}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(zip(policies, pool.map(_run, tasks), strict=True))


def comparison(results: dict[str, SimulationResult]) -> dict:
    """Key metrics per policy, with ratios to the first policy named."""
    names = list(results)
    base = results[names[0]].summary
    table = {}
    for name in names:
        summary = results[name].summary
        row = {}
        for key, _, _, _ in KEY_METRICS:
            value = summary[key]
            row[key] = value
            row[f"{key}_ratio"] = value / base[key] if base[key] else None
        table[name] = row
    return {
        "baseline": names[0],
        "policies": table,
        "summaries": {n: r.summary for n, r in results.items()},
    }


def write_compare(out: Path, results: dict[str, SimulationResult]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    data = comparison(results)
    (out / "compare.json").write_text(json.dumps(data, indent=2) + "\n")
    plot_compare(out, results)
    return data


def plot_compare(out: Path, results: dict[str, SimulationResult]) -> list[Path]:
    plt = plots.pyplot()

    written = []
    # Line styles as well as colours, so the plots read without colour.
    styles = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))]

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, (name, result) in enumerate(results.items()):
        waits = (
            np.sort(
                np.concatenate(
                    [np.asarray(w) for w in result.waits_by_tenant.values()] or [np.zeros(1)]
                )
            )
            / 3600
        )
        ax.plot(
            np.maximum(waits, 1e-3),
            np.linspace(0, 1, len(waits)),
            linestyle=styles[n % len(styles)],
            label=name,
        )
    ax.set_xscale("log")
    plots.label(
        ax,
        "wait before first start (hours, log; 0 shown at 0.001)",
        "fraction of jobs",
        "Wait-time CDF by policy",
    )
    written.append(plots.save(fig, out / "wait_cdf.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, (name, result) in enumerate(results.items()):
        gpus = sum(p["gpus"] for p in result.summary["by_pool"].values())
        busy = result.timeline.sum(axis=1) / max(gpus, 1) if len(result.timeline) else []
        days = np.arange(len(busy)) / 24
        ax.plot(
            days, np.asarray(busy) * 100, linestyle=styles[n % len(styles)], label=name, linewidth=1
        )
    plots.label(ax, "days", "GPUs busy (%)", "Fleet utilisation over time")
    written.append(plots.save(fig, out / "utilization.png"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    names = list(results)
    energy = [results[n].summary["energy_mwh"] for n in names]
    carbon = [results[n].summary["carbon_tco2e"] for n in names]
    hatches = ["", "//", "\\\\", "xx", "..", "oo"]
    for axis, values, label in ((left, energy, "energy (MWh)"), (right, carbon, "tCO2e")):
        bars = axis.bar(range(len(names)), values, color="0.7", edgecolor="black")
        for bar, hatch in zip(bars, hatches * 3, strict=False):
            bar.set_hatch(hatch)
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
        axis.set_title(label)
        axis.bar_label(bars, fmt="%.0f", fontsize=8)
    written.append(plots.save(fig, out / "energy_carbon.png"))
    return written

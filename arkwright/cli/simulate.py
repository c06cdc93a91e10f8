"""`arkwright simulate` and `arkwright compare`: the digital twin."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Column, Table

from arkwright.cli.base import (
    app,
    console,
    errors,
    fail,
    fleet_or_exit,
    policy_or_exit,
    progress_bar,
    read_trace_or_exit,
    throughput_table,
)
from arkwright.core.fleet import Fleet


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f}h"


def _compact(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def print_summary(summary: dict) -> None:
    table = Table(title=f"{summary['policy']} on {summary['fleet']}", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        (
            "jobs submitted / completed",
            f"{summary['jobs_submitted']:,} / {summary['jobs_completed']:,}",
        ),
        (
            "jobs rejected / unfinished",
            f"{summary['jobs_rejected']:,} / {summary['jobs_unfinished']:,}",
        ),
        ("GPU utilisation", f"{summary['gpu_utilization']:.1%}"),
        ("wait mean / p95", f"{_hours(summary['mean_wait_s'])} / {_hours(summary['p95_wait_s'])}"),
        (
            "JCT mean / p50 / p99",
            f"{_hours(summary['mean_jct_s'])} / "
            f"{_hours(summary['p50_jct_s'])} / "
            f"{_hours(summary['p99_jct_s'])}",
        ),
        ("mean slowdown", f"{summary['mean_slowdown']:.2f}"),
        (
            "preemptions (work lost)",
            f"{summary['preemptions']:,} ({summary['work_lost_gpu_hours']:,.0f} GPU-h)",
        ),
        ("energy", f"{summary['energy_mwh']:,.0f} MWh"),
        ("carbon", f"{summary['carbon_tco2e']:,.0f} tCO2e"),
        ("cost", f"£{summary['cost_gbp']:,.0f}"),
        ("eligibility violations", str(summary["eligibility_violations"])),
        ("simulated span", f"{summary['makespan_s'] / 86400:,.1f} days"),
        ("wall time (events)", f"{summary['wall_time_s']:.1f} s ({summary['events']:,})"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    tenants = Table(
        Column("programme", no_wrap=True),
        Column("jobs", justify="right"),
        Column("share % entitled/demand/got", justify="right"),
        Column("wait mean/p95", justify="right"),
        Column("GPU-h", justify="right"),
        Column("£", justify="right"),
        title="Fair share by programme",
    )
    for name, row in summary["by_tenant"].items():
        shares = "/".join(
            f"{row[k] * 100:.1f}" for k in ("entitled_share", "demand_share", "attained_share")
        )
        waits = f"{_hours(row['mean_wait_s'])}/{_hours(row['p95_wait_s'])}"
        tenants.add_row(
            name,
            _compact(row["jobs"]),
            shares,
            waits,
            _compact(row["gpu_hours"]),
            _compact(row["cost_gbp"]),
        )
    console.print(tenants)
    for reason, count in summary.get("rejection_reasons", {}).items():
        console.print(f"[yellow]rejected {count}×:[/] {reason}", highlight=False)


@app.command()
def simulate(
    trace_path: Path = typer.Option(..., "--trace", help="CSV trace (see design.md)."),
    fleet_name: str = typer.Option("uk-2026", "--fleet", help="Preset or fleet file."),
    policy_name: str = typer.Option(
        "fairshare", "--policy", help="fifo, backfill, fairshare, hetero, carbon; join with +"
    ),
    out: Path = typer.Option(Path("out/sim"), help="Directory for summary.json and timeline."),
    skip_bad_rows: bool = typer.Option(
        False, "--skip-bad-rows", help="Report bad trace rows and go on without them."
    ),
    tick: float = typer.Option(300.0, help="Seconds between full scheduling passes."),
    horizon: float | None = typer.Option(None, help="Stop the clock at this many seconds."),
    throughput: Path | None = typer.Option(None, help="TOML overriding throughput cells."),
    carbon: Path | None = typer.Option(None, help="CSV of hourly gCO2/kWh per site."),
    budget: list[str] = typer.Option([], help="PROGRAMME=AMOUNT[gpuh|gbp]; repeatable."),
    over_budget: str = typer.Option("hold", help="hold or reject over-budget jobs."),
    report: bool = typer.Option(False, "--report", help="Also write a self-contained report.html."),
) -> None:
    """Replay a trace on a fleet under a policy (the digital twin)."""
    from arkwright.sim.simulator import Simulator

    fleet = _with_carbon(fleet_or_exit(fleet_name), carbon)
    policy = policy_or_exit(policy_name)
    table = throughput_table(fleet, throughput)
    config = _config(budget, over_budget)
    trace = read_trace_or_exit(trace_path, skip_bad_rows)
    with progress_bar() as progress:
        task = progress.add_task("simulating", total=len(trace.jobs))
        simulator = Simulator(
            fleet,
            policy,
            table,
            config,
            tick_s=tick,
            horizon_s=horizon,
            progress=lambda done, total: progress.update(task, completed=done),
        )
        result = simulator.run(trace.jobs, trace_name=str(trace_path))
    result.summary["bad_rows_skipped"] = len(trace.skipped)
    write_outputs(out, result)
    _warn_fallbacks(result.summary)
    print_summary(result.summary)
    console.print(f"wrote {out / 'summary.json'} and {out / 'utilization_hourly.csv'}")
    if report:
        _write_report(
            out, fleet, {policy_name: result}, f"{policy_name} on {fleet.name}", trace_path
        )


def _write_report(out: Path, fleet, results: dict, title: str, trace_path: Path) -> None:
    from arkwright.sim.report import write_report

    with console.status("writing the report"):
        path = write_report(out / "report.html", fleet, results, title, str(trace_path))
    console.print(f"wrote {path} (self-contained: open it in any browser, offline)")


def _budgets(entries: list[str]) -> dict:
    from arkwright.core.budget import Budget

    budgets = {}
    for entry in entries:
        tenant, sep, amount = entry.partition("=")
        if not sep or not tenant.strip():
            raise fail(f"--budget {entry!r}: use PROGRAMME=AMOUNT, e.g. startups=2e6gbp")
        try:
            budgets[tenant.strip()] = Budget.parse(amount)
        except ValueError as exc:
            raise fail(f"--budget {entry!r}: {exc}") from None
    return budgets


def _config(budget: list[str], over_budget: str):
    from arkwright.core.budget import OverBudget
    from arkwright.core.scheduler import SchedulerConfig

    try:
        action = OverBudget(over_budget)
    except ValueError:
        raise fail(f"--over-budget must be hold or reject, got {over_budget!r}") from None
    return SchedulerConfig(budgets=_budgets(budget), over_budget=action)


def _with_carbon(fleet: Fleet, path: Path | None) -> Fleet:
    if path is None:
        return fleet
    from arkwright.sim.carbon_file import CarbonFileError, read_carbon_csv, with_carbon_series

    try:
        return with_carbon_series(fleet, read_carbon_csv(path, fleet))
    except CarbonFileError as exc:
        raise fail(str(exc)) from None


def _warn_fallbacks(summary: dict) -> None:
    cells = summary.get("throughput_table_fallbacks") or []
    if cells:
        errors.print(
            f"[yellow]warning:[/] no throughput for {', '.join(cells[:8])}"
            f"{' …' if len(cells) > 8 else ''}; used the GPUs' spec ratio",
            highlight=False,
        )


@app.command()
def compare(
    trace_path: Path = typer.Option(..., "--trace", help="CSV trace."),
    fleet_name: str = typer.Option("uk-2026", "--fleet", help="Preset or fleet file."),
    policies: str = typer.Option(
        "fifo,backfill,fairshare,fairshare+hetero,carbon",
        help="Comma-separated policies; ratios are to the first.",
    ),
    out: Path = typer.Option(Path("out/compare"), help="Directory for compare.json and plots."),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows"),
    throughput: Path | None = typer.Option(None, help="TOML overriding throughput cells."),
    carbon: Path | None = typer.Option(None, help="CSV of hourly gCO2/kWh per site."),
    budget: list[str] = typer.Option([], help="PROGRAMME=AMOUNT[gpuh|gbp]; repeatable."),
    over_budget: str = typer.Option("hold", help="hold or reject over-budget jobs."),
    report: bool = typer.Option(False, "--report", help="Also write a self-contained report.html."),
) -> None:
    """Run one trace under several policies in parallel and compare them."""
    from arkwright.sim.compare import KEY_METRICS, run_policies, write_compare

    fleet = _with_carbon(fleet_or_exit(fleet_name), carbon)
    names = [p.strip() for p in policies.split(",") if p.strip()]
    for name in names:
        policy_or_exit(name)
    throughput_table(fleet, throughput)
    config = _config(budget, over_budget)
    trace = read_trace_or_exit(trace_path, skip_bad_rows)
    with console.status(f"simulating {len(names)} policies on {len(trace.jobs):,} jobs"):
        results = run_policies(
            fleet,
            names,
            trace.jobs,
            str(trace_path),
            str(throughput) if throughput else None,
            config,
        )
    data = write_compare(out, results)
    _warn_fallbacks(next(iter(results.values())).summary)
    shown = [m for m in KEY_METRICS if m[3]]
    table = Table(
        Column("policy", no_wrap=True), title=f"Policies on {fleet.name}, ×ratio to {names[0]}"
    )
    for _, label, _, _ in shown:
        table.add_column(label, justify="right")
    for name, row in data["policies"].items():
        cells = []
        for key, _, scale, _ in shown:
            ratio = row[f"{key}_ratio"]
            value = f"{row[key] * scale:,.1f}"
            cells.append(value if name == names[0] or ratio is None else f"{value} ×{ratio:.2f}")
        table.add_row(name, *cells)
    console.print(table)
    console.print(f"wrote {out / 'compare.json'}, wait_cdf.png, utilization.png, energy_carbon.png")
    if report:
        title = f"{', '.join(names)} on {fleet.name}"
        _write_report(out, fleet, results, title, trace_path)


def write_outputs(out: Path, result) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    pools = list(result.summary["by_pool"])
    lines = ["hour," + ",".join(pools)]
    for hour, row in enumerate(result.timeline):
        lines.append(f"{hour}," + ",".join(f"{v:g}" for v in row))
    (out / "utilization_hourly.csv").write_text("\n".join(lines) + "\n")

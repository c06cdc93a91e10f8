"""The `arkwright` command: fleets, traces and the digital twin."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from arkwright.core.fleet import Fleet
from arkwright.core.policy import PolicySpec, UnknownPolicy
from arkwright.fleets import FleetFileError, load_fleet, preset_names

app = typer.Typer(
    help="Arkwright: one scheduler for a nation's AI factories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
fleet_app = typer.Typer(help="Inspect fleet presets and files.", no_args_is_help=True)
trace_app = typer.Typer(help="Make and check job traces.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")
app.add_typer(trace_app, name="trace")
console = Console()
errors = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _fleet(name: str) -> Fleet:
    try:
        return load_fleet(name)
    except FleetFileError as exc:
        raise fail(str(exc)) from None


def _policy(name: str) -> PolicySpec:
    try:
        return PolicySpec.parse(name)
    except UnknownPolicy as exc:
        raise fail(str(exc)) from None


# ------------------------------------------------------------------------- fleet


@fleet_app.command("list")
def fleet_list() -> None:
    """The fleet presets shipped with Arkwright."""
    table = Table("preset", "sites", "pools", "GPUs", "description")
    for name in preset_names():
        fleet = load_fleet(name)
        table.add_row(
            name,
            str(len(fleet.sites)),
            str(len(fleet.pools)),
            f"{fleet.total_gpus:,}",
            fleet.description,
        )
    console.print(table)


@fleet_app.command("show")
def fleet_show(name: str = typer.Argument(..., help="A preset name or a fleet TOML file.")) -> None:
    """Print a fleet's sites and pools as a table."""
    fleet = _fleet(name)
    sites = Table(
        Column("site", no_wrap=True),
        "region",
        "juris.",
        "operator",
        "accreditations",
        Column("gCO2/kWh", justify="right"),
        Column("PUE", justify="right"),
        title=f"{fleet.name}: {fleet.description}",
    )
    for site in fleet.sites:
        sites.add_row(
            site.name,
            site.region,
            site.jurisdiction,
            site.operator,
            ", ".join(sorted(site.accreditations)),
            f"{site.carbon_g_per_kwh:g}",
            f"{site.pue:g}",
        )
    console.print(sites)
    pools = Table(
        Column("pool", no_wrap=True),
        "GPU",
        Column("nodes × GPUs", justify="right"),
        Column("GPUs", justify="right"),
        Column("£/GPU-h", justify="right"),
        Column("W/GPU", justify="right"),
        "interconnect",
        title="Pools",
    )
    for pool in fleet.pools:
        pools.add_row(
            pool.name,
            pool.gpu_model,
            f"{pool.nodes:,} × {pool.gpus_per_node}",
            f"{pool.gpus:,}",
            f"{pool.price_gbp_per_gpu_hour:.2f}",
            f"{pool.watts_per_gpu:g}",
            pool.interconnect,
        )
    pools.add_section()
    pools.add_row("total", "", "", f"{fleet.total_gpus:,}", "", "", "")
    console.print(pools)
    if fleet.tenants:
        tenants = Table("programme", "weight", "description", title="Programmes")
        for tenant in fleet.tenants:
            tenants.add_row(tenant.name, f"{tenant.weight:g}", tenant.description)
        console.print(tenants)
    for line in fleet.assumptions:
        console.print(f"[dim]• {line}[/]", highlight=False)


# ------------------------------------------------------------------------- trace


@trace_app.command("synth")
def trace_synth(
    fleet_name: str = typer.Option("uk-2026", "--fleet", help="Preset or fleet file."),
    jobs: int = typer.Option(100_000, help="How many jobs."),
    load: float = typer.Option(0.8, help="Offered load: demand / fleet capacity over the span."),
    seed: int = typer.Option(1, help="Random seed; the same seed gives the same trace."),
    out: Path = typer.Option(..., help="Where to write the CSV trace."),
    throughput: Path | None = typer.Option(None, help="TOML overriding throughput cells."),
    flat: bool = typer.Option(False, help="Count every GPU as a reference GPU for load."),
    span_days: float | None = typer.Option(
        None, help="Fill exactly this many days (run times stretched to keep the load)."
    ),
) -> None:
    """Generate realistic synthetic demand for a fleet.

    Load is measured against what the fleet's GPUs deliver for the generated mix of job
    types (the throughput table), so 0.8 means the fleet would be 80% busy."""
    from arkwright.sim.synth import synthesize
    from arkwright.sim.trace import write_trace

    fleet = _fleet(fleet_name)
    table = None if flat else _table(fleet, throughput)
    try:
        generated = synthesize(fleet, jobs, load, seed, table, span_days)
    except ValueError as exc:
        raise fail(str(exc)) from None
    rows = write_trace(out, generated)
    span_days = (generated[-1].submit_time - generated[0].submit_time) / 86400
    console.print(
        f"wrote {rows:,} jobs over {span_days:.1f} days to {out} "
        f"(fleet {fleet.name}, load {load:g}, seed {seed})"
    )


@trace_app.command("check")
def trace_check(path: Path, skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows")) -> None:
    """Validate a trace file and describe it."""
    from arkwright.sim.trace import TraceError, read_trace

    try:
        trace = read_trace(path, skip_bad_rows=skip_bad_rows)
    except TraceError as exc:
        raise fail(str(exc)) from None
    gpu_hours = sum(j.gpus * j.duration_s for j in trace.jobs) / 3600
    console.print(
        f"{path}: {len(trace.jobs):,} good rows, {len(trace.skipped)} skipped, "
        f"{gpu_hours:,.0f} reference GPU-hours"
    )


# ---------------------------------------------------------------------- simulate


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


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

    fleet = _with_carbon(_fleet(fleet_name), carbon)
    policy = _policy(policy_name)
    table = _table(fleet, throughput)
    config = _config(budget, over_budget)
    trace = _read(trace_path, skip_bad_rows)
    with _progress() as progress:
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


def _table(fleet: Fleet, path: Path | None):
    from arkwright.sim.throughput_file import ThroughputFileError, table_for

    try:
        return table_for(fleet, path)
    except ThroughputFileError as exc:
        raise fail(str(exc)) from None


def _read(trace_path: Path, skip_bad_rows: bool):
    from arkwright.sim.trace import TraceError, read_trace

    try:
        trace = read_trace(trace_path, skip_bad_rows=skip_bad_rows)
    except TraceError as exc:
        raise fail(f"{exc}\n(use --skip-bad-rows to run without them)") from None
    for problem in trace.skipped[:10]:
        errors.print(f"[yellow]skipped[/] {trace_path}:{problem}", highlight=False)
    return trace


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

    fleet = _with_carbon(_fleet(fleet_name), carbon)
    names = [p.strip() for p in policies.split(",") if p.strip()]
    for name in names:
        _policy(name)
    _table(fleet, throughput)
    config = _config(budget, over_budget)
    trace = _read(trace_path, skip_bad_rows)
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


def main() -> None:  # pragma: no cover - console script entry point
    app()


# The service commands register themselves on `app`.
import arkwright.cli_service  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    main()


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def plan(
    ctx: typer.Context,
    demand: Path = typer.Option(..., "--demand", help="CSV trace of today's demand."),
    options_path: Path = typer.Option(..., "--options", help="TOML menu of additions."),
    fleet_name: str = typer.Option("uk-2026", "--fleet", help="Preset or fleet file."),
    growth: float = typer.Option(1.0, help="Demand multiplier, e.g. 2.0 for double."),
    target: list[str] = typer.Option([], help='Fleet-wide target, e.g. "p95_wait<=4h".'),
    target_for: list[str] = typer.Option(
        [],
        help='PROGRAMME TARGET, e.g. --target-for research "p95_wait<=24h" (repeatable; '
        "or PROGRAMME:TARGET).",
    ),
    policy_name: str = typer.Option("fairshare+backfill", "--policy"),
    out: Path = typer.Option(Path("out/plan"), help="Directory for plan.json and plots."),
    economics: Path | None = typer.Option(None, help="Economic model TOML (default shipped)."),
    throughput: Path | None = typer.Option(None, help="TOML overriding throughput cells."),
    workers: int | None = typer.Option(None, help="Processes (default: all cores)."),
) -> None:
    """Find the cheapest additions to a fleet that meet every target at a demand growth."""
    from arkwright.plan.economics import EconomicsError, load_model
    from arkwright.plan.options import OptionsError, load_options
    from arkwright.plan.report import build_report, write_report
    from arkwright.plan.search import PlanInputs, Planner, grow
    from arkwright.plan.targets import Target, TargetError

    fleet = _fleet(fleet_name)
    _policy(policy_name)
    table = _table(fleet, throughput)
    try:
        targets = [Target.parse(t) for t in target]
        targets += _programme_targets(target_for, list(ctx.args))
        if not targets:
            raise TargetError("give at least one --target or --target-for")
        options = load_options(options_path, fleet)
        model = load_model(economics)
    except (TargetError, OptionsError, EconomicsError) as exc:
        raise fail(str(exc)) from None
    if growth <= 0:
        raise fail(f"--growth must be positive, got {growth}")
    jobs = grow(_read(demand, False).jobs, growth)
    inputs = PlanInputs(fleet, options, jobs, policy_name, table)
    names = {t.tenant for t in targets if t.tenant} - {j.tenant for j in jobs}
    if names:
        raise fail(f"--target-for names programme(s) with no demand: {', '.join(sorted(names))}")
    with _progress() as progress:
        task = progress.add_task("planning", total=None)
        planner = Planner(
            inputs,
            targets,
            workers,
            out / "plan-cache.json",
            progress=lambda msg: progress.update(task, description=msg[:70]),
        )
        result = planner.run()
    report = build_report(result, fleet, options, targets, table, model)
    write_report(out, report, result)
    print_plan(report)
    if not result.feasible:
        raise fail(result.reason)


def _programme_targets(values: list[str], extra: list[str]) -> list:
    """Pair each --target-for PROGRAMME with the target text after it (or PROGRAMME:TARGET)."""
    from arkwright.plan.targets import Target, TargetError

    targets = []
    for value in values:
        programme, sep, text = value.partition(":")
        if not sep:
            if not extra:
                raise TargetError(f"--target-for {value}: give the target after the programme")
            text = extra.pop(0)
        targets.append(Target.parse(text, programme))
    if extra:
        raise TargetError(f"unexpected argument(s): {' '.join(extra)}")
    return targets


def print_plan(report: dict) -> None:
    status = "[green]met[/]" if report["feasible"] else "[red]not met[/]"
    console.print(f"Plan: {status} — {report['reason']}", highlight=False)
    targets = Table("target", "now", "with plan", "met")
    for row in report["targets"]:
        duration = "wait" in row["target"] or "jct" in row["target"]
        fmt = (lambda v: f"{v / 3600:,.2f} h") if duration else (lambda v: f"{v:,.3f}")
        targets.add_row(
            row["target"], fmt(row["baseline"]), fmt(row["planned"]), "yes" if row["met"] else "no"
        )
    console.print(targets)
    adds = Table(
        "option",
        "units",
        "GPUs",
        "site",
        "region",
        "capex £M",
        "£M/yr",
        "lead (mo)",
        title="Additions",
    )
    for a in report["additions"]:
        adds.add_row(
            a["option"],
            str(a["units"]),
            f"{a['gpus']:,}",
            a["site"],
            a["region"],
            f"{a['capex_gbp'] / 1e6:,.1f}",
            f"{a['annual_cost_gbp'] / 1e6:,.1f}",
            f"{a['lead_time_months']:g}",
        )
    console.print(adds)
    energy, econ = report["energy"], report["economics"]
    console.print(
        f"Energy {energy['annual_mwh']:,.0f} MWh/yr, peak {energy['peak_mw']:,.1f} MW, "
        f"{energy['annual_tco2e']:,.0f} tCO2e/yr. Additions deliver "
        f"{econ['added_h100_hours_per_year'] / 1e6:,.1f}M H100-hours/yr, worth "
        f"£{econ['gva_gbp_per_year'] / 1e9:,.2f}bn GVA/yr "
        f"({report['search']['evaluations']} simulations, {report['search']['cache_hits']} "
        "from cache).",
        highlight=False,
    )

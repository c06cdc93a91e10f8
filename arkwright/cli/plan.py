"""`arkwright plan`: capacity planning over a menu of additions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from arkwright.cli.base import (
    app,
    console,
    fail,
    fleet_or_exit,
    policy_or_exit,
    progress_bar,
    read_trace_or_exit,
    throughput_table,
)


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

    fleet = fleet_or_exit(fleet_name)
    policy_or_exit(policy_name)
    table = throughput_table(fleet, throughput)
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
    jobs = grow(read_trace_or_exit(demand, False).jobs, growth)
    inputs = PlanInputs(fleet, options, jobs, policy_name, table)
    names = {t.tenant for t in targets if t.tenant} - {j.tenant for j in jobs}
    if names:
        raise fail(f"--target-for names programme(s) with no demand: {', '.join(sorted(names))}")
    with progress_bar() as progress:
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

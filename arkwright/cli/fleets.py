"""`arkwright fleet` and `arkwright trace`: inspect fleets, make and check traces."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Column, Table

from arkwright.cli.base import (
    console,
    fail,
    fleet_app,
    fleet_or_exit,
    throughput_table,
    trace_app,
)
from arkwright.fleets import load_fleet, preset_names


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
    fleet = fleet_or_exit(name)
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

    fleet = fleet_or_exit(fleet_name)
    table = None if flat else throughput_table(fleet, throughput)
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

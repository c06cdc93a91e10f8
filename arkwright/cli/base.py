"""What every command shares: the root app, its consoles, and errors that exit cleanly.

Command modules import from here and register on these apps; `arkwright.cli` imports the
command modules once, so nothing here imports them back.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from arkwright.core.fleet import Fleet
from arkwright.core.policy import PolicySpec, UnknownPolicy
from arkwright.fleets import FleetFileError, load_fleet

app = typer.Typer(
    help="Arkwright: one scheduler for a nation's AI factories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
fleet_app = typer.Typer(help="Inspect fleet presets and files.", no_args_is_help=True)
trace_app = typer.Typer(help="Make and check job traces.", no_args_is_help=True)
admin_app = typer.Typer(help="Administration.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")
app.add_typer(trace_app, name="trace")
app.add_typer(admin_app, name="admin")
console = Console()
# An error is one line however long its path: a wrapped "FILE: line N: ..." could no
# longer be read by the editors and scripts that parse such lines.
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def fleet_or_exit(name: str) -> Fleet:
    try:
        return load_fleet(name)
    except FleetFileError as exc:
        raise fail(str(exc)) from None


def policy_or_exit(name: str) -> PolicySpec:
    try:
        return PolicySpec.parse(name)
    except UnknownPolicy as exc:
        raise fail(str(exc)) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def throughput_table(fleet: Fleet, path: Path | None):
    from arkwright.sim.throughput_file import ThroughputFileError, table_for

    try:
        return table_for(fleet, path)
    except ThroughputFileError as exc:
        raise fail(str(exc)) from None


def read_trace_or_exit(trace_path: Path, skip_bad_rows: bool):
    from arkwright.sim.trace import TraceError, read_trace

    try:
        trace = read_trace(trace_path, skip_bad_rows=skip_bad_rows)
    except TraceError as exc:
        raise fail(f"{exc}\n(use --skip-bad-rows to run without them)") from None
    for problem in trace.skipped[:10]:
        errors.print(f"[yellow]skipped[/] {trace_path}:{problem}", highlight=False)
    return trace

"""The client commands: submit, list, inspect, cancel and follow jobs over the API."""

from __future__ import annotations

import time
from pathlib import Path

import typer
import yaml
from rich.table import Column, Table

from arkwright.cli.base import app, console, fail
from arkwright.client import ApiError, Client

ACTIVE = {"pending", "starting", "running"}


def _client() -> Client:
    return Client.from_env()


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        raise fail(str(exc)) from None


@app.command(context_settings={"allow_interspersed_args": False})
def submit(
    command: list[str] = typer.Argument(None, help="The command to run (after --)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="A job YAML or JSON file."),
    gpus: int | None = typer.Option(None),
    gpu_type: str | None = typer.Option(None, help="Acceptable models, e.g. H100|B200."),
    time_limit: str | None = typer.Option(None, "--time", help="e.g. 2h, 90m, 1-00:00:00"),
    tenant: str | None = typer.Option(None),
    name: str | None = typer.Option(None),
    residency: str | None = typer.Option(None, help="e.g. UK or UK|EU"),
    classification: str | None = typer.Option(None),
    personal_data: str | None = typer.Option(None, help="none, personal or health"),
    priority: str | None = typer.Option(None),
    site: list[str] = typer.Option([], help="Allowed site; repeatable."),
    job_type: str | None = typer.Option(None),
    expected_runtime: str | None = typer.Option(None, help="For simulated sites."),
    idempotency_key: str | None = typer.Option(None, help="Makes retries safe."),
) -> None:
    """Submit a job: options and a command, or a job file."""
    job: dict = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise fail(f"{file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise fail(f"{file}: a job file holds a mapping of job fields")
        job.update(loaded)
    options = {
        "gpus": gpus,
        "gpu_type": gpu_type,
        "time": time_limit,
        "tenant": tenant,
        "name": name,
        "residency": residency,
        "classification": classification,
        "personal_data": personal_data,
        "priority": priority,
        "job_type": job_type,
        "expected_runtime": expected_runtime,
        "sites": site or None,
        "command": command or None,
    }
    job.update({k: v for k, v in options.items() if v is not None})
    job.setdefault("gpus", 1)
    created = _call(_client().submit, job, idempotency_key)
    console.print(f"submitted {created['id']} ({created['state']})")


@app.command("jobs")
def list_jobs(
    state: str | None = typer.Option(None, help="e.g. pending,running"),
    tenant: str | None = typer.Option(None),
    limit: int = typer.Option(50),
) -> None:
    """List jobs you can see, newest first."""
    page = _call(_client().jobs, state=state, tenant=tenant, limit=limit)
    # Ids are what a user copies into the next command: never wrapped or cut, whatever
    # the terminal's width; the free-text columns give way instead.
    items = page["items"]
    id_width = max((len(job["id"]) for job in items), default=2)
    table = Table(
        Column("id", no_wrap=True, min_width=id_width),
        Column("name", overflow="fold", max_width=16),
        Column("tenant", overflow="fold"),
        Column("state", no_wrap=True, min_width=9),
        Column("GPUs", justify="right", no_wrap=True),
        Column("pool", overflow="fold"),
        Column("submitted", no_wrap=True, min_width=11),
        Column("reason", overflow="fold", max_width=40),
    )
    for job in items:
        table.add_row(
            job["id"],
            job["name"],
            job["tenant"],
            job["state"],
            str(job["gpus"]),
            job["pool"] or "",
            job["submitted_at"][5:16].replace("T", " "),  # MM-DD HH:MM, UTC
            job["reason"][:40],
        )
    console.print(table)
    if page.get("next_cursor"):
        console.print("[dim]more jobs: raise --limit[/]")


@app.command("job")
def show_job(job_id: str) -> None:
    """One job, with its history."""
    client = _client()
    job = _call(client.job, job_id)
    for key in (
        "id",
        "name",
        "tenant",
        "user",
        "state",
        "reason",
        "gpus",
        "gpu_type",
        "pool",
        "attempts",
        "exit_code",
        "submitted_at",
        "started_at",
        "finished_at",
        "command",
    ):
        console.print(f"[bold]{key:>13}[/] {job[key]}", highlight=False)
    for event in _call(client.events, job_id):
        console.print(
            f"  {event['at'][:19]}  {event['kind']:<10} {event['detail']}", highlight=False
        )


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a queued or running job."""
    job = _call(_client().cancel, job_id)
    console.print(f"{job['id']}: {job['state']}")


@app.command()
def logs(
    job_id: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    stderr: bool = typer.Option(False, "--stderr", help="Show stderr instead of stdout."),
) -> None:
    """A job's output."""
    client = _client()
    stream = "stderr" if stderr else "stdout"
    offset = 0
    while True:
        text, offset, state = _call(client.logs, job_id, stream, offset)
        if text:
            print(text, end="", flush=True)
        if not follow or (state not in ACTIVE and not text):
            break
        time.sleep(0.5)


@app.command()
def usage() -> None:
    """GPU-hours, cost and energy by programme and by site."""
    data = _call(_client().usage)
    for title, rows in (("programme", data["by_tenant"]), ("site", data["by_site"])):
        table = Table(title, "GPU-hours", "£", "kWh")
        for name, row in sorted(rows.items()):
            table.add_row(
                name,
                f"{row['gpu_hours']:,.2f}",
                f"{row['cost_gbp']:,.2f}",
                f"{row['energy_kwh']:,.1f}",
            )
        console.print(table)

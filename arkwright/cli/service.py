"""`arkwright serve` and `arkwright admin`: run the control plane, make the first admin.

Paths given on the command line are resolved to absolute ones here, once, before anything
else sees them: the service hands its data directory to runners and Slurm scripts that
start in other working directories, where a relative path names nothing.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from arkwright.cli.base import admin_app, app, console, fail, fleet_or_exit, policy_or_exit

if TYPE_CHECKING:
    from arkwright.service.control import ControlPlane

DATA_DIR = Path(os.environ.get("ARKWRIGHT_DATA", "arkwright-data"))


def absolute(path: Path) -> Path:
    """`path` as an absolute path, `~` expanded, symlinks resolved (the directory need not
    exist yet)."""
    return path.expanduser().resolve()


def database_url(db: str | None, data_dir: Path) -> str:
    """The database URL: --db, else ARKWRIGHT_DATABASE_URL, else SQLite in `data_dir`
    (which must already be absolute, so the URL is too)."""
    from arkwright.service.db import default_url

    return db or os.environ.get("ARKWRIGHT_DATABASE_URL") or default_url(data_dir)


@app.command()
def serve(
    fleet_name: str = typer.Option("local", "--fleet", help="Preset or fleet file."),
    db: str | None = typer.Option(
        None, help="Database URL (default: SQLite in --data-dir; or ARKWRIGHT_DATABASE_URL)."
    ),
    data_dir: Path = typer.Option(DATA_DIR, help="Where the database and job logs live."),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8765),
    policy: str = typer.Option("fairshare+backfill", help="Scheduling policy."),
    sim_speedup: float = typer.Option(3600.0, help="Simulated sites: job seconds per second."),
    history_every: float = typer.Option(
        60.0, help="Seconds between the dashboard's utilisation samples."
    ),
    requeue_lost: bool = typer.Option(
        True,
        "--requeue-lost/--fail-lost",
        help="Work a site lost through no fault of the job (a node failed, a controller "
        "forgot it): place it again, or fail it.",
    ),
    allow_root: bool = typer.Option(
        False,
        help="As root, stay one root process instead of dropping to --service-user "
        "beside a privileged launcher.",
    ),
    service_user: str = typer.Option(
        "arkwright", help="As root: the account the service drops to (created if missing)."
    ),
    workers: int = typer.Option(
        1,
        min=1,
        max=64,
        help="Processes serving the API on the port (one leads; the others store "
        "submissions for it). More than one spreads the API over several cores.",
    ),
) -> None:
    """Run the control plane, its API and the dashboard (at /)."""
    from dataclasses import replace

    from arkwright.backends.launcher_split import CannotDrop
    from arkwright.backends.privilege import enter_service
    from arkwright.service.server import ServiceConfig, build_control, prepare_database

    policy_or_exit(policy)
    fleet = fleet_or_exit(fleet_name)
    try:  # before the database, the port or any thread: see backends/privilege.py
        data_dir, said, split = enter_service(
            fleet, absolute(data_dir), allow_root, service_user, readers=workers - 1
        )
    except CannotDrop as exc:
        raise fail(f"cannot drop root: {exc} (or pass --allow-root)") from None
    if said:
        console.print(said)
    config = ServiceConfig(
        fleet,
        data_dir,
        database_url(db, data_dir),
        policy,
        sim_speedup,
        history_every_s=history_every,
        requeue_lost=requeue_lost,
        local_backend=split.client if split else None,
    )
    sock, others = None, None
    if workers > 1:
        from arkwright.service.workers import fork_workers, listen

        if config.url.startswith("sqlite"):
            console.print(
                "[yellow]note: on SQLite every process's writes wait for one file lock; "
                "--workers spreads the API over cores best on PostgreSQL[/yellow]"
            )
        prepare_database(config)  # once, before the workers open it
        try:
            sock = listen(host, port)
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror}") from None

        def serve_worker(n: int) -> None:
            # Its own read-only channel to the launcher (logs), never the leader's.
            local = split.reader_client(n) if split else None
            _serve(
                build_control(replace(config, api_only=True, local_backend=local)), host, port, sock
            )

        others = fork_workers(workers - 1, serve_worker)
    try:
        control = build_control(config)
        console.print(
            f"Arkwright on http://{host}:{port} (fleet {config.fleet.name}, policy "
            f"{policy}, database {config.url.split('://')[0]}, data in {data_dir}"
            + (f", {workers} API processes)" if workers > 1 else ")")
        )
        _serve(control, host, port, sock)
    finally:
        if others is not None:
            others.stop()


def _serve(control: ControlPlane, host: str, port: int, sock: socket.socket | None = None) -> None:
    """Serve the API (and, unless it is an API worker, run the loop) until stopped: on
    `sock` when the port is shared with other processes."""
    import uvicorn

    from arkwright.service.app import create_app

    app = create_app(control)
    if sock is None:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


@admin_app.command("bootstrap")
def admin_bootstrap(
    db: str | None = typer.Option(None, help="Database URL (default: SQLite in --data-dir)."),
    data_dir: Path = typer.Option(DATA_DIR),
    name: str = typer.Option("admin"),
    token_file: Path | None = typer.Option(
        None, help="Also write the token to this file (mode 600)."
    ),
) -> None:
    """Create the first admin and print its token (shown once)."""
    from arkwright.service.server import AlreadyBootstrapped, bootstrap_admin

    try:
        token = bootstrap_admin(database_url(db, absolute(data_dir)), name)
    except AlreadyBootstrapped as exc:
        raise fail(str(exc)) from None
    if token_file is not None:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.touch(mode=0o600)
        token_file.write_text(token + "\n")
    console.print(f"admin token for {name} (shown once; keep it safe):")
    print(token)


@admin_app.command("token")
def admin_token(
    user: str | None = typer.Option(None, help="Whose token (default: yours)."),
    ttl: str | None = typer.Option(
        None, help="Lifetime, e.g. 30d or 12h (default: until revoked)."
    ),
    rotate: str | None = typer.Option(
        None, help="Replace the token with this prefix by the new one, atomically."
    ),
) -> None:
    """Make a token over the API (ARKWRIGHT_URL, ARKWRIGHT_TOKEN), or rotate one."""
    from arkwright.client import ApiError, Client

    client = Client.from_env()
    try:
        made = client.rotate_token(rotate, ttl) if rotate else client.create_token(user, ttl)
    except ApiError as exc:
        raise fail(str(exc)) from None
    until = (made.get("expires_at") or "revoked")[:16].replace("T", " ")
    console.print(
        f"token {made['prefix']} for {made['user']}, valid until {until} (shown once):",
        soft_wrap=True,
    )
    print(made["token"])


@admin_app.command("revoke")
def admin_revoke(prefix: str = typer.Argument(..., help="The token's prefix (ark_…).")) -> None:
    """Revoke a token by its prefix."""
    from arkwright.client import ApiError, Client

    try:
        Client.from_env().revoke_token(prefix)
    except ApiError as exc:
        raise fail(str(exc)) from None
    console.print(f"revoked {prefix}")

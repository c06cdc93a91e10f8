"""Assemble a running service: database, fleet, backends, core, API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from arkwright.backends.base import Backend
from arkwright.backends.local import LocalBackend
from arkwright.backends.simulated import SimulatedBackend
from arkwright.backends.slurm import SlurmBackend
from arkwright.core.fleet import Fleet
from arkwright.core.policy import PolicySpec
from arkwright.service.auth import issue_token
from arkwright.service.control import ControlPlane
from arkwright.service.db import (
    AuditRow,
    UserRow,
    default_url,
    make_engine,
    migrate,
    session_factory,
)
from arkwright.service.dispatch import RetryPolicy
from arkwright.sim.throughput_file import table_for

log = logging.getLogger("arkwright.server")


@dataclass
class ServiceConfig:
    fleet: Fleet
    data_dir: Path
    db_url: str | None = None
    policy: str = "fairshare+backfill"
    sim_speedup: float = 3600.0
    tick_s: float = 0.2
    history_every_s: float = 60.0
    requeue_lost: bool = True  # place lost work again (else fail it with the reason)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_only: bool = False  # an API worker beside the leading process: never leads
    # The local sites' backend when it was made before the service started: the
    # privileged launcher's client (backends/launcher_split.py). None: built here.
    local_backend: Backend | None = None

    def __post_init__(self) -> None:
        # Resolved once, here: runners start in their own run directory, so a relative
        # data directory (the default `arkwright-data`) would name a different place for
        # them and every local job would fail.
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.db_url = absolute_sqlite_url(self.db_url) if self.db_url else None

    @property
    def url(self) -> str:
        return self.db_url or default_url(self.data_dir)


def build_backends(config: ServiceConfig) -> dict[str, Backend]:
    """One backend per site: `local` runs processes here, `slurm` drives that site's Slurm
    controller (its own backend each), `simulated` runs in scaled time."""
    simulated = SimulatedBackend(config.fleet, config.sim_speedup)
    local: LocalBackend | None = None
    backends: dict[str, Backend] = {}
    for site in config.fleet.sites:
        if site.backend == "local":
            local = (
                local
                or config.local_backend
                or LocalBackend(config.fleet, config.data_dir / "runs")
            )
            backends[site.name] = local
        elif site.backend == "slurm":
            backends[site.name] = SlurmBackend(
                config.fleet,
                site.name,
                config.fleet.backend_settings[site.name],
                config.data_dir / "slurm" / site.name,
            )
        else:
            backends[site.name] = simulated
    return backends


def prepare_database(config: ServiceConfig) -> None:
    """Bring the database's schema up to date (what `build_control` does first), for a
    caller that must do it once before other processes open the database."""
    engine = make_engine(config.url)
    migrate(engine)
    engine.dispose()


def build_control(config: ServiceConfig) -> ControlPlane:
    engine = make_engine(config.url)
    if not config.api_only:  # a worker's parent migrated before forking it
        migrate(engine)
    control = ControlPlane(
        config.fleet,
        PolicySpec.parse(config.policy),
        session_factory(engine),
        build_backends(config),
        table_for(config.fleet),
        tick_s=config.tick_s,
        history_every_s=config.history_every_s,
        requeue_lost=config.requeue_lost,
        retry=config.retry,
        api_only=config.api_only,
    )
    if not config.api_only:
        control.ensure_tenants()
    control.recover()
    return control


def absolute_sqlite_url(url: str) -> str:
    """A SQLite URL with a relative file path, made absolute (other URLs unchanged)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = url[len(prefix) :]
    if path.startswith("/"):
        return url
    return prefix + str(Path(path).resolve())


class AlreadyBootstrapped(RuntimeError):
    pass


def bootstrap_admin(db_url: str, name: str = "admin") -> str:
    """Create the first admin and return its token (shown once). Refuses a second time."""
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        if session.scalar(select(UserRow).where(UserRow.role == "admin")) is not None:
            raise AlreadyBootstrapped(
                "an admin already exists; ask them for a token (POST /v1/tokens)"
            )
        user = UserRow(name=name, tenant=None, role="admin")
        session.add(user)
        session.flush()
        token = issue_token(session, user)
        session.add(AuditRow(actor="arkwright", action="bootstrap", target=name))
    engine.dispose()
    return token

"""Persistence: every state change is committed here before anything acts on it.

SQLite by default (one file in the data directory), PostgreSQL by URL. The schema is
owned by Alembic migrations (arkwright/service/migrations), applied on start.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict: JSON, list: JSON}


class TenantRow(Base):
    __tablename__ = "tenants"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    description: Mapped[str] = mapped_column(Text, default="")
    gpu_hours_allocation: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    tenant: Mapped[str | None] = mapped_column(ForeignKey("tenants.name"), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # None: lives until revoked (migration 0002).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_idempotency"),
        Index("ix_jobs_tenant_seq", "tenant", "seq"),
        Index("ix_jobs_state", "state"),
        Index("ix_jobs_tenant_name", "tenant", "name"),  # migration 0004
        Index("ix_jobs_tenant_user", "tenant", "user_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(128), default="")
    spec: Mapped[dict] = mapped_column(JSON)  # the accepted submission, as validated
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    pool: Mapped[str | None] = mapped_column(String(128), nullable=True)
    allocation: Mapped[list | None] = mapped_column(JSON, nullable=True)
    handle: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # backend's own record
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    work_done_s: Mapped[float] = mapped_column(Float, default=0.0)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Bounded retries (migration 0003): runs lost through no fault of the job, starts a
    # site refused in a row, and the earliest time the job may be placed again (backoff).
    lost_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refused_starts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobEventRow(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class UsageRow(Base):
    """One run of a job on a pool: what it used, for accounting per tenant and site."""

    __tablename__ = "usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(128))
    pool: Mapped[str] = mapped_column(String(128))
    gpus: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    gpu_hours: Mapped[float] = mapped_column(Float)
    cost_gbp: Mapped[float] = mapped_column(Float)
    energy_kwh: Mapped[float] = mapped_column(Float)


class AuditRow(Base):
    """Append-only: who did what. Nothing updates or deletes these rows."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class PoolStateRow(Base):
    __tablename__ = "pool_states"
    pool: Mapped[str] = mapped_column(String(128), primary_key=True)
    cordoned: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")


class SiteStateRow(Base):
    __tablename__ = "site_states"
    site: Mapped[str] = mapped_column(String(128), primary_key=True)
    down: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")


class CounterRow(Base):
    """Sequences every replica shares: the next job number is taken in the insert's own
    transaction, so ids never collide across replicas and commit in the order taken."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class LeadershipRow(Base):
    """One row: the fencing token. Each new leader increments `epoch`; every leader write
    checks it still holds the epoch it took, so a deposed leader's writes are refused."""

    __tablename__ = "leadership"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    holder: Mapped[str] = mapped_column(String(256), default="")
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RunStopRow(Base):
    """Outbox of backend cancels: written in the transaction that stops a run (cancel,
    preemption, lost, stale start), deleted once the backend confirmed. A leader replays
    what is left, so a stopped job's run is never left running untracked."""

    __tablename__ = "run_stops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), index=True)
    site: Mapped[str] = mapped_column(String(128))
    handle: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ControlRequestRow(Base):
    """An action a replica that does not lead asks the leader to carry out (cancel a job,
    cordon a pool, mark a site, reload programmes); the leader sets done_at and result."""

    __tablename__ = "control_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(256), default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    args: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result: Mapped[str] = mapped_column(Text, default="")


def default_url(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'arkwright.db'}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=json.dumps,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
            cursor = dbapi_connection.cursor()
            # WAL lets readers run beside the writer; NORMAL sync is durable across
            # process crashes (the failure this service must survive) at far lower cost.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)

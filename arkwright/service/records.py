"""Conversions between stored rows and the core's jobs, and the usage of one run."""

from __future__ import annotations

from datetime import UTC, datetime

from arkwright.core.dependencies import parse_dependency
from arkwright.core.fleet import Pool
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import DataPolicy
from arkwright.service.db import UsageRow
from arkwright.timefmt import parse_duration


def to_epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def core_job(job_id: str, tenant: str, spec: dict, submitted: float) -> Job:
    """The core's view of an accepted submission (as stored in JobRow.spec)."""
    limit = parse_duration(spec["time"])
    runtime = parse_duration(spec["expected_runtime"]) if spec.get("expected_runtime") else limit
    ckpt = spec.get("checkpoint_interval")
    deadline = spec.get("deadline")
    return Job(
        job_id=job_id,
        tenant=tenant,
        gpus=spec["gpus"],
        duration_s=min(runtime, limit),
        submit_time=submitted,
        time_limit_s=limit,
        data_policy=DataPolicy(
            residency=frozenset(spec["residency"]) if spec.get("residency") else None,
            classification=DataPolicy.parse(None, spec["classification"]).classification,
            personal_data=DataPolicy.parse(None, None, spec["personal_data"]).personal_data,
        ),
        gpu_types=frozenset(spec["gpu_type"]) if spec.get("gpu_type") else None,
        sites=_sites(spec),
        job_type=spec.get("job_type") or "default",
        priority=PriorityClass.parse(spec.get("priority")),
        preemptible=spec.get("preemptible", True),
        checkpoint_interval_s=parse_duration(ckpt) if ckpt else None,
        deadline=to_epoch(datetime.fromisoformat(deadline)) if deadline else None,
        pools=frozenset(spec["pools"]) if spec.get("pools") else None,
        nodes=spec.get("nodes") or 0,
        # Stored with its ids resolved (service/dependencies.py); parsing cannot fail.
        dependency=(
            parse_dependency(spec["dependency"], bool(spec.get("kill_on_invalid_dep")))
            if spec.get("dependency")
            else None
        ),
        # Slurm's singleton groups by user and job name.
        owner_name=f"{spec['owner']}\0{spec.get('name', '')}" if spec.get("owner") else None,
        array_id=spec.get("array_job_id"),
        array_limit=spec.get("array_limit") or 0,
    )


def _sites(spec: dict) -> frozenset[str] | None:
    """The sites the submitter asked for, narrowed to those where the owner has an
    account (`owner_sites`, fixed at submission from the fleet's identity tables)."""
    asked = frozenset(spec["sites"]) if spec.get("sites") else None
    able = spec.get("owner_sites")
    if able is None:
        return asked
    able = frozenset(able)
    return able if asked is None else asked & able


def usage_of_run(
    job: Job, pool: Pool, gpus: int, start: float, end: float, time_scale: float
) -> dict:
    """A usage row (as a dict for a bulk insert) for one run. Simulated sites run in
    scaled time (`time_scale` job seconds per second): account the job time they stand for."""
    hours = gpus * max(end - start, 0.0) * time_scale / 3600.0
    return {
        "job_id": job.job_id,
        "tenant": job.tenant,
        "site": pool.site.name,
        "pool": pool.name,
        "gpus": gpus,
        "started_at": from_epoch(start),
        "ended_at": from_epoch(end),
        "gpu_hours": hours,
        "cost_gbp": hours * pool.price_gbp_per_gpu_hour,
        "energy_kwh": hours * pool.watts_per_gpu * pool.site.pue / 1000.0,
    }


USAGE_COLUMNS = tuple(c.key for c in UsageRow.__table__.columns if c.key != "id")

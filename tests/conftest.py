from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from arkwright.core.fleet import Fleet
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import DataPolicy
from arkwright.fleets import load_fleet
from arkwright.fleets.loader import parse_fleet

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")

# `make test` runs the suite on two processes (pytest-xdist, `--dist loadgroup`): tests
# of pure code spread over both, while every test that uses something shared between
# processes — the PostgreSQL database it wipes, the Slurm cluster, accounts it creates,
# a browser, servers on loopback — stays in one group, run one after another as before.
PARALLEL_SAFE = (
    "tests/core/",
    "tests/sim/",
    "tests/fleets/",
    "tests/plan/",
    "tests/sbatch/",
    "tests/test_cli.py",
    "tests/test_cli_slurm_format.py",
    "tests/test_timefmt.py",
)
SHARED_ANYWAY = ("tests/sbatch/test_against_slurm.py",)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its hook is registered later)
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::")[0]
        if not path.startswith(PARALLEL_SAFE) or path.startswith(SHARED_ANYWAY):
            item.add_marker(pytest.mark.xdist_group("shared"))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Under `--dist loadgroup`, stop at once if xdist did not group the shared tests: they
    would run at the same time and wipe each other's database (a pytest upgrade once
    broke this silently)."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    for item in session.items:
        if item.get_closest_marker("xdist_group") and not item.nodeid.endswith("@shared"):
            raise pytest.UsageError(
                f"pytest-xdist did not group {item.nodeid} (pytest and pytest-xdist "
                "versions out of step: see pyproject.toml)"
            )


@pytest.fixture(scope="session")
def tiny() -> Fleet:
    return load_fleet("tiny")


def one_pool_fleet(nodes: int = 2, gpus_per_node: int = 8, tenants=(("a", 1.0), ("b", 1.0))):
    """A single UK pool: the smallest fleet that shows queueing."""
    return parse_fleet(
        {
            "name": "one",
            "tenants": [{"name": n, "weight": w} for n, w in tenants],
            "sites": [
                {
                    "name": "s",
                    "region": "uk",
                    "jurisdiction": "UK",
                    "operator": "o",
                    "accreditations": ["OFFICIAL"],
                    "carbon_g_per_kwh": 100,
                    "pue": 1.0,
                    "pools": [
                        {
                            "name": "p",
                            "gpu": "H100",
                            "gpus_per_node": gpus_per_node,
                            "nodes": nodes,
                            "price_gbp_per_gpu_hour": 1.0,
                            "watts_per_gpu": 1000,
                        }
                    ],
                }
            ],
        },
        "test",
    )


def make_job(
    job_id: str,
    gpus: int = 1,
    duration: float = 100.0,
    submit: float = 0.0,
    tenant: str = "a",
    **extra,
) -> Job:
    extra.setdefault("data_policy", DataPolicy())
    extra.setdefault("priority", PriorityClass.NORMAL)
    return Job(
        job_id=job_id, tenant=tenant, gpus=gpus, duration_s=duration, submit_time=submit, **extra
    )

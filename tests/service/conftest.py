"""Service fixtures: every API test runs against SQLite and against PostgreSQL."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arkwright.fleets import load_fleet
from arkwright.service.app import create_app
from arkwright.service.control import ControlPlane
from arkwright.service.harness import wipe_database
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'arkwright.db'}"
    url = os.environ.get("ARKWRIGHT_TEST_PG_URL")
    if not url:
        reason = os.environ.get(
            "ARKWRIGHT_TEST_PG_SKIP",
            "ARKWRIGHT_TEST_PG_URL is not set "
            "(run the suite with `make test`, which starts PostgreSQL)",
        )
        pytest.skip(f"PostgreSQL: {reason}")
    return wipe_database(url)


@dataclass
class Service:
    client: TestClient
    control: ControlPlane
    admin: dict[str, str]
    config: ServiceConfig

    def user(self, name: str, tenant: str, role: str = "user") -> dict[str, str]:
        response = self.client.post(
            "/v1/users", headers=self.admin, json={"name": name, "tenant": tenant, "role": role}
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def wait_for(self, job_id: str, headers: dict, states: set[str], timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            if job["state"] in states:
                return job
            time.sleep(0.05)
        raise AssertionError(f"{job_id} stayed {job['state']}, wanted {states}")


def start_service(
    db_url: str, data_dir: Path, fleet: str = "local"
) -> tuple[ServiceConfig, ControlPlane]:
    config = ServiceConfig(load_fleet(fleet), data_dir, db_url, sim_speedup=3600, tick_s=0.05)
    return config, build_control(config)


@pytest.fixture
def service(db_url: str, tmp_path: Path):
    token = bootstrap_admin(db_url)
    config, control = start_service(db_url, tmp_path / "data")
    with TestClient(create_app(control)) as client:
        yield Service(client, control, {"Authorization": f"Bearer {token}"}, config)

"""A real control plane whose local site runs each user's jobs under an `arkt-…` account.

The data directory sits in a world-traversable place (as /srv or /var/lib would be), so
that what keeps a job out of it is the service's own hardening and nothing else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arkwright.backends.privilege import harden_data_dir
from arkwright.service.app import create_app
from arkwright.service.control import ControlPlane
from arkwright.service.db import JobRow
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control
from tests.security.accounts import IS_ROOT, local_fleet_with_identity

SECRET_NAME = "ARKWRIGHT_TEST_SERVER_SECRET"
SECRET_VALUE = "server-only-7f3a9c"


@dataclass
class SecureService:
    client: TestClient
    control: ControlPlane
    admin: dict[str, str]
    data_dir: Path

    def user(self, name: str, tenant: str) -> dict[str, str]:
        response = self.client.post(
            "/v1/users", headers=self.admin, json={"name": name, "tenant": tenant, "role": "user"}
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def submit(self, headers: dict, command: list[str], **extra) -> str:
        body = {"gpus": 1, "time": "5m", "sites": ["workstation"], "command": command, **extra}
        response = self.client.post("/v1/jobs", headers=headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def wait(self, job_id: str, headers: dict, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            if job["state"] in {"completed", "failed", "cancelled", "rejected"}:
                return job
            time.sleep(0.05)
        raise AssertionError(f"{job_id} did not end in {timeout:g} s: {job}")

    def handle(self, job_id: str) -> dict:
        with self.control.sessions() as session:
            return dict(session.get(JobRow, job_id).handle or {})

    def output(self, job_id: str) -> str:
        return Path(self.handle(job_id)["dir"], "stdout.log").read_text()

    def run(self, headers: dict, command: list[str], **extra) -> tuple[dict, str]:
        job_id = self.submit(headers, command, **extra)
        job = self.wait(job_id, headers)
        return job, self.output(job_id)


@pytest.fixture(scope="module")
def secure_service() -> Iterator[SecureService]:
    if not IS_ROOT:
        pytest.skip("needs root: jobs run under other accounts (CI runs the suite as root)")
    base = Path(tempfile.mkdtemp(prefix="arkt-security-", dir="/tmp"))
    os.chmod(base, 0o755)  # traversable by anyone, as /var/lib is
    os.environ[SECRET_NAME] = SECRET_VALUE  # in the server's environment, never a job's
    try:
        data_dir = harden_data_dir(base / "data")
        db_url = f"sqlite:///{data_dir / 'arkwright.db'}"
        token = bootstrap_admin(db_url)
        config = ServiceConfig(local_fleet_with_identity(), data_dir, db_url, tick_s=0.05)
        control = build_control(config)
        with TestClient(create_app(control)) as client:
            yield SecureService(client, control, {"Authorization": f"Bearer {token}"}, data_dir)
    finally:
        os.environ.pop(SECRET_NAME, None)
        shutil.rmtree(base, ignore_errors=True)

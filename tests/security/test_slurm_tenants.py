"""Two programmes' users on the real test cluster (scripts/test-slurm.sh): each job is
submitted as its owner's mapped account, Slurm shows it under that owner, and neither
can read the other's files."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arkwright.fleets import load_fleet
from arkwright.service.app import create_app
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control
from tests.backends.test_slurm_cluster import CONF, FLEET, access, slurm, slurm_job
from tests.security.accounts import IS_ROOT, ensure_account
from tests.service.conftest import Service

__all__ = ["access"]  # the fixture: commands, and slurmrestd where it runs

pytestmark = [
    pytest.mark.skipif(
        not CONF,
        reason="Slurm: " + os.environ.get("ARKWRIGHT_TEST_SLURM_SKIP", "no test cluster"),
    ),
    pytest.mark.skipif(not IS_ROOT, reason="submitting as other accounts needs root"),
]

ANN, BEN = "arkt-research-ann", "arkt-nhs-ben"
IDENTITY = """
  [sites.identity]
  template = "arkt-{{tenant}}-{{user}}"
"""


@pytest.fixture
def tenants_service(access: str):
    for account, programme in ((ANN, "research"), (BEN, "nhs")):
        ensure_account(account)
        if os.environ.get("ARKWRIGHT_TEST_SLURM_SACCT"):
            subprocess.run(
                ["sacctmgr", "-i", "add", "user", account, f"account={programme}"],
                env={**os.environ, "SLURM_CONF": CONF},
                capture_output=True,
                check=False,
            )
    base = Path(tempfile.mkdtemp(prefix="arkt-slurm-", dir="/tmp"))
    os.chmod(base, 0o755)  # the cluster's shared filesystem: anyone may pass through
    fleet_text = FLEET.replace('run_as = "service"', 'run_as = "owner"')
    fleet_text = fleet_text.replace("  [[sites.pools]]", IDENTITY + "  [[sites.pools]]", 1)
    fleet_file = base / "fleet.toml"
    fleet_file.write_text(fleet_text.format(access=access, work_dir=base / "runs"))
    db_url = f"sqlite:///{base / 'arkwright.db'}"
    token = bootstrap_admin(db_url)
    config = ServiceConfig(load_fleet(fleet_file), base / "data", db_url, tick_s=0.05)
    control = build_control(config)
    with TestClient(create_app(control)) as client:
        yield Service(client, control, {"Authorization": f"Bearer {token}"}, config), base
    for account in (ANN, BEN):
        subprocess.run(["scancel", "-u", account], env={**os.environ, "SLURM_CONF": CONF})
    shutil.rmtree(base, ignore_errors=True)


def run_job(service: Service, headers: dict, command: list[str]) -> dict:
    body = {"command": command, "gpus": 1, "time": "10:00"}
    response = service.client.post("/v1/jobs", headers=headers, json=body)
    assert response.status_code == 201, response.text
    job = service.wait_for(response.json()["id"], headers, {"completed", "failed"}, timeout=90)
    assert job["slurm_job_id"], job
    return job


def owner_in_accounting(slurm_id: str) -> str | None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = slurm("sacct", "-n", "-X", "-P", "-j", slurm_id, "-o", "User").strip()
        if out:
            return out.splitlines()[-1]
        time.sleep(0.5)
    return None


def test_two_tenants_jobs_run_as_their_owners_and_cannot_read_each_other(tenants_service):
    service, base = tenants_service
    ann = service.user("ann", "research")
    ben = service.user("ben", "nhs")
    written = run_job(service, ann, ["bash", "-c", "id -un; echo ann-secret > secret.txt"])
    assert written["state"] == "completed", written
    run_dir = base / "runs" / written["id"] / "attempt-1"
    assert (run_dir / "stdout.log").read_text().strip() == ANN
    assert (run_dir / "secret.txt").read_text().strip() == "ann-secret"
    assert slurm_job(written["slurm_job_id"])["UserId"].startswith(f"{ANN}(")
    if os.environ.get("ARKWRIGHT_TEST_SLURM_SACCT"):
        assert owner_in_accounting(written["slurm_job_id"]) == ANN

    probe = (
        f'id -un; if cat "{run_dir}/secret.txt" >/dev/null 2>&1; then echo READ; '
        "else echo DENIED; fi"
    )
    tried = run_job(service, ben, ["bash", "-c", probe])
    assert tried["state"] == "completed", tried
    out = (base / "runs" / tried["id"] / "attempt-1" / "stdout.log").read_text().split()
    assert out == [BEN, "DENIED"], out
    assert slurm_job(tried["slurm_job_id"])["UserId"].startswith(f"{BEN}(")


def test_a_script_runs_as_its_owner_on_slurm_and_only_its_own_log_is_served(tenants_service):
    service, base = tenants_service
    ann = service.user("ann", "research")
    ben = service.user("ben", "nhs")
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    script = f"#!{python}\nimport getpass\nprint('ran as', getpass.getuser())\n"
    body = {"gpus": 1, "time": "10:00", "name": "own", "script": script}
    body["output"] = "out/%x-%j-%u.log"
    answer = service.client.post("/v1/jobs", headers=ann, json=body)
    assert answer.status_code == 201, answer.text
    own = service.wait_for(answer.json()["id"], ann, {"completed", "failed"}, timeout=90)
    assert own["state"] == "completed", own
    log = base / "runs" / own["id"] / "attempt-1" / "out" / f"own-{own['id']}-{ANN}.log"
    assert log.read_text() == f"ran as {ANN}\n"
    assert log.stat().st_uid == pwd.getpwnam(ANN).pw_uid
    served = service.client.get(f"/v1/jobs/{own['id']}/logs", headers=ann).text
    assert served == f"ran as {ANN}\n"

    # Ben's job swaps its own log for a link to Ann's and asks the service to read it.
    thief = f"#!/bin/sh\necho mine\nrm -f stolen.log\nln -s {log} stolen.log\n"
    body = {"gpus": 1, "time": "10:00", "script": thief, "output": "stolen.log"}
    answer = service.client.post("/v1/jobs", headers=ben, json=body)
    assert answer.status_code == 201, answer.text
    tried = service.wait_for(answer.json()["id"], ben, {"completed", "failed"}, timeout=90)
    assert tried["state"] == "completed", tried
    assert (base / "runs" / tried["id"] / "attempt-1" / "stolen.log").is_symlink()
    assert service.client.get(f"/v1/jobs/{tried['id']}/logs", headers=ben).text == ""

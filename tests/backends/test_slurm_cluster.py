"""Arkwright driving a real Slurm 22.05 cluster (slurmctld + slurmd on this machine).

`make test` starts the cluster with scripts/test-slurm.sh (installing slurm-wlm and munge
with apt-get if needed) and exports ARKWRIGHT_TEST_SLURM_CONF. Jobs are submitted through
Arkwright's API and watched in Slurm; the fault tests kill and restart Slurm's daemons.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from arkwright.backends.slurm import SlurmBackend
from arkwright.fleets import load_fleet
from arkwright.service.app import create_app
from arkwright.service.db import JobRow
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control
from tests.backends.test_slurm_backend import request_for
from tests.service.conftest import Service

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test-slurm.sh"
CONF = os.environ.get("ARKWRIGHT_TEST_SLURM_CONF")

pytestmark = pytest.mark.skipif(
    not CONF,
    reason="Slurm: "
    + os.environ.get(
        "ARKWRIGHT_TEST_SLURM_SKIP",
        "ARKWRIGHT_TEST_SLURM_CONF is not set (run the suite with `make test`, "
        "which starts a Slurm cluster)",
    ),
)

FLEET = """
name = "slurm-test"
[[tenants]]
name = "research"
[[tenants]]
name = "nhs"

[[sites]]
name = "hpc"
region = "uk-south-west"
jurisdiction = "UK"
operator = "University"
accreditations = ["OFFICIAL", "OFFICIAL-SENSITIVE"]
carbon_g_per_kwh = 100
backend = "slurm"
  [sites.slurm]
  {access}
  work_dir = "{work_dir}"
  run_as = "service"
  partitions = {{ big = "gpu", small = "debug" }}
  poll_interval_s = 0.25
  pending_timeout_s = 300
  command_timeout_s = 20
  accounting_wait_s = 10
  [[sites.pools]]
  name = "big"
  gpu = "H100"
  gpus_per_node = 4
  nodes = 1
  price_gbp_per_gpu_hour = 2.0
  [[sites.pools]]
  name = "small"
  gpu = "A100"
  gpus_per_node = 4
  nodes = 1
  price_gbp_per_gpu_hour = 1.0
"""


def cluster(action: str) -> None:
    subprocess.run(["bash", str(SCRIPT), action], check=True, timeout=120)


def slurm(*args: str) -> str:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SLURM_CONF": CONF},
    ).stdout


def slurm_job(slurm_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict of its Key=Value fields."""
    fields = {}
    for item in slurm("scontrol", "-o", "show", "job", slurm_id).split():
        key, _, value = item.partition("=")
        fields[key] = value
    return fields


REST_URL = os.environ.get("ARKWRIGHT_TEST_SLURM_REST_URL")
REST_TOKEN_FILE = os.environ.get("ARKWRIGHT_TEST_SLURM_REST_TOKEN_FILE")


@pytest.fixture(params=["commands", "slurmrestd"])
def access(request) -> str:
    """The fleet file's lines saying how to reach the controller."""
    if request.param == "commands":
        return f'slurm_conf = "{CONF}"'
    if not REST_URL:
        reason = os.environ.get("ARKWRIGHT_TEST_SLURM_REST_SKIP", "slurmrestd was not started")
        pytest.skip(f"slurmrestd: {reason}")
    return f'rest_url = "{REST_URL}"\n  rest_user = "root"\n  rest_token_file = "{REST_TOKEN_FILE}"'


def fleet_file_for(tmp_path: Path, access: str) -> Path:
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(FLEET.format(access=access, work_dir=tmp_path / "runs"))
    return fleet_file


@pytest.fixture
def slurm_service(tmp_path: Path, access: str):
    fleet_file = fleet_file_for(tmp_path, access)
    db_url = f"sqlite:///{tmp_path / 'arkwright.db'}"
    token = bootstrap_admin(db_url)
    services: list[Service] = []

    def open_service() -> Service:
        config = ServiceConfig(load_fleet(fleet_file), tmp_path / "data", db_url, tick_s=0.05)
        control = build_control(config)
        control.site_rest_s = 1.0
        client = TestClient(create_app(control))
        client.__enter__()
        service = Service(client, control, {"Authorization": f"Bearer {token}"}, config)
        services.append(service)
        return service

    def close(service: Service) -> None:
        service.client.__exit__(None, None, None)
        services.remove(service)

    yield open_service, close
    for service in list(services):
        close(service)
    cluster("start-ctld")
    cluster("start-slurmd")
    cluster("resume")
    subprocess.run(["scancel", "-u", "root"], env={**os.environ, "SLURM_CONF": CONF}, check=False)


def submit(service: Service, headers: dict, command: list[str], **fields) -> str:
    body = {"command": command, "gpus": 2, "time": "10:00", **fields}
    response = service.client.post("/v1/jobs", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def slurm_id_of(service: Service, headers: dict, job_id: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job.get("slurm_job_id"):
            return job["slurm_job_id"]
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never reached Slurm: {job}")


def wait_slurm_state(slurm_id: str, state: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if slurm_job(slurm_id)["JobState"] == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"Slurm job {slurm_id} stayed {slurm_job(slurm_id)['JobState']}")


def wait_accounted(slurm_id: str, state: str, since: float, timeout: float = 60.0) -> None:
    """Until sacct has recorded the job of this id submitted since `since` in this state
    (accounting may still hold older jobs of the id from a controller's earlier life)."""
    deadline = time.monotonic() + timeout
    window = datetime.fromtimestamp(since - 1).strftime("%Y-%m-%dT%H:%M:%S")
    recorded: list[str] = []
    while time.monotonic() < deadline:
        asked = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", slurm_id, "--duplicates", "-S", window, "-oState"],
            capture_output=True,
            text=True,
            env={**os.environ, "SLURM_CONF": CONF},
        )
        recorded = [line.split(" ")[0] for line in asked.stdout.split()]
        if state in recorded:
            return
        time.sleep(0.2)
    raise AssertionError(f"sacct recorded job {slurm_id} as {recorded!r}, never {state}")


def events_of(service: Service, headers: dict, job_id: str) -> list[str]:
    response = service.client.get(f"/v1/jobs/{job_id}/events", headers=headers)
    return [f"{e['kind']}: {e['detail']}" for e in response.json()]


def test_a_job_runs_in_slurm_where_the_core_placed_it(slurm_service, access):
    open_service, _ = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    job_id = submit(
        service,
        user,
        ["bash", "-c", "sleep 1; echo hello from Slurm job $SLURM_JOB_ID"],
        gpus=3,
        gpu_type=["A100"],
    )
    slurm_id = slurm_id_of(service, user, job_id)
    job = service.wait_for(job_id, user, {"completed", "failed"}, timeout=60)
    assert job["state"] == "completed", job
    assert job["pool"] == "hpc/small" and job["exit_code"] == 0
    record = slurm_job(slurm_id)
    assert record["JobState"] == "COMPLETED"
    assert record["Partition"] == "debug" and record["Account"] == "research"
    assert record["TresPerNode"] == "gres:gpu:3"
    assert record["JobName"] == f"ark-{job_id}"
    if "rest_url" not in access:  # slurmrestd 22.05 ignores requeue=false (see slurm_rest.py)
        assert record["Requeue"] == "0"
    logs = service.client.get(f"/v1/jobs/{job_id}/logs", headers=user).text
    assert f"hello from Slurm job {slurm_id}" in logs
    assert any(f"Slurm job {slurm_id}: RUNNING" in e for e in events_of(service, user, job_id))


def test_a_failing_job_is_failed_with_its_exit_code(slurm_service):
    open_service, _ = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    job_id = submit(service, user, ["bash", "-c", "echo broken >&2; exit 7"])
    job = service.wait_for(job_id, user, {"completed", "failed"}, timeout=60)
    assert (job["state"], job["exit_code"]) == ("failed", 7)
    assert "FAILED" in job["reason"] and "exit 7" in job["reason"]
    logs = service.client.get(f"/v1/jobs/{job_id}/logs?stream=stderr", headers=user).text
    assert "broken" in logs


def test_cancelling_through_arkwright_cancels_in_slurm(slurm_service):
    open_service, _ = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    job_id = submit(service, user, ["sleep", "300"])
    slurm_id = slurm_id_of(service, user, job_id)
    wait_slurm_state(slurm_id, "RUNNING")
    assert service.client.post(f"/v1/jobs/{job_id}/cancel", headers=user).status_code == 200
    wait_slurm_state(slurm_id, "CANCELLED")
    assert service.wait_for(job_id, user, {"cancelled"})["state"] == "cancelled"


def test_a_node_daemon_killed_mid_job_requeues_the_job_and_it_runs_again(slurm_service, tmp_path):
    open_service, _ = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    marker = tmp_path / "first-attempt-ran"
    # The first attempt sleeps (and dies with its node); the second finishes at once.
    script = f"if [ -e {marker} ]; then echo second attempt; else touch {marker}; sleep 300; fi"
    job_id = submit(service, user, ["bash", "-c", script])
    first = slurm_id_of(service, user, job_id)
    deadline = time.monotonic() + 30
    while not marker.exists():  # running on the node, not only allocated by slurmctld
        assert time.monotonic() < deadline, "the first attempt never started"
        time.sleep(0.1)
    cluster("kill-slurmd")
    try:
        # Slurm ends it NODE_FAIL (sbatch --no-requeue) or requeues it by itself
        # (slurmrestd ignores requeue=false); either way Arkwright takes it back.
        deadline = time.monotonic() + 60
        while not any("requeued" in e for e in events_of(service, user, job_id)):
            assert time.monotonic() < deadline, events_of(service, user, job_id)
            time.sleep(0.1)
    finally:
        cluster("start-slurmd")
        cluster("resume")
    job = service.wait_for(job_id, user, {"completed", "failed"}, timeout=90)
    # Two runs at least; starts the site refused while its node was down count as tries.
    assert job["state"] == "completed" and job["attempts"] >= 2, job
    assert job["slurm_job_id"] != first
    assert any(
        "its node failed" in e or "requeued by itself" in e
        for e in events_of(service, user, job_id)
    )


def test_slurmctld_restarting_loses_nothing(slurm_service):
    open_service, _ = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    running = submit(service, user, ["sleep", "6"])
    slurm_id = slurm_id_of(service, user, running)
    wait_slurm_state(slurm_id, "RUNNING")
    cluster("stop-ctld")
    try:
        # Submitted while the controller is away: Arkwright keeps it queued, says why.
        waiting = submit(service, user, ["bash", "-c", "echo late"])
        deadline = time.monotonic() + 60
        while (
            "not reachable"
            not in service.client.get(f"/v1/jobs/{waiting}", headers=user).json()["reason"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert service.client.get(f"/v1/jobs/{running}", headers=user).json()["state"] == (
            "running"
        )
    finally:
        cluster("start-ctld")
    for job_id in (running, waiting):
        job = service.wait_for(job_id, user, {"completed", "failed"}, timeout=90)
        assert job["state"] == "completed", job
    assert slurm_job(slurm_id)["JobState"] == "COMPLETED"
    assert any("controller not answering" in e for e in events_of(service, user, running))


def test_an_arkwright_restart_adopts_its_slurm_jobs_and_requeues_the_unknown(slurm_service):
    open_service, close = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    # Jobs the controller knows before this test's (by id, not by id order: a controller
    # restarted without its state, as the fault tests do, numbers from 1 again).
    earlier = set(slurm("squeue", "-h", "-t", "all", "-o", "%i").split())
    kept = submit(service, user, ["sleep", "4"])
    forgotten = submit(service, user, ["sleep", "4"])
    kept_id = slurm_id_of(service, user, kept)
    forgotten_id = slurm_id_of(service, user, forgotten)
    wait_slurm_state(kept_id, "RUNNING")
    close(service)
    # While Arkwright is down, Slurm forgets one job entirely (as after a controller
    # state loss); its own batch script never got to write an exit record.
    slurm("scancel", forgotten_id)
    wait_slurm_state(forgotten_id, "CANCELLED")
    with service.control.sessions() as session, session.begin():
        handle = dict(session.get(JobRow, forgotten).handle)
        handle["slurm_job_id"] = "999999"
        session.execute(update(JobRow).where(JobRow.id == forgotten).values(handle=handle))
    service = open_service()
    job = service.wait_for(kept, user, {"completed", "failed"}, timeout=60)
    assert job["state"] == "completed" and job["slurm_job_id"] == kept_id
    assert "found running after restart" in " ".join(events_of(service, user, kept))
    job = service.wait_for(forgotten, user, {"completed", "failed"}, timeout=60)
    assert job["state"] == "completed" and job["attempts"] == 2, job
    assert any("no longer knows job 999999" in e for e in events_of(service, user, forgotten))
    ids = slurm("squeue", "-h", "-t", "all", f"--name=ark-{kept}", "-o", "%i").split()
    assert [i for i in ids if i not in earlier] == [kept_id]  # adopted, never resubmitted


def test_a_submission_whose_handle_was_never_recorded_is_found_not_repeated(tmp_path, access):
    fleet = load_fleet(fleet_file_for(tmp_path, access))
    backend = SlurmBackend(fleet, "hpc", fleet.backend_settings["hpc"], tmp_path / "runs")
    request = request_for(fleet, gpus=1, attempt=3)
    request = type(request)(request.job, fleet.pools[0], ((0, 1),), 3, ["sleep", "30"], {})
    handle = backend.start(request)
    try:
        # A fresh backend (as after a crash between sbatch and the database write).
        again = SlurmBackend(fleet, "hpc", fleet.backend_settings["hpc"], tmp_path / "runs")
        found = again.recover(request.job.job_id, None, 3, time.time())
        assert found["slurm_job_id"] == handle["slurm_job_id"]
        assert again.recover(request.job.job_id, None, 4, time.time()) is None
    finally:
        slurm("scancel", handle["slurm_job_id"])


@pytest.mark.skipif(
    not os.environ.get("ARKWRIGHT_TEST_SLURM_SACCT"),
    reason="Slurm accounting: slurmdbd is not running, so sacct has nothing to say",
)
@pytest.mark.parametrize("access", ["commands"], indirect=True)  # sacct is a command
def test_a_job_the_controller_forgot_is_settled_from_accounting(slurm_service):
    open_service, close = slurm_service
    service = open_service()
    user = service.user("ada", "research")
    submitted = time.time()
    job_id = submit(service, user, ["bash", "-c", "sleep 2; exit 5"])
    slurm_id = slurm_id_of(service, user, job_id)
    close(service)  # Arkwright is away while the job ends...
    wait_slurm_state(slurm_id, "FAILED")
    run_dir = next((service.config.data_dir.parent / "runs" / job_id).glob("attempt-*"))
    (run_dir / "exit.json").unlink()  # ...and only accounting can say how it ended
    # slurmctld tells slurmdbd of the end after the fact, from a queue kept with its job
    # state: let the record arrive before that state is thrown away, as on a real site
    # (what the backend does while accounting lags is pinned in test_slurm_backend.py).
    wait_accounted(slurm_id, "FAILED", submitted)
    cluster("forget-jobs")  # ...and the controller loses its job state
    asked = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", slurm_id],
        capture_output=True,
        text=True,
        env={**os.environ, "SLURM_CONF": CONF},
    )
    assert "Invalid job id" in asked.stderr  # the controller no longer knows it
    service = open_service()
    job = service.wait_for(job_id, user, {"completed", "failed", "pending"}, timeout=30)
    told = (job["reason"], events_of(service, user, job_id))
    assert (job["state"], job["exit_code"], job["attempts"]) == ("failed", 5, 1), told
    assert "from sacct" in job["reason"]

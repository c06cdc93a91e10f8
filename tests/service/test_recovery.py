"""Nothing lost: restarts, crashes, and runs that vanish."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from arkwright.service.app import create_app
from arkwright.service.db import JobRow
from arkwright.service.harness import free_port, start_server
from arkwright.service.server import bootstrap_admin
from tests.service.conftest import Service, start_service


def _service(db_url, data_dir, token) -> tuple[TestClient, Service]:
    config, control = start_service(db_url, data_dir)
    client = TestClient(create_app(control))
    client.__enter__()
    return client, Service(client, control, {"Authorization": f"Bearer {token}"}, config)


def _crash(client: TestClient, service: Service) -> None:
    """Stop the control loop and drop everything in memory, cancelling nothing."""
    service.control.stop()
    client.__exit__(None, None, None)


def attempts_on_disk(data_dir: Path, job_id: str) -> list[str]:
    return sorted(p.name for p in (data_dir / "runs" / job_id).glob("attempt-*"))


def test_running_process_is_found_again_after_restart(db_url, tmp_path):
    token = bootstrap_admin(db_url)
    data = tmp_path / "data"
    client, service = _service(db_url, data, token)
    alice = service.user("alice", "research")
    job_id = client.post(
        "/v1/jobs",
        headers=alice,
        json={
            "gpus": 2,
            "time": "5m",
            "sites": ["workstation"],
            "command": ["sh", "-c", "sleep 2; echo done"],
        },
    ).json()["id"]
    service.wait_for(job_id, alice, {"running"})
    _crash(client, service)

    client, service = _service(db_url, data, token)
    assert service.control.scheduler.busy_gpus(0) == 2  # its GPUs stay taken while it runs
    job = service.wait_for(job_id, alice, {"completed", "failed"})
    assert job["state"] == "completed" and job["exit_code"] == 0
    assert attempts_on_disk(data, job_id) == ["attempt-1"]  # it never ran twice
    events = [e["kind"] for e in client.get(f"/v1/jobs/{job_id}/events", headers=alice).json()]
    assert "adopted" in events
    _crash(client, service)


def test_start_recorded_but_never_carried_out_is_requeued(db_url, tmp_path):
    token = bootstrap_admin(db_url)
    data = tmp_path / "data"
    client, service = _service(db_url, data, token)
    alice = service.user("alice", "research")
    service.control.set_pool_cordoned("workstation/gpus", True, "hold", "test")
    job_id = client.post(
        "/v1/jobs",
        headers=alice,
        json={"gpus": 1, "time": "5m", "sites": ["workstation"], "command": ["true"]},
    ).json()["id"]
    _crash(client, service)
    # As if the server died between committing 'starting' and launching the run.
    with service.control.sessions() as session, session.begin():
        row = session.get(JobRow, job_id)
        row.state, row.pool, row.allocation, row.attempts = (
            "starting",
            "workstation/gpus",
            [[0, 1]],
            1,
        )
    service.control.set_pool_cordoned("workstation/gpus", False, "", "test")

    client, service = _service(db_url, data, token)
    job = service.wait_for(job_id, alice, {"completed"})
    assert job["attempts"] == 2
    assert attempts_on_disk(data, job_id) == ["attempt-2"]
    _crash(client, service)


def test_a_run_killed_outright_is_requeued_and_runs_again(service, tmp_path):
    alice = service.user("alice", "research")
    # Somewhere the job's own account may write (its run directory is new on each
    # attempt, and the directories above it are not the job's).
    marker = Path(f"/tmp/arkt-marker-{uuid.uuid4().hex}")
    job_id = service.client.post(
        "/v1/jobs",
        headers=alice,
        json={
            "gpus": 1,
            "time": "5m",
            "sites": ["workstation"],
            "command": [
                "sh",
                "-c",
                f"m={marker}; if [ -e $m ]; then exit 0; fi; touch $m; sleep 60",
            ],
        },
    ).json()["id"]
    try:
        service.wait_for(job_id, alice, {"running"})
        run_dir = service.config.data_dir / "runs" / job_id / "attempt-1"
        deadline = time.monotonic() + 30
        # Killed only once the first attempt has left its mark (else the second would
        # find none and sleep too).
        while not ((run_dir / "runner.pid").exists() and marker.exists()):
            assert time.monotonic() < deadline, "the first attempt never started its command"
            time.sleep(0.05)
        pid = int((run_dir / "runner.pid").read_text())
        os.killpg(pid, signal.SIGKILL)  # the runner's session: runner and command both die
        job = service.wait_for(job_id, alice, {"completed"}, timeout=30)
    finally:
        marker.unlink(missing_ok=True)
    assert job["attempts"] == 2
    events = [
        e["kind"] for e in service.client.get(f"/v1/jobs/{job_id}/events", headers=alice).json()
    ]
    assert "requeued" in events


def test_sigkill_mid_flight_loses_no_accepted_job(db_url, tmp_path):
    token = bootstrap_admin(db_url)
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {token}"}
    server = start_server(db_url, data, port, "--sim-speedup", "600")
    try:
        accepted = []
        for n in range(12):
            body = (
                {
                    "tenant": "research",
                    "gpus": 1,
                    "time": "5m",
                    "sites": ["workstation"],
                    "command": ["sh", "-c", "sleep 1.5"],
                }
                if n % 3 == 0
                else {"tenant": "nhs", "gpus": 8, "time": "20m", "sites": ["remote-uk"]}
            )
            response = httpx.post(f"{url}/v1/jobs", json=body, headers=admin, timeout=10)
            assert response.status_code == 201
            accepted.append(response.json()["id"])
        time.sleep(0.3)
        os.killpg(server.pid, signal.SIGKILL)  # mid-flight: runs in progress, queue busy
        server.wait()
        server = start_server(db_url, data, port, "--sim-speedup", "600")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = httpx.get(f"{url}/v1/jobs?limit=100", headers=admin).json()["items"]
            if {j["state"] for j in jobs} == {"completed"}:
                break
            time.sleep(0.2)
        assert sorted(j["id"] for j in jobs) == sorted(accepted)
        assert {j["state"] for j in jobs} == {"completed"}, [(j["id"], j["state"]) for j in jobs]
        for job in jobs:
            if job["pool"] == "workstation/gpus":  # each local run happened exactly once
                runs = attempts_on_disk(data, job["id"])
                assert (
                    len(runs) == 1 and (data / "runs" / job["id"] / runs[0] / "exit.json").exists()
                )
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)

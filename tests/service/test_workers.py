"""`arkwright serve --workers N`: several processes serve the API on one port; one leads.

Real processes on loopback (SQLite and PostgreSQL, the `local` fleet's simulated sites):
every process answers, submissions taken by any of them are scheduled by the leader and
complete, no job number is given twice, and a worker never outlives its parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from arkwright.service.harness import free_port, start_server
from arkwright.service.server import bootstrap_admin


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().split(")")[1].split()[0] != "Z"


@pytest.fixture
def served(tmp_path, db_url):
    db = db_url
    token = bootstrap_admin(db)
    port = free_port()
    process = start_server(db, tmp_path / "data", port, "--workers", "3")
    yield process, f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_every_process_serves_and_the_leader_runs_what_any_of_them_took(served):
    process, url, admin = served
    workers = _children(process.pid)
    assert len(workers) == 2
    roles: set[str] = set()
    ids: list[str] = []
    # A new connection per request: the kernel hands each to one of the processes.
    with httpx.Client(base_url=url, headers=admin, timeout=30) as client:
        for n in range(60):
            fresh = {"Connection": "close"}
            roles.add(client.get("/healthz", headers=fresh).json()["role"])
            body = {"tenant": "research", "gpus": 1, "time": "1h", "expected_runtime": "10m"}
            response = client.post(
                "/v1/jobs", json={**body, "sites": ["remote-uk"], "name": f"w{n}"}, headers=fresh
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        assert roles == {"leader", "api"}
        assert len(set(ids)) == len(ids)  # one counter in the database, whoever stored them
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            page = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
            states = {j["id"]: j["state"] for j in page if j["id"] in ids}
            if len(states) == len(ids) and set(states.values()) == {"completed"}:
                break
            time.sleep(0.3)
        assert set(states.values()) == {"completed"}, states


def test_workers_exit_when_their_parent_is_killed(served):
    process, _url, _admin = served
    workers = _children(process.pid)
    assert workers and all(_alive(pid) for pid in workers)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)

"""High availability: two `arkwright serve` processes on one PostgreSQL database.

Both take submissions; one leads. The leader is killed outright (SIGKILL) in the middle
of the load, three times; each time the standby must lead within 10 s, adopt what was
running, and lose nothing: every acknowledged job is stored and completes, and no local
job runs its command twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from arkwright.service.db import LeadershipRow, make_engine, session_factory
from arkwright.service.harness import free_port, start_server, wipe_database
from arkwright.service.server import bootstrap_admin

TAKEOVER_S = 10.0
KILLS = 3


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("ARKWRIGHT_TEST_PG_URL")
    if not url:
        reason = os.environ.get("ARKWRIGHT_TEST_PG_SKIP", "ARKWRIGHT_TEST_PG_URL is not set")
        pytest.skip(f"PostgreSQL: {reason} (HA needs PostgreSQL; SQLite is one replica)")
    return wipe_database(url)


def leader(sessions) -> tuple[int, int]:
    """(epoch, pid of the leading process) from the leadership row."""
    with sessions() as session:
        row = session.scalar(select(LeadershipRow))
        pid = int(row.holder.split(":")[1]) if row.holder else -1
        return row.epoch, pid


class Load:
    """Submits to every server in turn from a few threads; keeps what was acknowledged."""

    def __init__(self, ports: list[int], admin: dict[str, str]) -> None:
        self.ports, self.admin = ports, admin
        self.acknowledged: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(4)]

    def _run(self, n: int) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            port = self.ports[(n + count) % len(self.ports)]
            local = count % 4 == 0
            body = (
                {
                    "tenant": "research",
                    "gpus": 1,
                    "time": "5m",
                    "sites": ["workstation"],
                    "command": ["sh", "-c", "sleep 0.3"],
                }
                if local
                else {"tenant": "nhs", "gpus": 8, "time": "10m", "sites": ["remote-uk"]}
            )
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/jobs", json=body, headers=self.admin, timeout=20
                )
            except httpx.HTTPError:
                time.sleep(0.05)  # that server is down: the next try goes to the other
                continue
            if response.status_code == 201:
                with self.lock:
                    self.acknowledged[response.json()["id"]] = body
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_the_standby_takes_over_from_a_killed_leader_and_nothing_is_lost(pg_url, tmp_path):
    token = bootstrap_admin(pg_url)
    admin = {"Authorization": f"Bearer {token}"}
    data = tmp_path / "data"  # shared: the new leader adopts the runs the old one started
    ports = [free_port(), free_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    extra = ("--sim-speedup", "600")
    servers = {
        p: start_server(pg_url, data, p, *extra, log=lg) for p, lg in zip(ports, logs, strict=True)
    }
    sessions = session_factory(make_engine(pg_url))
    takeovers: list[float] = []
    try:
        with Load(ports, admin) as load:
            for _ in range(KILLS):
                time.sleep(1.5)  # let work pile up and start
                epoch, pid = leader(sessions)
                port = next(p for p, s in servers.items() if s.pid == pid)
                os.killpg(servers[port].pid, signal.SIGKILL)
                servers[port].wait(10)
                killed = time.monotonic()
                while leader(sessions)[0] == epoch:
                    assert time.monotonic() - killed < TAKEOVER_S, "no standby took over in 10 s"
                    time.sleep(0.05)
                takeovers.append(time.monotonic() - killed)
                new_pid = leader(sessions)[1]
                assert new_pid in {s.pid for s in servers.values()} and new_pid != pid
                servers[port] = start_server(pg_url, data, port, *extra, log=logs[0])
            time.sleep(1.0)
        acknowledged = dict(load.acknowledged)
        assert len(acknowledged) > 20, "the load hardly ran"
        url = f"http://127.0.0.1:{ports[0]}"
        deadline = time.monotonic() + 120
        while True:
            jobs = {
                j["id"]: j
                for j in httpx.get(f"{url}/v1/jobs?limit=1000", headers=admin, timeout=20).json()[
                    "items"
                ]
            }
            if set(acknowledged) <= set(jobs) and all(
                jobs[j]["state"] == "completed" for j in acknowledged
            ):
                break
            assert time.monotonic() < deadline, sorted(
                (j, jobs.get(j, {}).get("state"))
                for j in acknowledged
                if jobs.get(j, {}).get("state") != "completed"
            )[:10]
            time.sleep(0.2)
        for job_id, body in acknowledged.items():
            if body["sites"] == ["workstation"]:  # its command ran exactly once
                ran = [
                    d.name
                    for d in (data / "runs" / job_id).glob("attempt-*")
                    if (d / "exit.json").exists()
                ]
                assert len(ran) == 1, (job_id, ran)
    finally:
        for server in servers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
    assert len(takeovers) == KILLS and max(takeovers) < TAKEOVER_S, takeovers
    print(f"{len(acknowledged)} jobs acknowledged; takeovers in {takeovers} s")

"""The privileged launcher's dispatcher, over a real socketpair, as a hostile service would
talk to it: every refused message is answered with an error and starts nothing."""

from __future__ import annotations

import json
import os
import pickle
import pwd
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from arkwright.backends import accounts, launcher_client, launcher_wire
from arkwright.backends.base import BackendUnavailable, Ending, RunRequest, StartRefused
from arkwright.backends.launcher import Dispatcher, serve_channel
from arkwright.backends.launcher_client import LauncherClient
from arkwright.backends.local import LocalBackend
from arkwright.core.job import Job
from tests.security.accounts import IS_ROOT, ensure_account, local_fleet_with_identity

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="the launcher keeps root: run as root")


@dataclass
class Rig:
    sock: socket.socket  # the service's end, spoken to raw
    backend: LocalBackend
    fleet: object
    thread: threading.Thread

    def call(self, message: dict | bytes) -> dict:
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        return launcher_wire.parse(launcher_wire.recv_frame(self.sock))

    def nothing_started(self) -> None:
        assert not any(self.backend.runs_dir.iterdir()), list(self.backend.runs_dir.iterdir())
        assert not self.backend._tracked


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    fleet = local_fleet_with_identity()
    backend = LocalBackend(
        fleet, tmp_path / "records" / "runs", run_root=tmp_path / "runs", confinement=None
    )
    ours, theirs = socket.socketpair()
    ours.settimeout(20)
    thread = threading.Thread(target=serve_channel, args=(theirs, Dispatcher(backend)))
    thread.start()
    try:
        yield Rig(ours, backend, fleet, thread)
    finally:
        ours.close()
        thread.join(timeout=10)
        theirs.close()
    assert not thread.is_alive(), "the launcher must end when the service closes the channel"


def request(fleet, owner: str = "alice", job_id: str = "j-0000001", **extra) -> RunRequest:
    pool = next(p for p in fleet.pools if p.site.backend == "local")
    job = Job(job_id, "research", 1, 30.0, 0.0)
    return RunRequest(job, pool, ((0, 1),), 1, ["sh", "-c", "id -u"], owner=owner, **extra)


def start_message(fleet, **changes) -> dict:
    data = launcher_wire.request_to_wire(request(fleet))
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = data
        for key in parents:
            target = target[key]
        target[last] = value
    return {"op": "start", "id": 7, "request": data}


def test_an_unknown_op_is_refused(rig: Rig):
    answer = rig.call({"op": "exec", "id": 3, "argv": ["sh"]})
    assert answer == {"ok": False, "error": "invalid", "id": 3, "reason": answer["reason"]}
    assert "unknown operation" in answer["reason"]
    rig.nothing_started()


def test_a_pickle_frame_is_refused_and_never_unpickled(rig: Rig):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch /tmp/arkt-launcher-pwned",))

    answer = rig.call(pickle.dumps(Boom()))
    assert answer["ok"] is False and answer["reason"] == "message: not JSON"
    assert not Path("/tmp/arkt-launcher-pwned").exists()
    rig.nothing_started()


def test_an_oversized_frame_is_refused_and_the_channel_stays_in_step(rig: Rig):
    size = launcher_wire.MAX_FRAME + 1
    rig.sock.sendall(struct.pack(">I", size))
    rig.sock.sendall(b"x" * size)
    answer = launcher_wire.parse(launcher_wire.recv_frame(rig.sock))
    assert answer["ok"] is False and "is over" in answer["reason"]
    assert rig.call({"op": "hello", "id": 2})["ok"] is True  # still in step
    rig.nothing_started()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"job.job_id": "../../etc"}, "job.job_id"),
        ({"job.job_id": "j-1/../../x"}, "job.job_id"),
        ({"pool.name": "workstation/nope"}, "pool"),
        ({"pool.index": 999}, "pool.index"),
        ({"allocation": [[0, 99]]}, "allocation[0].gpus"),
        ({"attempt": "1"}, "attempt"),
        ({"command": "sh -c 'id'"}, "command"),
        ({"env": {"A": 1}}, "env.A"),
        ({"job.speed": float("inf")}, "job.speed"),
    ],
)
def test_a_start_with_a_bad_field_is_refused_naming_it(rig: Rig, changes: dict, field: str):
    answer = rig.call(start_message(rig.fleet, **changes))
    assert answer["ok"] is False and answer["error"] == "invalid", answer
    assert answer["reason"].startswith(field), answer
    rig.nothing_started()


def test_an_owner_that_maps_to_uid_0_is_refused(rig: Rig, monkeypatch):
    real = pwd.getpwnam

    def getpwnam(name: str):
        if name == "arkt-research-mallory":  # an alias of root the site's mapping reaches
            return pwd.struct_passwd((name, "x", 0, 0, "", "/", "/bin/sh"))
        return real(name)

    monkeypatch.setattr(accounts.pwd, "getpwnam", getpwnam)
    answer = rig.call(start_message(rig.fleet, owner="mallory"))
    assert answer["ok"] is False and answer["error"] == "refused", answer
    assert "uid or gid 0" in answer["reason"]
    rig.nothing_started()


@pytest.mark.parametrize(
    "message",
    [
        {"op": "open_log", "job_id": "../runs", "attempt": 1, "stream": "stdout"},
        {"op": "open_log", "job_id": "j-1", "attempt": 1, "stream": "../../etc/shadow"},
        {"op": "cancel", "job_id": "j-1/../.."},
        {"op": "recover", "job_id": "j-1", "attempt": 1, "now": 1.0, "handle": {"pool": "x"}},
        {
            "op": "recover",
            "job_id": "j-1",
            "attempt": 1,
            "now": 1.0,
            "handle": {"pool": "workstation/gpus", "allocation": [[0, 1]], "cgroup": "../.."},
        },
        {"op": "poll", "now": "soon"},
    ],
)
def test_other_ops_check_their_fields(rig: Rig, message: dict):
    answer = rig.call({**message, "id": 5})
    assert answer["ok"] is False and answer["error"] == "invalid", answer
    rig.nothing_started()


def test_a_good_start_runs_as_the_mapped_account_and_its_log_comes_back_as_a_descriptor(
    rig: Rig,
):
    uid = ensure_account("arkt-research-alice")
    client = LauncherClient(rig.sock)
    assert client.run_root("workstation") == rig.backend.run_root("workstation")
    handle = client.start(request(rig.fleet))
    assert handle["uid"] == uid
    deadline = time.monotonic() + 30
    outcomes = []
    while not outcomes and time.monotonic() < deadline:
        outcomes = client.poll(time.time())
        time.sleep(0.05)
    assert [o.ending for o in outcomes] == [Ending.COMPLETED]
    log = client.open_log("j-0000001", handle, "stdout")
    assert log is not None
    with log:
        assert log.read().decode().split() == [str(uid)]
    # A handle pointing elsewhere changes nothing: the launcher reads its own record.
    forged = {**handle, "dir": "/etc", "work_dir": "/etc", "uid": 0, "logs": {"stdout": "shadow"}}
    with client.open_log("j-0000001", forged, "stdout") as again:
        assert again.read().decode().split() == [str(uid)]
    # The service's own account is never a job's: were alice's the service's, refused.
    rig.backend.accounts["workstation"].service_uid = uid
    with pytest.raises(StartRefused, match="the service's own account"):
        client.start(request(rig.fleet, job_id="j-0000002"))


def _answer_hello_then(theirs: socket.socket, backend: LocalBackend, then: str) -> None:
    """A launcher that answers `hello`, then dies (`close`) or hangs (`silent`)."""
    dispatcher = Dispatcher(backend)
    answer, _ = dispatcher.handle(launcher_wire.recv_frame(theirs))
    launcher_wire.send_frame(theirs, answer)
    if then == "close":
        theirs.close()


def _client_of_a_failing_launcher(tmp_path: Path, then: str):
    """(fleet, a client that got its hello, both ends of its channel)."""
    fleet = local_fleet_with_identity()
    backend = LocalBackend(fleet, tmp_path / "runs", run_root=tmp_path / "r", confinement=None)
    ours, theirs = socket.socketpair()
    thread = threading.Thread(target=_answer_hello_then, args=(theirs, backend, then))
    thread.start()
    client = LauncherClient(ours)
    thread.join(timeout=10)
    return fleet, client, ours, theirs


def test_a_dead_launcher_makes_starts_unavailable_and_polls_quiet(tmp_path: Path, caplog):
    fleet, client, _, _ = _client_of_a_failing_launcher(tmp_path, "close")
    with pytest.raises(BackendUnavailable, match="launcher is gone"):
        client.start(request(fleet))
    assert "privileged launcher is gone" in caplog.text  # said in the service's log
    assert client.poll(time.time()) == []
    with pytest.raises(BackendUnavailable):
        client.start(request(fleet))


def test_a_launcher_that_does_not_answer_times_out(tmp_path: Path, monkeypatch):
    fleet, client, ours, theirs = _client_of_a_failing_launcher(tmp_path, "silent")
    monkeypatch.setattr(launcher_client, "START_TIMEOUT_S", 0.3)
    with pytest.raises(BackendUnavailable, match="did not answer start"):
        client.start(request(fleet))
    theirs.close()
    ours.close()


def test_an_api_workers_read_only_channel_opens_logs_and_refuses_everything_else(
    rig: Rig, tmp_path: Path
):
    """`serve --workers`: a worker's channel is answered read-only — it may read the log
    of a run the launcher started, and may neither start, cancel, poll nor recover."""
    uid = ensure_account("arkt-research-alice")
    client = LauncherClient(rig.sock)
    handle = client.start(request(rig.fleet))
    deadline = time.monotonic() + 30
    while not client.poll(time.time()) and time.monotonic() < deadline:
        time.sleep(0.05)
    ours, theirs = socket.socketpair()
    ours.settimeout(20)
    reader = threading.Thread(
        target=serve_channel, args=(theirs, Dispatcher(rig.backend, read_only=True))
    )
    reader.start()
    try:
        worker = Rig(ours, rig.backend, rig.fleet, reader)
        for message in (
            start_message(rig.fleet, **{"job.job_id": "j-0000009"}),
            {"op": "cancel", "id": 8, "job_id": "j-0000001"},
            {"op": "poll", "id": 9, "now": time.time()},
            {"op": "recover", "id": 10, "job_id": "j-0000001", "attempt": 1, "now": 1.0},
        ):
            answer = worker.call(message)
            assert answer["ok"] is False and answer["error"] == "invalid", answer
            assert "unknown operation" in answer["reason"]
        assert not (rig.backend.runs_dir / "j-0000009").exists()
        with LauncherClient(ours).open_log("j-0000001", handle, "stdout") as log:
            assert log.read().decode().split() == [str(uid)]
    finally:
        ours.close()
        reader.join(timeout=10)
        theirs.close()

"""A local start that fails gives its GPUs back; a memory hog is confined; the service's
files are private; `serve` will not run as root unless told."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from arkwright.backends import confine
from arkwright.backends.base import Ending, RunRequest
from arkwright.backends.job_env import BadRunRequest
from arkwright.backends.local import LocalBackend
from arkwright.backends.privilege import harden_data_dir, say_root_mode
from tests.conftest import make_job
from tests.security.accounts import local_fleet_with_identity

FLEET = local_fleet_with_identity()
POOL = next(p for p in FLEET.pools if p.site.backend == "local")  # 4 GPU slots


def run_request(job_id: str, gpus: int = 1, command=("true",), env=None) -> RunRequest:
    job = make_job(job_id, tenant="research", gpus=gpus, duration=60)
    return RunRequest(
        job=job,
        pool=POOL,
        allocation=((0, gpus),),
        attempt=1,
        command=list(command),
        env=dict(env or {}),
        owner="alice",
    )


def wait_outcome(backend: LocalBackend, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outcomes = backend.poll(time.time())
        if outcomes:
            return outcomes
        time.sleep(0.05)
    raise AssertionError("no outcome")


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        (("true",), {"A=B": "x"}, "not a valid variable name"),
        (("true",), {"OK": "a\0b"}, "env.OK: contains a NUL"),
        (("echo", "a\0b"), {}, r"command\[1\]: contains a NUL"),
        (("echo", "x" * (128 * 1024 + 1)), {}, r"command\[1\]: .* bytes is over"),
        ((), {}, "no command"),
    ],
)
def test_a_refused_start_takes_no_gpu_slots(tmp_path, command, env, message):
    backend = LocalBackend(FLEET, tmp_path / "data" / "runs", grace_s=0.3)
    with pytest.raises(BadRunRequest, match=message):
        backend.start(run_request("bad", gpus=POOL.gpus_per_node, command=command, env=env))
    backend.start(run_request("good", gpus=POOL.gpus_per_node))  # every slot is still free
    [outcome] = wait_outcome(backend)
    assert outcome.ending is Ending.COMPLETED, outcome


def test_a_start_that_fails_after_taking_slots_gives_them_back(tmp_path, monkeypatch):
    backend = LocalBackend(FLEET, tmp_path / "data" / "runs", grace_s=0.3)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(backend, "_make_work_dir", broken)
        with pytest.raises(OSError, match="disk full"):
            backend.start(run_request("first", gpus=POOL.gpus_per_node))
    backend.start(run_request("second", gpus=POOL.gpus_per_node))
    [outcome] = wait_outcome(backend)
    assert outcome.job_id == "second" and outcome.ending is Ending.COMPLETED, outcome


def test_run_directories_are_absolute_outside_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backend = LocalBackend(FLEET, Path("data/runs"), grace_s=0.3)  # relative, as a newcomer
    handle = backend.start(run_request("rel", command=("sh", "-c", "pwd")))
    [outcome] = wait_outcome(backend)
    assert outcome.ending is Ending.COMPLETED, outcome
    work = Path(handle["work_dir"])
    assert work.is_absolute() and Path(handle["dir"]).is_absolute()
    assert work.parent.parent == tmp_path / "data-runs"
    assert Path(handle["dir"], "stdout.log").read_text().strip() == str(work)
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(handle["dir"]).stat().st_mode) == 0o700


def test_a_memory_hog_is_confined(tmp_path):
    confinement, reason = confine.probe()
    if confinement is None:
        pytest.skip(f"cgroup v2 confinement unavailable here: {reason}")
    limit = 64 << 20
    backend = LocalBackend(
        FLEET,
        tmp_path / "data" / "runs",
        grace_s=0.3,
        limits_per_gpu=confine.Limits(memory_bytes=limit, cpus=1.0),
        confinement=confinement,
    )
    hog = "b = []\nwhile True: b.append(bytearray(16 << 20))"
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    # The hog is a grandchild: what the job forks is confined with it.
    backend.start(run_request("hog", command=("sh", "-c", f"{python} -c '{hog}'; exit $?")))
    [outcome] = wait_outcome(backend, 60)
    assert outcome.ending is Ending.FAILED, outcome
    assert outcome.exit_code not in (0, None), outcome


def test_harden_data_dir_makes_the_services_files_private():
    base = Path(tempfile.mkdtemp(prefix="arkt-harden-"))
    (base / "runs" / "j1").mkdir(parents=True)
    for name in ("arkwright.db", "runs/j1/request.json"):
        (base / name).write_text("secret")
        os.chmod(base / name, 0o644)
    os.chmod(base, 0o755)
    old_umask = os.umask(0o022)
    try:
        assert harden_data_dir(base) == base
        assert stat.S_IMODE(base.stat().st_mode) == 0o700
        assert stat.S_IMODE((base / "runs" / "j1").stat().st_mode) == 0o700
        for name in ("arkwright.db", "runs/j1/request.json"):
            assert stat.S_IMODE((base / name).stat().st_mode) == 0o600
        (base / "later.db").write_text("")  # files made after start-up are private too
        assert stat.S_IMODE((base / "later.db").stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_serve_says_when_it_stays_one_root_process(caplog):
    caplog.set_level("INFO", "arkwright.privilege")
    assert say_root_mode(True, euid=0) is True
    assert "--allow-root" in caplog.text
    assert say_root_mode(False, euid=0) is False  # it splits instead (test_serve_split)
    assert say_root_mode(True, euid=1000) is False


def test_confinement_writes_the_limits_a_run_is_given(tmp_path):
    """The files a run's cgroup gets (on a plain directory: the kernel is not needed to
    check what is written; the memory-hog test above checks the kernel enforces it)."""
    leaf = confine.Confinement(tmp_path).create("j1-1", confine.Limits(256 << 20, 1.5))
    assert (leaf / "memory.max").read_text() == str(256 << 20)
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (leaf / "cpu.max").read_text() == "150000 100000"
    share = confine.Limits(4 << 30, 8.0).scaled(1 / 4)
    assert share == confine.Limits(1 << 30, 2.0)

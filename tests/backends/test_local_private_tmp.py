"""Each local run sees its own /tmp and /var/tmp (as Slurm's job_container/tmpfs), made in
a mount namespace by the runner before it drops root; where that cannot be, the start-up
warnings say so and runs share the machine's /tmp (TMPDIR still points at their own)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkwright.backends import confine
from arkwright.backends.base import Ending, RunRequest
from arkwright.backends.local import LocalBackend
from arkwright.core.job import Job
from tests.security.accounts import IS_ROOT, ensure_account, local_fleet_with_identity

CAN, WHY = confine.probe_private_tmp() if IS_ROOT else (False, "not root")
pytestmark = pytest.mark.skipif(not CAN, reason=f"no private /tmp here: {WHY}")


@pytest.fixture
def run_root() -> Iterator[Path]:
    # Outside /tmp: a run directory below /tmp would be hidden by its own private /tmp.
    root = Path(tempfile.mkdtemp(prefix="arkt-ptmp-", dir="/var/lib"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(backend: LocalBackend, job_id: str, owner: str, script: str) -> str:
    fleet = backend.fleet
    pool = next(p for p in fleet.pools if p.site.backend == "local")
    job = Job(job_id, "research", 1, 30.0, 0.0)
    request = RunRequest(job, pool, ((0, 1),), 1, ["sh", "-c", script], owner=owner)
    handle = backend.start(request)
    deadline = time.monotonic() + 30
    outcomes = []
    while not outcomes and time.monotonic() < deadline:
        outcomes = backend.poll(time.time())
        time.sleep(0.05)
    assert [o.ending for o in outcomes] == [Ending.COMPLETED], outcomes
    return Path(handle["dir"], "stdout.log").read_text()


def test_each_run_has_its_own_tmp_and_leaves_nothing_in_the_machines(tmp_path, run_root):
    backend = LocalBackend(
        local_fleet_with_identity(), tmp_path / "runs", run_root=run_root, confinement=None
    )
    assert not any("/tmp" in w for w in backend.startup_warnings())
    alice = ensure_account("arkt-research-alice")
    name = f"arkt-ptmp-{uuid.uuid4().hex}"
    out = _run(
        backend,
        "j-1",
        "alice",
        f"echo secret > /tmp/{name}; echo x > /var/tmp/{name}; stat -c %u /tmp; ls -A /tmp",
    )
    owner, *listing = out.split()
    assert int(owner) == alice  # its /tmp is its own directory
    assert listing == [name]  # and holds nothing of the machine's
    assert not Path(f"/tmp/{name}").exists() and not Path(f"/var/tmp/{name}").exists()
    # Another tenant's run sees none of it.
    ensure_account("arkt-research-bob")
    script = f"ls -A /tmp | wc -l; if [ -e /tmp/{name} ]; then echo SEEN; else echo UNSEEN; fi"
    assert _run(backend, "j-2", "bob", script).split() == ["0", "UNSEEN"]


def test_run_directories_below_tmp_share_it_and_say_so(tmp_path):
    backend = LocalBackend(
        local_fleet_with_identity(), tmp_path / "runs", run_root=tmp_path / "r", confinement=None
    )
    said = " ".join(backend.startup_warnings())
    assert "share the machine's /tmp" in said and "run directories are under" in said

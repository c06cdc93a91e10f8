"""`arkwright serve` started as root: the service drops to its own account beside a
privileged launcher (backends/launcher_split.py). Real serve processes, as an operator
starts them; each property read from /proc and the filesystem, not from our own code."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
import pytest

from arkwright.service.harness import free_port
from arkwright.service.server import bootstrap_admin
from tests.security.accounts import IS_ROOT, TEST_TEMPLATE

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="serve drops root only when it has it")

SERVICE_USER = "arkt-service"
TERMINAL = {"completed", "failed", "cancelled", "rejected"}


def _ids(pid: int) -> dict[str, list[int]]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    found = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("Uid", "Gid", "Groups", "NoNewPrivs"):
            found[key] = [int(v) for v in rest.split()]
    return found


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:g} s")


@dataclass
class Site:
    base: Path
    data_dir: Path
    fleet_file: Path
    admin: dict[str, str]
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, *extra: str) -> subprocess.Popen:
        self.port = free_port()
        log = open(self.base / "serve.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arkwright",
                "serve",
                "--fleet",
                str(self.fleet_file),
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--service-user",
                SERVICE_USER,
                *extra,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=self.base,
        )
        log.close()

        def answers() -> bool:
            assert self.process.poll() is None, (self.base / "serve.log").read_text()
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(answers, 60, "serve answering /healthz")
        return self.process

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def api(self, method: str, path: str, headers=None, **kwargs) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers=headers or self.admin, timeout=30, **kwargs
        )

    def user(self, name: str, tenant: str) -> dict[str, str]:
        made = self.api("POST", "/v1/users", json={"name": name, "tenant": tenant, "role": "user"})
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['token']}"}

    def submit(self, headers: dict, command: list[str]) -> str:
        body = {"gpus": 1, "time": "5m", "sites": ["workstation"], "command": command}
        made = self.api("POST", "/v1/jobs", headers, json=body)
        assert made.status_code == 201, made.text
        return made.json()["id"]

    def job(self, job_id: str, headers: dict) -> dict:
        return self.api("GET", f"/v1/jobs/{job_id}", headers).json()

    def ended(self, job_id: str, headers: dict, timeout: float = 40) -> dict:
        return _wait_for(
            lambda: (job := self.job(job_id, headers))["state"] in TERMINAL and job,
            timeout,
            f"{job_id} ending",
        )

    def output(self, job_id: str, headers: dict) -> str:
        answer = self.api("GET", f"/v1/jobs/{job_id}/logs", headers)
        assert answer.status_code == 200, answer.text
        return answer.text


@pytest.fixture
def site() -> Iterator[Site]:
    # mkdtemp's 0700 folder: the service account cannot pass it until serve lets it.
    base = Path(tempfile.mkdtemp(prefix="arkt-split-", dir="/tmp"))
    fleet = resources.files("arkwright.fleets").joinpath("local.toml").read_text()
    identity = f'  [sites.identity]\n  template = "{TEST_TEMPLATE}"\n  create = true\n'
    fleet = fleet.replace("  [[sites.pools]]", identity + "  [[sites.pools]]", 1)
    (base / "fleet.toml").write_text(fleet)
    data_dir = base / "data"
    data_dir.mkdir(mode=0o700)
    token = bootstrap_admin(f"sqlite:///{data_dir / 'arkwright.db'}")  # as root, as a newcomer
    made = Site(base, data_dir, base / "fleet.toml", {"Authorization": f"Bearer {token}"})
    try:
        yield made
    finally:
        made.stop()
        subprocess.run(["rm", "-rf", str(base), f"{data_dir}-runs"], check=False, timeout=60)


def test_serve_as_root_drops_to_its_account_and_jobs_still_run_as_their_owners(site: Site):
    process = site.serve()
    service = pwd.getpwnam(SERVICE_USER)
    ids = _ids(process.pid)
    # real, effective, saved and filesystem ids: all the service account's, no groups.
    assert ids["Uid"] == [service.pw_uid] * 4, ids
    assert ids["Gid"] == [service.pw_gid] * 4, ids
    assert ids["Groups"] == []
    assert ids["NoNewPrivs"] == [1]  # no setuid binary gives root back
    assert service.pw_uid != 0
    # The launcher's records are root's, beside the data directory, not in it.
    records = Path(f"{site.data_dir}-launcher")
    assert records.stat().st_uid == 0 and stat.S_IMODE(records.stat().st_mode) == 0o700
    assert not (site.data_dir / "runs").exists()
    launchers = [pid for pid in _children(process.pid) if _ids(pid)["Uid"][0] == 0]
    assert len(launchers) == 1, "one privileged launcher, a child of the service"
    for path in (site.data_dir, *site.data_dir.rglob("*")):
        info = path.lstat()
        assert info.st_uid == service.pw_uid, path
        want = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        assert stat.S_IMODE(info.st_mode) == want, (path, oct(info.st_mode))

    alice = site.user("alice", "research")
    db = site.data_dir / "arkwright.db"
    job_id = site.submit(
        alice,
        ["sh", "-c", f'id -u; if cat "{db}" >/dev/null 2>&1; then echo READ; else echo DENIED; fi'],
    )
    job = site.ended(job_id, alice)
    assert job["state"] == "completed", job
    # Read back through the API: the launcher opened it and passed the descriptor over.
    uid, verdict = site.output(job_id, alice).split()
    assert int(uid) == pwd.getpwnam("arkt-research-alice").pw_uid
    assert int(uid) not in (0, service.pw_uid)
    assert verdict == "DENIED"


def test_a_killed_service_ends_its_launcher_and_the_next_serve_adopts_the_run(site: Site):
    process = site.serve()
    (launcher,) = [pid for pid in _children(process.pid) if _ids(pid)["Uid"][0] == 0]
    bob = site.user("bob", "research")
    job_id = site.submit(bob, ["sh", "-c", "sleep 25; echo survived"])
    records = Path(f"{site.data_dir}-launcher/runs/{job_id}/attempt-1")
    runner = _wait_for(
        lambda: (records / "runner.pid").exists() and int((records / "runner.pid").read_text()),
        30,
        "the runner's pid record",
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    _wait_for(lambda: not _alive(launcher), 15, "the launcher ending after the service's EOF")
    assert _alive(runner), "the run goes on without the service and its launcher"
    site.serve()
    job = site.job(job_id, bob)
    assert job["state"] == "running" and job["attempts"] == 1, job  # adopted, not requeued
    job = site.ended(job_id, bob, timeout=60)
    assert job["state"] == "completed" and job["attempts"] == 1, job
    assert "survived" in site.output(job_id, bob)


def test_allow_root_keeps_one_root_process(site: Site):
    process = site.serve("--allow-root")
    assert _ids(process.pid)["Uid"] == [0] * 4
    assert site.data_dir.stat().st_uid == 0


def test_a_split_that_cannot_be_made_exits_with_the_reason_and_changes_nothing(site: Site):
    # The example's Slurm site submits as each job's owner (runuser): the service must be
    # root itself, so serve refuses to drop rather than break that site.
    fleet = Path(__file__).parents[2] / "examples" / "slurm-site.toml"
    argv = [sys.executable, "-m", "arkwright", "serve", "--fleet", str(fleet)]
    argv += ["--data-dir", str(site.data_dir), "--port", str(free_port())]
    done = subprocess.run(
        [*argv, "--service-user", SERVICE_USER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())
    assert "cannot drop root" in said and "run_as" in said and "--allow-root" in said, said
    assert site.data_dir.stat().st_uid == 0
    assert (site.data_dir / "arkwright.db").stat().st_uid == 0


def test_grant_search_lets_one_account_pass_a_closed_directory_and_nothing_more(site: Site):
    from arkwright.backends.launcher_split import grant_search, service_account

    account = service_account(SERVICE_USER)
    os.chmod(site.base, 0o755)  # pytest's own tmp_path sits below a 0700 directory
    closed = site.base / "closed"
    (closed / "inner").mkdir(parents=True, mode=0o700)
    os.chmod(closed, 0o700)
    (closed / "inner").chmod(0o755)

    def as_service(*argv: str) -> int:
        return subprocess.run(
            argv,
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            check=False,
            capture_output=True,
            timeout=30,
        ).returncode

    assert as_service("test", "-x", str(closed / "inner")) != 0
    grant_search(closed, account.pw_uid)
    assert as_service("test", "-x", str(closed / "inner")) == 0  # it may pass
    assert as_service("ls", str(closed)) != 0  # but not list
    assert stat.S_IMODE(closed.stat().st_mode) & 0o007 == 0  # and no one else gained
    nobody = pwd.getpwnam("nobody")
    other = subprocess.run(
        ["test", "-x", str(closed / "inner")],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        check=False,
        timeout=30,
    )
    assert other.returncode != 0


def test_api_workers_beside_a_split_are_unprivileged_and_read_logs_read_only(site: Site):
    """`serve --workers 3` as root: every process serving the API is the service account;
    a worker reads a local job's log through its own channel to the launcher, which
    answers it only read-only operations."""
    process = site.serve("--workers", "3")
    service = pwd.getpwnam(SERVICE_USER)
    children = _children(process.pid)
    workers = [pid for pid in children if _ids(pid)["Uid"][0] != 0]
    assert len(workers) == 2 and len(children) == 3  # two workers and the launcher
    for pid in workers:
        assert _ids(pid)["Uid"] == [service.pw_uid] * 4
    carol = site.user("carol", "research")
    job_id = site.submit(carol, ["sh", "-c", "echo from-carol"])
    assert site.ended(job_id, carol)["state"] == "completed"
    # A new connection a request: the kernel hands them to all three processes.
    roles = set()
    for _ in range(30):
        roles.add(httpx.get(f"{site.url}/healthz", headers={"Connection": "close"}).json()["role"])
        assert "from-carol" in site.output(job_id, carol)
    assert roles == {"leader", "api"}

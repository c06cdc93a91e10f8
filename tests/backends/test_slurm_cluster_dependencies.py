"""Dependencies and array throttles on the real Slurm test cluster: the same chain and the
same throttled array, once submitted through Arkwright (API -> Slurm site) and once straight
to Slurm with sbatch, must behave alike.

Arkwright holds a dependent job or a throttled task itself and hands it to Slurm only once
it may start; sbatch hands Slurm the dependency or throttle and lets slurmctld hold it. What
is compared is what a user sees: each job writes its own start and end times into a file
(both kinds run as the submitting user, root, in this test's tmp_path), and the pending
reasons come from Slurm (`squeue %r`, `scontrol show job`) and from Arkwright's job record.

The cluster is shared: these tests restart nothing and cancel only their own jobs, by id.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arkwright.fleets import load_fleet
from arkwright.service.app import create_app
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control
from tests.backends.test_slurm_cluster import CONF, fleet_file_for, pytestmark, slurm_job
from tests.service.conftest import Service

__all__ = ["pytestmark"]  # the cluster's skip, shared with the other cluster files

WAIT_S = 90.0  # every wait is bounded by this
RUN_S = 3  # how long each job sleeps
NEVER = "DependencyNeverSatisfied"
THROTTLED = "JobArrayTaskLimit"


def slurm_env() -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": CONF or ""}


def stamped(stamps: Path, name: str, exit_code: int = 0) -> str:
    """A shell command that records its own start and end (epoch seconds, as written by
    the job itself on the node) under `stamps`, sleeps, and exits with `exit_code`.
    `name` may use $SLURM_JOB_ID (each array task is its own Slurm job, in both systems)."""
    return (
        f'd={stamps}; n="{name}"; date +%s.%N > "$d/$n.start"; sleep {RUN_S}; '
        f'date +%s.%N > "$d/$n.end"; exit {exit_code}'
    )


def intervals(stamps: Path) -> dict[str, tuple[float, float]]:
    """name -> (start, end) for every job that recorded both."""
    found = {}
    for start in stamps.glob("*.start"):
        end = start.with_suffix(".end")
        if end.exists():
            found[start.stem] = (float(start.read_text()), float(end.read_text()))
    return found


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of the intervals that overlap at any instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant: no overlap
        running += step
        peak = max(peak, running)
    return peak


def until(what: str, check: Callable[[], object]) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"waited {WAIT_S:.0f}s for {what}")


class Direct:
    """sbatch straight to the test cluster, remembering every id it made (for scancel)."""

    def __init__(self, stamps: Path) -> None:
        self.stamps = stamps
        self.ids: list[str] = []

    def sbatch(self, command: str, *options: str) -> str:
        small = ["--time=5", "--cpus-per-task=1", "--mem=50", "--output=/dev/null"]
        out = subprocess.run(
            ["sbatch", "--parsable", *small, *options, "--wrap", command],
            capture_output=True, text=True, env=slurm_env(), timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        slurm_id = out.split(";")[0]
        self.ids.append(slurm_id)
        return slurm_id

    def job(self, slurm_id: str) -> dict[str, str]:
        return slurm_job(slurm_id)

    def tasks(self, array_id: str) -> list[tuple[str, str, str]]:
        """(task id, state, reason) for each task of an array, one line per task (-r)."""
        out = subprocess.run(
            ["squeue", "-h", "-r", "-j", array_id, "-o", "%K|%T|%r"],
            capture_output=True, text=True, env=slurm_env(), timeout=30, check=False,
        ).stdout  # fmt: skip
        return [tuple(line.split("|")) for line in out.splitlines() if line.count("|") == 2]

    def cancel_all(self) -> None:
        if self.ids:
            subprocess.run(["scancel", *self.ids], env=slurm_env(), timeout=30, check=False)


@pytest.fixture
def direct(tmp_path: Path) -> Iterator[Direct]:
    stamps = tmp_path / "direct"
    stamps.mkdir()
    client = Direct(stamps)
    yield client
    client.cancel_all()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """Arkwright with the test cluster as its one site, reached through Slurm's commands."""
    db_url = f"sqlite:///{tmp_path / 'arkwright.db'}"
    token = bootstrap_admin(db_url)
    access = f'slurm_conf = "{CONF}"'
    config = ServiceConfig(
        load_fleet(fleet_file_for(tmp_path, access)), tmp_path / "data", db_url, tick_s=0.05
    )
    control = build_control(config)
    with TestClient(create_app(control)) as client:
        yield Service(client, control, {"Authorization": f"Bearer {token}"}, config)
        for backend in control.backends.values():  # only this test's own jobs
            ids = [r.slurm_id for r in getattr(backend, "_tracked", {}).values() if r.slurm_id]
            if ids:
                subprocess.run(["scancel", *ids], env=slurm_env(), timeout=30, check=False)


@pytest.fixture
def ark_stamps(tmp_path: Path) -> Path:
    stamps = tmp_path / "arkwright"
    stamps.mkdir()
    return stamps


class Ark:
    def __init__(self, service: Service, stamps: Path) -> None:
        self.service = service
        self.stamps = stamps
        self.user = service.user("ada", "research")

    def submit(self, command: str, **fields: object) -> dict:
        body = {"command": ["bash", "-c", command], "gpus": 1, "time": "5:00", **fields}
        answer = self.service.client.post("/v1/jobs", headers=self.user, json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def job(self, job_id: str) -> dict:
        return self.service.client.get(f"/v1/jobs/{job_id}", headers=self.user).json()

    def array(self, array_id: str) -> list[dict]:
        page = self.service.client.get(
            "/v1/jobs", headers=self.user, params={"id": array_id}
        ).json()
        return sorted(page["items"], key=lambda job: job["array_task_id"])


@pytest.fixture
def ark(service: Service, ark_stamps: Path) -> Ark:
    return Ark(service, ark_stamps)


ENDED_ARK = {"completed", "failed", "cancelled"}
ENDED_SLURM = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


# ---------------------------------------------------------------------- chains


def test_a_chain_runs_in_order_in_both(ark: Ark, direct: Direct):
    # Straight to Slurm: A -> B(afterok:A) -> C(afterok:B).
    sa = direct.sbatch(stamped(direct.stamps, "a"))
    sb = direct.sbatch(stamped(direct.stamps, "b"), f"--dependency=afterok:{sa}")
    sc = direct.sbatch(stamped(direct.stamps, "c"), f"--dependency=afterok:{sb}")
    # Through Arkwright: the same chain, by Arkwright's ids.
    aa = ark.submit(stamped(ark.stamps, "a"))["id"]
    ab = ark.submit(stamped(ark.stamps, "b"), dependency=f"afterok:{aa}")["id"]
    ac = ark.submit(stamped(ark.stamps, "c"), dependency=f"afterok:{ab}")["id"]

    # While A has not ended, C waits for its dependency in both, under the same name.
    slurm_c = until("Slurm to hold C", lambda: direct.job(sc)["Reason"] == "Dependency")
    ark_c = until("Arkwright to hold C", lambda: ark.job(ac)["reason"] == "Dependency")
    assert slurm_c and ark_c

    until("Slurm's chain to end", lambda: direct.job(sc)["JobState"] in ENDED_SLURM)
    until("Arkwright's chain to end", lambda: ark.job(ac)["state"] in ENDED_ARK)
    assert [direct.job(i)["JobState"] for i in (sa, sb, sc)] == ["COMPLETED"] * 3
    assert [ark.job(i)["state"] for i in (aa, ab, ac)] == ["completed"] * 3
    for stamps in (direct.stamps, ark.stamps):
        runs = intervals(stamps)
        assert sorted(runs) == ["a", "b", "c"], stamps
        assert runs["a"][1] <= runs["b"][0], f"B started before A ended ({stamps.name})"
        assert runs["b"][1] <= runs["c"][0], f"C started before B ended ({stamps.name})"


@pytest.mark.parametrize("kill", [False, True], ids=["stays-pending", "kill-on-invalid-dep"])
def test_a_failed_parent_leaves_its_dependents_unrun_in_both(ark: Ark, direct: Direct, kill):
    """A fails; B(afterok:A) can never run; C(afterok:B) waits on B. Without
    --kill-on-invalid-dep, Slurm leaves B pending as DependencyNeverSatisfied and C pending
    as plain Dependency (B has not ended); with it, B is cancelled and so, in turn, is C."""
    kill_option = "--kill-on-invalid-dep=yes" if kill else "--kill-on-invalid-dep=no"
    sa = direct.sbatch(stamped(direct.stamps, "a", exit_code=1))
    sb = direct.sbatch(stamped(direct.stamps, "b"), f"--dependency=afterok:{sa}", kill_option)
    sc = direct.sbatch(stamped(direct.stamps, "c"), f"--dependency=afterok:{sb}", kill_option)
    aa = ark.submit(stamped(ark.stamps, "a", exit_code=1))["id"]
    ab = ark.submit(stamped(ark.stamps, "b"), dependency=f"afterok:{aa}", kill_on_invalid_dep=kill)
    ac = ark.submit(
        stamped(ark.stamps, "c"), dependency=f"afterok:{ab['id']}", kill_on_invalid_dep=kill
    )
    ab, ac = ab["id"], ac["id"]

    # Slurm: B pending with DependencyNeverSatisfied, or cancelled for that reason.
    want_slurm = "CANCELLED" if kill else "PENDING"
    until(
        "Slurm to give up on B",
        lambda: (job := direct.job(sb))["Reason"] == NEVER and job["JobState"] == want_slurm,
    )
    assert direct.job(sa)["JobState"] == "FAILED"
    # Arkwright: the same, in its own record of B.
    want_ark = "cancelled" if kill else "pending"
    until(
        "Arkwright to give up on B",
        lambda: (job := ark.job(ab))["state"] == want_ark and job["reason"].startswith(NEVER),
    )
    assert ark.job(aa)["state"] == "failed"
    if kill:  # C follows B out, in both
        until("Slurm to cancel C", lambda: direct.job(sc)["JobState"] == "CANCELLED")
        until("Arkwright to cancel C", lambda: ark.job(ac)["state"] == "cancelled")
    slurm_b, slurm_c = direct.job(sb), direct.job(sc)
    ark_b, ark_c = ark.job(ab), ark.job(ac)
    # The reasons' names are Slurm's; Arkwright may add the dependency after the name.
    assert [ark_b["state"].upper(), ark_b["reason"].split(" ")[0]] == [
        slurm_b["JobState"],
        slurm_b["Reason"],
    ]
    assert [ark_c["state"].upper(), ark_c["reason"].split(" ")[0]] == [
        slurm_c["JobState"],
        slurm_c["Reason"],
    ]
    assert slurm_c["Reason"] == (NEVER if kill else "Dependency")
    assert ark_b.get("slurm_job_id") is None  # never handed to Slurm at all
    # Neither B nor C ran in either.
    assert sorted(intervals(direct.stamps)) == ["a"]
    assert sorted(intervals(ark.stamps)) == ["a"]
    for stamps in (direct.stamps, ark.stamps):
        assert not (stamps / "b.start").exists() and not (stamps / "c.start").exists()


# ---------------------------------------------------------------------- arrays


def test_an_array_throttle_holds_the_same_in_both(ark: Ark, direct: Direct):
    name = "t-$SLURM_JOB_ID"  # each task is its own Slurm job in both systems
    sid = direct.sbatch(stamped(direct.stamps, name), "--array=0-3%2")
    first = ark.submit(stamped(ark.stamps, name), array="0-3%2")
    array_id = first.get("array_job_id") or first["id"]

    seen_slurm: set[str] = set()  # the reasons of the tasks that wait while two run
    seen_ark: set[str] = set()
    peak_slurm_running = peak_ark_running = 0

    def both_done() -> bool:
        nonlocal peak_slurm_running, peak_ark_running
        tasks = direct.tasks(sid)
        running = sum(1 for _, state, _ in tasks if state == "RUNNING")
        peak_slurm_running = max(peak_slurm_running, running)
        seen_slurm.update(r for _, state, r in tasks if state == "PENDING" and running == 2)
        jobs = ark.array(array_id)
        running = sum(1 for job in jobs if job["state"] == "running")
        peak_ark_running = max(peak_ark_running, running)
        seen_ark.update(j["reason"] for j in jobs if j["state"] == "pending" and running == 2)
        slurm_done = len(list(direct.stamps.glob("*.end"))) == 4 and not tasks
        ark_done = len(jobs) == 4 and all(job["state"] in ENDED_ARK for job in jobs)
        return slurm_done and ark_done

    until("both arrays to finish", both_done)

    jobs = ark.array(array_id)
    assert [job["array_task_id"] for job in jobs] == [0, 1, 2, 3]
    assert {job["state"] for job in jobs} == {"completed"}
    # All four tasks ran, never more than two at once, in both (times from the jobs).
    direct_runs, ark_runs = intervals(direct.stamps), intervals(ark.stamps)
    assert len(direct_runs) == 4 and len(ark_runs) == 4
    assert most_at_once(list(direct_runs.values())) <= 2
    assert most_at_once(list(ark_runs.values())) <= 2
    assert peak_slurm_running <= 2 and peak_ark_running <= 2
    # While two tasks run, the tasks kept back say why, and the same in both.
    assert seen_slurm == {THROTTLED}, seen_slurm
    assert seen_ark == seen_slurm, seen_ark

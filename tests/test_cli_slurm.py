"""squeue, sacct, scancel and scontrol against a real server: what each prints, and that
no option lets a tenant see or cancel another programme's jobs."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from arkwright.cli import app
from arkwright.service.harness import free_port, start_server
from arkwright.service.server import bootstrap_admin

LONG = {"time": "300h", "sites": ["remote-eu"]}  # simulated: runs for minutes of real time
runner = CliRunner()


@dataclass
class Server:
    url: str
    db: str
    admin: str
    tokens: dict[str, str]

    def env(self, who: str) -> dict[str, str]:
        token = self.admin if who == "admin" else self.tokens[who]
        return {"ARKWRIGHT_URL": self.url, "ARKWRIGHT_TOKEN": token, "COLUMNS": "200", "TZ": "UTC"}

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env(who)['ARKWRIGHT_TOKEN']}"}

    def submit(self, who: str, **fields) -> str:
        response = httpx.post(
            f"{self.url}/v1/jobs", headers=self.headers(who), json={"gpus": 1, **fields}
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def job(self, job_id: str, who: str = "admin") -> dict:
        return httpx.get(f"{self.url}/v1/jobs/{job_id}", headers=self.headers(who)).json()

    def wait_for(self, job_id: str, states: set[str], timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.1)
        raise AssertionError(f"{job_id} stayed {job['state']}, wanted {states}")

    def cordon(self, pool: str, cordoned: bool) -> None:
        response = httpx.patch(
            f"{self.url}/v1/pools/{pool}",
            headers=self.headers("admin"),
            json={"cordoned": cordoned, "reason": "test"},
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    admin = bootstrap_admin(db)
    port = free_port()
    process = start_server(db, tmp_path / "data", port)
    url = f"http://127.0.0.1:{port}"
    tokens = {}
    try:
        for name, tenant in (("alice", "research"), ("bob", "research"), ("nurse", "nhs")):
            response = httpx.post(
                f"{url}/v1/users",
                headers={"Authorization": f"Bearer {admin}"},
                json={"name": name, "tenant": tenant},
            )
            assert response.status_code == 201, response.text
            tokens[name] = response.json()["token"]
        yield Server(url, db, admin, tokens)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def run(server: Server, who: str, *args: str):
    return runner.invoke(app, list(args), env=server.env(who))


def test_squeue_filters_formats_and_start(server):
    alice_train = server.submit("alice", name="train", **LONG)
    bob_eval = server.submit("bob", name="eval", **LONG)
    nurse_train = server.submit("nurse", name="train", **LONG)
    for job_id in (alice_train, bob_eval, nurse_train):
        server.wait_for(job_id, {"running"})
    server.cordon("remote-uk/b200", True)
    waiting = server.submit("alice", name="wait", time="300h", sites=["remote-uk"])
    shown = run(server, "alice", "squeue")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == [
        "JOBID",
        "PARTITION",
        "NAME",
        "USER",
        "ST",
        "TIME",
        "NODES",
        "NODELIST(REASON)",
    ]
    assert [line.split()[0] for line in lines[1:]] == [alice_train, bob_eval, waiting]
    assert nurse_train not in shown.stdout  # another programme's job is not there
    mine = run(server, "bob", "squeue", "--me", "-h", "-o", "%i %j %u %T %a")
    assert mine.stdout == f"{bob_eval} eval bob RUNNING research\n"
    pending = run(server, "alice", "squeue", "-t", "PD", "-h", "-o", "%i|%T|%P|%R")
    assert pending.stdout == f"{waiting}|PENDING||(None)\n"
    by_user = run(server, "alice", "squeue", "-u", "bob,nurse", "-h", "-o", "%i")
    assert by_user.stdout == f"{bob_eval}\n"
    hostile = run(server, "alice", "squeue", "-A", "nhs", "-u", "nurse", "-j", nurse_train)
    assert hostile.exit_code == 0 and nurse_train not in hostile.stdout
    start = run(server, "alice", "squeue", "--start")
    assert start.stdout.splitlines()[0].split()[5] == "START_TIME"
    assert [line.split()[0] for line in start.stdout.splitlines()[1:]] == [waiting]
    bad = run(server, "alice", "squeue", "-t", "sleepy")
    assert bad.exit_code == 1 and "invalid job state specified: SLEEPY" in bad.output
    bad_format = run(server, "alice", "squeue", "-o", "%i %w")
    assert bad_format.exit_code == 1 and "invalid job format specification: %w" in bad_format.output


def test_sacct_lists_finished_jobs_in_slurms_columns(server):
    done = server.submit("alice", name="ok", time="1h", expected_runtime="1m", sites=["remote-uk"])
    failed = server.submit(
        "alice", name="bad", time="1m", sites=["workstation"], command=["sh", "-c", "exit 3"]
    )
    timed_out = server.submit(
        "alice", name="slow", time="1s", sites=["workstation"], command=["sleep", "30"]
    )
    others = server.submit("bob", name="ok", time="1h", expected_runtime="1m", sites=["remote-uk"])
    nurse = server.submit("nurse", name="ok", time="1h", expected_runtime="1m", sites=["remote-uk"])
    for job_id in (done, failed, timed_out, others, nurse):
        server.wait_for(job_id, {"completed", "failed", "cancelled"})
    fields = "JobID,JobName,Account,User,State,ExitCode,NNodes,AllocTRES"
    listed = run(server, "alice", "sacct", "-P", "--format", fields)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == (
        "JobID|JobName|Account|User|State|ExitCode|NNodes|AllocTRES\n"
        f"{done}|ok|research|alice|COMPLETED|0:0|1|gres/gpu=1,node=1\n"
        f"{failed}|bad|research|alice|FAILED|3:0|1|gres/gpu=1,node=1\n"
        f"{timed_out}|slow|research|alice|TIMEOUT|0:15|1|gres/gpu=1,node=1\n"
    )
    everyone = run(server, "alice", "sacct", "-a", "-n", "-P", "-o", "JobID,User")
    assert everyone.stdout.splitlines() == [
        f"{done}|alice",
        f"{failed}|alice",
        f"{timed_out}|alice",
        f"{others}|bob",
    ]  # every user of the programme, and nobody else's
    hostile = run(server, "alice", "sacct", "-j", nurse, "-A", "nhs", "-u", "nurse", "-a", "-P")
    assert hostile.exit_code == 0 and nurse not in hostile.stdout
    assert run(server, "nurse", "sacct", "-n", "-P", "-o", "JobID").stdout == f"{nurse}\n"
    states = run(server, "alice", "sacct", "-a", "-s", "TO,F", "-n", "-P", "-o", "JobID")
    assert states.stdout.splitlines() == [failed, timed_out]
    columns = run(server, "alice", "sacct", "-j", done, "-o", "JobID,JobName%6,State")
    assert columns.stdout == (
        "JobID        JobNam      State \n"
        "------------ ------ ---------- \n"
        f"{done:<12}     ok  COMPLETED \n"
    )
    future = run(server, "alice", "sacct", "-a", "-S", "now+1hours", "-n", "-P", "-o", "JobID")
    assert future.exit_code == 0 and future.stdout == ""  # all ended before that
    bad = run(server, "alice", "sacct", "-o", "JobID,MaxRSSish")
    assert bad.exit_code == 1 and 'invalid field requested: "MaxRSSish"' in bad.output
    bad_time = run(server, "alice", "sacct", "-S", "last tuesday")
    assert bad_time.exit_code == 1 and "invalid time specification" in bad_time.output


def mark_array(server: Server, array_id: str, tasks: list[str]) -> None:
    """Record these jobs as one array's tasks, as the intake records an array."""
    engine = create_engine(server.db)
    with engine.begin() as connection:
        for task, job_id in enumerate(tasks):
            spec = connection.execute(
                text("SELECT spec FROM jobs WHERE id = :id"), {"id": job_id}
            ).scalar_one()
            data = json.loads(spec) | {"array_job_id": array_id, "array_task_id": task}
            connection.execute(
                text("UPDATE jobs SET spec = :spec WHERE id = :id"),
                {"spec": json.dumps(data), "id": job_id},
            )
    engine.dispose()


def test_scancel_by_id_filter_and_array_never_across_programmes(server):
    train = [server.submit("alice", name="train", **LONG) for _ in range(2)]
    bob_train = server.submit("bob", name="train", **LONG)
    nurse_train = server.submit("nurse", name="train", **LONG)
    tasks = [server.submit("alice", name="arr", **LONG) for _ in range(3)]
    mark_array(server, tasks[0], tasks)
    # The hostile tenant: every filter that names the other programme's job.
    for args in (
        ["-u", "nurse"],
        ["-A", "nhs"],
        ["--name", "train", "-u", "nurse"],
        ["-p", "remote-eu/h100", "-A", "nhs"],
    ):
        result = run(server, "alice", "scancel", *args)
        assert result.exit_code == 0, result.output
        assert "No active jobs match ALL job filters" in result.output
    foreign = run(server, "alice", "scancel", nurse_train)
    assert foreign.exit_code == 1 and "Invalid job id specified" in foreign.output
    assert server.job(nurse_train)["state"] in ("pending", "starting", "running")
    filtered_out = run(server, "alice", "scancel", "-v", "-u", "bob", train[0])
    assert filtered_out.exit_code == 0 and "does not match the filters" in filtered_out.output
    assert server.job(train[0])["state"] != "cancelled"
    by_name = run(server, "alice", "scancel", "--name", "train", "-u", "alice")
    assert by_name.exit_code == 0 and by_name.output == ""
    assert {server.job(j)["state"] for j in train} == {"cancelled"}
    assert server.job(bob_train)["state"] != "cancelled"  # -u alice left bob's alone
    one_task = run(server, "alice", "scancel", f"{tasks[0]}_1")
    assert one_task.exit_code == 0, one_task.output
    assert [server.job(t)["state"] == "cancelled" for t in tasks] == [False, True, False]
    whole = run(server, "alice", "scancel", "-v", tasks[0])
    assert whole.exit_code == 0 and f"Terminating job {tasks[0]}_2" in whole.output
    assert {server.job(t)["state"] for t in tasks} == {"cancelled"}
    again = run(server, "alice", "scancel", train[0])
    assert again.exit_code == 0 and "already completing or completed" in again.output
    nothing = run(server, "alice", "scancel")
    assert nothing.exit_code == 1 and "No job identification provided" in nothing.output
    bad_state = run(server, "alice", "scancel", "-t", "COMPLETED")
    assert bad_state.exit_code == 1 and "invalid job state for scancel" in bad_state.output
    everything = run(server, "alice", "scancel", "-t", "R,PD")  # the whole programme's
    assert everything.exit_code == 0
    assert server.job(bob_train)["state"] == "cancelled"
    assert server.job(nurse_train)["state"] in ("pending", "starting", "running")
    assert run(server, "admin", "scancel", nurse_train).exit_code == 0
    assert server.job(nurse_train)["state"] == "cancelled"


def test_scontrol_show_job(server):
    job_id = server.submit("alice", name="train", **LONG)
    server.wait_for(job_id, {"running"})
    nurse_job = server.submit("nurse", name="secret", **LONG)
    shown = run(server, "alice", "scontrol", "show", "job", job_id)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"JobId={job_id} JobName=train"
    assert "   UserId=alice Account=research" in lines
    assert "   JobState=RUNNING Reason=None Dependency=(null)" in lines
    assert "   Partition=remote-eu/h100 Cluster=remote-eu" in lines
    assert "   NodeList=remote-eu-h100-0" in lines and "   TRES=gres/gpu=1,node=1" in lines
    assert any(line.startswith("   RunTime=") and "TimeLimit=12-12:00:00" in line for line in lines)
    missing = run(server, "alice", "scontrol", "show", "job", nurse_job)
    assert missing.exit_code == 1
    assert "slurm_load_jobs error: Invalid job id specified" in missing.output
    assert "secret" not in missing.output
    every = run(server, "alice", "scontrol", "show", "job")
    assert every.stdout.count("JobId=") == 1  # all the jobs alice can see: her one

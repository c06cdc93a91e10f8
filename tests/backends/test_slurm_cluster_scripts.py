"""Batch scripts on the real Slurm test cluster, through Arkwright's API: a python-shebang
script runs under python on a Slurm node with its arguments, its --output/--error patterns
(%j %x %N) decide where its logs go, and the API finds them there.

The cluster is shared: these tests neither restart its daemons nor cancel any job but
their own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arkwright.fleets import load_fleet
from arkwright.service.app import create_app
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control
from tests.backends.test_slurm_cluster import (  # noqa: F401  (access: a fixture)
    CONF,
    access,
    fleet_file_for,
    pytestmark,
    slurm_id_of,
    slurm_job,
)
from tests.service.conftest import Service

PY = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
NODE = os.environ.get("ARKWRIGHT_TEST_SLURM_NODE", "")


@pytest.fixture
def service(tmp_path: Path, access: str):  # noqa: F811
    db_url = f"sqlite:///{tmp_path / 'arkwright.db'}"
    token = bootstrap_admin(db_url)
    config = ServiceConfig(
        load_fleet(fleet_file_for(tmp_path, access)), tmp_path / "data", db_url, tick_s=0.05
    )
    control = build_control(config)
    with TestClient(create_app(control)) as client:
        started = Service(client, control, {"Authorization": f"Bearer {token}"}, config)
        yield started
        for backend in control.backends.values():  # only this test's own jobs
            for run in list(getattr(backend, "_tracked", {}).values()):
                if run.slurm_id:
                    subprocess.run(
                        ["scancel", run.slurm_id], env={**os.environ, "SLURM_CONF": CONF}
                    )


def test_a_python_script_runs_on_slurm_and_its_patterned_logs_are_found(service, tmp_path):
    user = service.user("grace", "research")
    script = (
        f"#!{PY}\n"
        "#SBATCH --partition=nowhere\n"  # the user's own directives: Arkwright's placement wins
        "#SBATCH --output=theirs-%j.out\n"
        "import os, sys\n"
        "print('python', sys.version_info[0], 'args', sys.argv[1:])\n"
        "print('slurm', os.environ['SLURM_JOB_ID'], os.environ['SLURM_JOB_NAME'])\n"
        "print('problem', file=sys.stderr)\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    body = {
        "gpus": 1,
        "time": "5:00",
        "name": "train",
        "script": script,
        "command": ["3", "--epochs=2"],
        "output": "train-%j-%x.out",
        "error": "logs/err-%x-%N.log",
    }
    answer = service.client.post("/v1/jobs", headers=user, json=body)
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    slurm_id = slurm_id_of(service, user, job_id)
    job = service.wait_for(job_id, user, {"completed", "failed"}, timeout=90)
    assert job["state"] == "failed" and job["exit_code"] == 3, job
    record = slurm_job(slurm_id)
    assert record["Partition"] in ("gpu", "debug") and record["JobName"] == f"ark-{job_id}"

    stdout = service.client.get(f"/v1/jobs/{job_id}/logs?stream=stdout", headers=user).text
    assert stdout.splitlines() == [
        "python 3 args ['3', '--epochs=2']",
        f"slurm {slurm_id} train",  # Slurm's own id: srun needs it
    ]
    stderr = service.client.get(f"/v1/jobs/{job_id}/logs?stream=stderr", headers=user).text
    assert stderr == "problem\n"
    run_dir = tmp_path / "runs" / job_id / "attempt-1"
    assert (run_dir / f"train-{job_id}-train.out").read_text() == stdout
    node = (run_dir / ".arkwright-node").read_text().strip()
    assert (run_dir / "logs" / f"err-train-{node}.log").read_text() == stderr
    if NODE:
        assert node == NODE
    assert not (run_dir / f"theirs-{slurm_id}.out").exists()

"""`arkwright sbatch` and `squeue` against a real server, running the script locally."""

import os
import signal
import time

import httpx
from typer.testing import CliRunner

from arkwright.cli import app
from arkwright.service.harness import free_port, start_server
from arkwright.service.server import bootstrap_admin

SCRIPT = """#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --account=research
#SBATCH --partition=workstation
#SBATCH --gres=gpu:1
#SBATCH --time=00:05:00
#SBATCH --array=1-2
#SBATCH --mail-type=END
echo "task $SLURM_ARRAY_TASK_ID on slots $ARKWRIGHT_GPU_SLOTS"
"""


def test_sbatch_submits_an_array_that_runs_here(tmp_path):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    token = bootstrap_admin(db)
    port = free_port()
    server = start_server(db, tmp_path / "data", port)
    env = {"ARKWRIGHT_URL": f"http://127.0.0.1:{port}", "ARKWRIGHT_TOKEN": token, "COLUMNS": "200"}
    try:
        script = tmp_path / "hello.sh"
        script.write_text(SCRIPT)
        runner = CliRunner()
        result = runner.invoke(app, ["sbatch", "--parsable", str(script)], env=env)
        assert result.exit_code == 0, result.output
        # sbatch --parsable prints the array's id; its tasks share the job's name.
        [array_id] = [line for line in result.output.splitlines() if line.startswith("j-")]
        assert "--mail-type" in result.output
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{env['ARKWRIGHT_URL']}/v1/jobs"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs = httpx.get(url, params={"id": array_id}, headers=headers).json()["items"]
            if len(jobs) == 2 and all(j["state"] == "completed" for j in jobs):
                break
            time.sleep(0.2)
        jobs.sort(key=lambda j: j["array_task_id"])
        assert [(j["name"], j["array_job_id"], j["array_task_id"]) for j in jobs] == [
            ("hello", array_id, 1),
            ("hello", array_id, 2),
        ]
        assert {j["state"] for j in jobs} == {"completed"}, [j["reason"] for j in jobs]
        outputs = [httpx.get(f"{url}/{j['id']}/logs", headers=headers).text for j in jobs]
        assert outputs[0].startswith("task 1 on slots ") and outputs[1].startswith("task 2 ")
        queue = runner.invoke(app, ["squeue", "--all"], env=env)
        assert queue.exit_code == 0 and "JOBID" in queue.output
        assert "hello" in queue.output and " CD " in queue.output
        bad = tmp_path / "bad.sh"
        bad.write_text("#!/bin/bash\n#SBATCH --time=tomorrow\n#SBATCH --gpus=1\n")
        refused = runner.invoke(app, ["sbatch", str(bad)], env=env)
        assert refused.exit_code == 2 and "line 2: Invalid --time" in refused.output
    finally:
        os.killpg(server.pid, signal.SIGKILL)

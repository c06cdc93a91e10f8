"""The wrapper Arkwright gives sbatch for a batch script, run by bash for real (no cluster):
the user's script comes out byte for byte, runs under its own #! line with its
arguments, logs where its patterns say (%N from the node), and leaves the exit record.
The real cluster runs the same in test_slurm_cluster.py."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from arkwright.backends.base import RunRequest
from arkwright.backends.batch import SCRIPT_NAME, BatchSpec
from arkwright.backends.job_env import BadRunRequest
from arkwright.backends.slurm_batch import NODE_RECORD, batch_script
from tests.backends.test_slurm_backend import make_backend, request_for, slurm_fleet

PY = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")

USER_SCRIPT = (
    f"#!{PY}\n"
    "#SBATCH --partition=elsewhere --nodes=64 --output=theirs.out\n"
    "import os, sys\n"
    "print('args', sys.argv[1:], os.environ['SLURM_JOB_NAME'], os.environ['SEED'])\n"
    "print('array', os.environ['SLURM_ARRAY_JOB_ID'], os.environ['SLURM_ARRAY_TASK_ID'])\n"
    "print('to stderr', file=sys.stderr)\n"
    "sys.exit(5)\n"
)


def scripted_request(batch: BatchSpec, command=("it's", "--flag")) -> RunRequest:
    return dataclasses.replace(request_for(slurm_fleet({})), command=list(command), batch=batch)


def run_wrapper(script: str, cwd, node: str = "gpu-n07") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURMD_NODENAME": node}
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def test_the_users_script_runs_under_its_interpreter_and_its_directives_stay_hidden(tmp_path):
    batch = BatchSpec(
        name="train",
        script=USER_SCRIPT,
        output="logs/%x-%A_%a-%N.out",
        array_job_id="j-0000004",
        array_task_id=2,
    )
    wrapper = batch_script(scripted_request(batch), str(tmp_path), "alice")
    # sbatch reads directives from the script it is given: none of the user's are there.
    assert not [line for line in wrapper.splitlines() if line.startswith("#SBATCH")]
    done = run_wrapper(wrapper, tmp_path)
    assert done.returncode == 5, done.stderr
    assert (tmp_path / SCRIPT_NAME).read_text() == USER_SCRIPT
    assert (tmp_path / SCRIPT_NAME).stat().st_mode & 0o777 == 0o700
    log = tmp_path / "logs" / "train-j-0000004_2-gpu-n07.out"
    # One file for both streams (no --error); Python flushes stdout last when it is a file.
    assert sorted(log.read_text().splitlines()) == [
        "args [\"it's\", '--flag'] train 7",
        "array j-0000004 2",
        "to stderr",
    ]
    assert (tmp_path / NODE_RECORD).read_text() == "gpu-n07\n"
    assert json.loads((tmp_path / "exit.json").read_text())["exit_code"] == 5


def test_separate_error_file_and_a_bash_e_script(tmp_path):
    script = '#!/bin/bash -e\necho "out $#"\necho err >&2\nfalse\necho never\n'
    batch = BatchSpec(script=script, output="o-%j.log", error="e-%j.log")
    done = run_wrapper(batch_script(scripted_request(batch), str(tmp_path)), tmp_path)
    assert done.returncode == 1
    assert (tmp_path / "o-j1.log").read_text() == "out 2\n"
    assert (tmp_path / "e-j1.log").read_text() == "err\n"
    assert not (tmp_path / NODE_RECORD).exists()  # no %N: no record needed


def test_the_handle_leads_the_api_to_the_patterned_log(tmp_path):
    fleet, backend, scripted = make_backend({"work_dir": str(tmp_path)})
    scripted.answers["sbatch"] = "4242\n"
    batch = BatchSpec(name="t", script="#!/bin/sh\necho hi\n", output="out-%N-%j.txt")
    request = dataclasses.replace(request_for(fleet), command=[], batch=batch)
    handle = backend.start(request)
    assert handle["logs"] == {"stdout": ["out-", None, "-j1.txt"]} | {
        "stderr": ["out-", None, "-j1.txt"]
    }
    run_dir = tmp_path / "j1" / "attempt-1"
    run_dir.mkdir(parents=True, exist_ok=True)
    assert backend.open_log("j1", handle, "stdout") is None  # not on a node yet
    wrapper = scripted.calls[-1][1]
    assert run_wrapper(wrapper, run_dir).returncode == 0
    with backend.open_log("j1", handle, "stdout") as log:
        assert log.read() == b"hi\n"
    # A node record the job rewrote to climb out is not followed.
    (run_dir / NODE_RECORD).write_text("../../../etc\n")
    assert backend.open_log("j1", handle, "stdout") is None


def test_a_hostile_pattern_submits_nothing(tmp_path):
    fleet, backend, scripted = make_backend({"work_dir": str(tmp_path)})
    batch = BatchSpec(name="..", script="#!/bin/sh\ntrue\n", output="%x/%x/arkwright.db")
    with pytest.raises(BadRunRequest, match=r"^output: .*climbs out"):
        backend.start(dataclasses.replace(request_for(fleet), batch=batch))
    for record in ("exit.json", f"./{SCRIPT_NAME}", NODE_RECORD):
        batch = BatchSpec(script="#!/bin/sh\ntrue\n", error=record)
        with pytest.raises(BadRunRequest, match=r"^error: .*a file Arkwright keeps"):
            backend.start(dataclasses.replace(request_for(fleet), batch=batch))
    assert not scripted.called("sbatch")

"""Batch scripts through the API on a local site whose jobs run as their owners' accounts:
the log an --output pattern names is the one `GET /v1/jobs/{id}/logs` (and so
`arkwright logs`) returns, and a tenant's pattern can neither write nor read outside its
own run directory."""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path

import pytest

from tests.security.conftest import SecureService

PY = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")


def logs(service: SecureService, headers: dict, job_id: str, stream: str = "stdout") -> str:
    answer = service.client.get(f"/v1/jobs/{job_id}/logs?stream={stream}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_a_python_script_with_an_output_pattern_is_logged_where_the_api_finds_it(
    secure_service: SecureService,
):
    alice = secure_service.user("alice-batch", "research")
    script = (
        f"#!{PY}\n"
        "#SBATCH --output=ignored-by-arkwright.out\n"
        "import os, sys\n"
        "print('hello', sys.argv[1], os.environ['SLURM_JOB_ID'], os.getuid())\n"
        "print('warning', file=sys.stderr)\n"
        "sys.exit(int(sys.argv[2]))\n"
    )
    job_id = secure_service.submit(
        alice, ["world", "4"], name="train", script=script, output="train-%j-%x.out"
    )
    job = secure_service.wait(job_id, alice)
    assert job["state"] == "failed" and job["exit_code"] == 4, job
    account = pwd.getpwnam("arkt-research-alice-batch")
    text = logs(secure_service, alice, job_id)
    assert f"hello world {job_id} {account.pw_uid}" in text and "warning" in text
    # stderr shares the file (no --error), and the file is where the pattern said.
    assert logs(secure_service, alice, job_id, "stderr") == text
    handle = secure_service.handle(job_id)
    placed = Path(handle["work_dir"], f"train-{job_id}-train.out")
    assert placed.read_text() == text and placed.stat().st_uid == account.pw_uid


def test_a_bash_e_script_with_an_error_pattern(secure_service: SecureService):
    bob = secure_service.user("bob-batch", "research")
    script = '#!/bin/bash -e\necho "args: $*"\necho "oops" >&2\nexit 9\n'
    job_id = secure_service.submit(
        bob, ["a", "b"], script=script, output="o-%j.log", error="logs/e-%j.log"
    )
    job = secure_service.wait(job_id, bob)
    assert job["state"] == "failed" and job["exit_code"] == 9, job
    assert logs(secure_service, bob, job_id) == "args: a b\n"
    assert logs(secure_service, bob, job_id, "stderr") == "oops\n"


@pytest.mark.parametrize(
    ("field", "pattern", "name"),
    [
        ("output", "../../arkwright.db", ""),
        ("error", "../../../runs/j-0000001/attempt-1/exit.json", ""),
        ("output", "/etc/cron.d/arkwright", ""),
        ("output", "%x/db", ".."),
    ],
)
def test_a_pattern_outside_the_run_directory_is_refused_naming_the_field(
    secure_service: SecureService, field, pattern, name
):
    carol = secure_service.user(f"carol-{field}-{len(pattern)}", "research")
    body = {"gpus": 1, "time": "5m", "sites": ["workstation"], "name": name}
    body |= {"script": "#!/bin/sh\ntrue\n", field: pattern}
    before = secure_service.client.get("/v1/jobs", headers=secure_service.admin).json()
    answer = secure_service.client.post("/v1/jobs", headers=carol, json=body)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["field"] == field and error["message"].startswith(f"Value error, {field}:")
    after = secure_service.client.get("/v1/jobs", headers=secure_service.admin).json()
    assert len(after["items"]) == len(before["items"])  # nothing was stored


def test_a_script_sbatch_would_refuse_is_refused(secure_service: SecureService):
    dave = secure_service.user("dave-batch", "research")
    for script in ("echo no interpreter line\n", "#!/bin/bash\r\necho dos\r\n"):
        body = {"gpus": 1, "time": "5m", "sites": ["workstation"], "script": script}
        answer = secure_service.client.post("/v1/jobs", headers=dave, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["field"] == "script"


def test_a_log_swapped_for_a_link_to_the_database_is_not_served(secure_service: SecureService):
    erin = secure_service.user("erin-batch", "nhs")
    db = secure_service.data_dir / "arkwright.db"
    # The job cannot read the database itself; it tries to have the service read it.
    script = f"#!/bin/sh\necho mine\nrm -f out.log\nln -s {db} out.log\n"
    job_id = secure_service.submit(erin, [], script=script, output="out.log")
    job = secure_service.wait(job_id, erin)
    assert job["state"] == "completed", job
    assert Path(secure_service.handle(job_id)["work_dir"], "out.log").is_symlink()
    assert logs(secure_service, erin, job_id) == ""

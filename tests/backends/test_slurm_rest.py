"""The slurmrestd client against recorded answers (the live one runs in
test_slurm_cluster.py): what it sends, and how it reads Slurm's errors."""

from __future__ import annotations

import json

import httpx
import pytest

from arkwright.backends.base import BackendUnavailable
from arkwright.backends.slurm_client import SlurmError, Submission
from arkwright.backends.slurm_rest import SlurmRest
from arkwright.fleets.slurm_settings import SlurmSettings


def rest(handler, tmp_path, **settings) -> SlurmRest:
    token = tmp_path / "jwt"
    token.write_text("SLURM_JWT=abc.def.ghi\n")  # as `scontrol token` prints it
    config = SlurmSettings(
        rest_url="http://slurm:6820", rest_token_file=str(token), rest_user="ark", **settings
    )
    return SlurmRest(config, transport=httpx.MockTransport(handler))


def answer(status: int = 200, errors: list | None = None, **body) -> httpx.Response:
    return httpx.Response(status, json={"meta": {}, "errors": errors or [], **body})


def test_submission_sends_the_placement_and_the_token(tmp_path):
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.path
        seen["headers"] = request.headers
        seen["body"] = json.loads(request.content)
        return answer(job_id=42)

    client = rest(handler, tmp_path)
    slurm_id = client.submit(
        "#!/bin/bash\ntrue\n",
        Submission("ark-j1", "arkwright:j1:1", "workq", 2, "gpu:gh200:4", 60, "/w", "nhs", "high"),
    )
    assert slurm_id == "42" and seen["path"] == "/slurm/v0.0.38/job/submit"
    assert seen["headers"]["x-slurm-user-token"] == "abc.def.ghi"
    assert seen["headers"]["x-slurm-user-name"] == "ark"
    job = seen["body"]["job"]
    assert (job["partition"], job["nodes"], job["gres"], job["time_limit"]) == (
        "workq",
        2,
        "gpu:gh200:4",
        60,
    )
    assert job["account"] == "nhs" and job["qos"] == "high" and job["requeue"] is False
    assert job["standard_output"] == "/w/stdout.log" and job["comment"] == "arkwright:j1:1"


def test_states_exit_codes_and_restarts_are_read_from_the_job_list(tmp_path):
    jobs = [
        {
            "job_id": 1,
            "job_state": "FAILED",
            "state_reason": "NonZeroExitCode",
            "exit_code": 4 << 8,
            "end_time": 1700000000,
        },
        {"job_id": 2, "job_state": "TIMEOUT", "exit_code": 15, "end_time": 0},
        {"job_id": 3, "job_state": "PENDING", "state_reason": "BeginTime", "restart_cnt": 1},
        {"job_id": 4, "job_state": "RUNNING"},
    ]
    client = rest(lambda request: answer(jobs=jobs), tmp_path)
    found = client.statuses(["1", "2", "3"])
    assert set(found) == {"1", "2", "3"}
    assert (found["1"].exit_code, found["1"].ended_at) == (4, 1700000000.0)
    assert found["2"].exit_code == 128 + 15 and found["2"].ended_at is None
    assert found["3"].restarts == 1


def test_no_such_job_is_an_answer_but_a_controller_outage_is_not(tmp_path):
    unknown = {
        "error_number": 2017,
        "error": "Invalid job id specified",
        "description": "Unable to find JobId=9",
    }
    client = rest(lambda request: answer(500, [unknown]), tmp_path)
    assert client.statuses(["9"]) == {}
    with pytest.raises(SlurmError):
        client.cancel("9")
    # With slurmctld down, slurmrestd 22.05 also says "Unable to find JobId", as -1.
    away = {
        "error_number": -1,
        "error": "Unspecified error",
        "description": "Unable to find JobId=9",
    }
    client = rest(lambda request: answer(500, [away]), tmp_path)
    with pytest.raises(BackendUnavailable):
        client.statuses(["9"])


def test_a_refused_token_or_a_dead_daemon_reads_as_unreachable(tmp_path):
    client = rest(lambda request: httpx.Response(401, text="Authentication failure"), tmp_path)
    with pytest.raises(BackendUnavailable, match="token"):
        client.statuses(["1", "2"])

    def down(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(BackendUnavailable):
        rest(down, tmp_path).find(["ark-j1"])


def test_a_bad_partition_is_a_refusal_naming_slurms_reason(tmp_path):
    bad = {"error_number": 2015, "error": "Invalid partition name specified"}
    client = rest(lambda request: answer(500, [bad]), tmp_path)
    with pytest.raises(SlurmError, match="Invalid partition"):
        client.submit("#!/bin/bash\n", Submission("a", "b", "nope", 1, "gpu:1", 1, "/w"))


def test_rest_settings_refuse_mixed_ways_in():
    with pytest.raises(ValueError, match="not both"):
        SlurmSettings(rest_url="http://x", ssh="login")
    with pytest.raises(ValueError, match="extra_args"):
        SlurmSettings(rest_url="http://x", extra_args=["--exclusive"])
    with pytest.raises(ValueError, match="http"):
        SlurmSettings(rest_url="slurm:6820")

import json
import time

import pytest

from arkwright.backends.base import Ending, IneligiblePlacement, RunRequest
from arkwright.backends.local import LocalBackend
from arkwright.backends.simulated import SimulatedBackend
from arkwright.core.policy_data import DataPolicy
from tests.conftest import make_job
from tests.security.accounts import local_fleet_with_identity


@pytest.fixture(scope="module")
def fleet():
    return local_fleet_with_identity()


def request(fleet, pool_name="workstation/gpus", command=("true",), **job_fields):
    pool = next(p for p in fleet.pools if p.name == pool_name)
    job = make_job("j1", tenant="research", gpus=1, duration=60, **job_fields)
    return RunRequest(
        job=job,
        pool=pool,
        allocation=((0, 1),),
        attempt=1,
        command=list(command),
        runtime_s=60,
        owner="alice",
    )


def local_backend(fleet, tmp_path, **options) -> LocalBackend:
    """Records in tmp_path; run directories beside it (never inside), cleaned up with it."""
    return LocalBackend(
        fleet, tmp_path, run_root=tmp_path.with_name(tmp_path.name + "-work"), **options
    )


def wait_outcome(backend, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outcomes = backend.poll(time.time())
        if outcomes:
            return outcomes
        time.sleep(0.05)
    raise AssertionError("no outcome")


@pytest.mark.parametrize("backend_kind", ["local", "simulated"])
def test_backend_refuses_an_ineligible_placement(fleet, tmp_path, backend_kind):
    backend = local_backend(fleet, tmp_path) if backend_kind == "local" else SimulatedBackend(fleet)
    eu_only = request(fleet, "remote-uk/b200", data_policy=DataPolicy.parse(residency="EU"))
    with pytest.raises(IneligiblePlacement, match="may not run on remote-uk/b200"):
        backend.start(eu_only)
    assert not list(tmp_path.iterdir())  # nothing was started


def test_simulated_run_ends_after_scaled_time_and_is_found_again(fleet):
    backend = SimulatedBackend(fleet, speedup=600)  # 60 s of job time: 0.1 s
    handle = backend.start(request(fleet, "remote-uk/b200"))
    [outcome] = wait_outcome(backend)
    assert outcome.ending is Ending.COMPLETED and outcome.ended_at == handle["ends"]
    fresh = SimulatedBackend(fleet, speedup=600)
    assert fresh.recover("j1", handle, 1, time.time()) == handle
    assert fresh.recover("j1", handle, 2, time.time()) is None  # another attempt's record


def test_local_cancel_escalates_to_sigkill(fleet, tmp_path):
    backend = local_backend(fleet, tmp_path, grace_s=0.3)
    stubborn = request(fleet, command=("sh", "-c", "trap '' TERM; echo up; sleep 60"))
    handle = backend.start(stubborn)
    run_dir = tmp_path / "j1" / "attempt-1"
    while (
        "up" not in (run_dir / "stdout.log").read_text()
        if (run_dir / "stdout.log").exists()
        else True
    ):
        time.sleep(0.05)
    started = time.monotonic()
    backend.cancel("j1", handle)
    while not (run_dir / "exit.json").exists():
        assert time.monotonic() - started < 10, "the command ignored SIGTERM and was not killed"
        time.sleep(0.05)
    record = json.loads((run_dir / "exit.json").read_text())
    assert record["ending"] == "cancelled" and record["exit_code"] == -9


def test_local_time_limit_ends_a_run(fleet, tmp_path):
    backend = local_backend(fleet, tmp_path, grace_s=0.3)
    job_request = request(fleet, command=("sleep", "30"))
    job_request.job.time_limit_s = 0.5
    backend.start(job_request)
    [outcome] = wait_outcome(backend)
    assert outcome.ending is Ending.FAILED and "time limit" in outcome.reason


def test_local_recover_without_a_run_directory_means_never_started(fleet, tmp_path):
    assert local_backend(fleet, tmp_path).recover("nobody", {}, 1, time.time()) is None


def test_local_run_without_command_is_refused(fleet, tmp_path):
    with pytest.raises(ValueError, match="no command"):
        local_backend(fleet, tmp_path).start(request(fleet, command=()))

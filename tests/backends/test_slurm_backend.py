"""The Slurm backend's decisions, with Slurm's commands answered by a script (no cluster).

The same paths run against a real slurmctld in test_slurm_cluster.py; these pin down each
state mapping and failure path one at a time, which a live cluster cannot do on demand.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from arkwright.backends.base import BackendUnavailable, Ending, RunRequest, StartRefused
from arkwright.backends.slurm import ENDINGS, SlurmBackend, batch_script
from arkwright.backends.slurm_cli import SlurmCli
from arkwright.backends.slurm_client import SlurmError
from arkwright.core.job import Job
from arkwright.core.policy_data import DataPolicy
from arkwright.fleets.loader import FleetFileError, parse_fleet
from arkwright.fleets.slurm_settings import SlurmSettings


def slurm_fleet(slurm: dict | None = None, backend: str = "slurm"):
    site = {
        "name": "hpc",
        "region": "uk-south-west",
        "jurisdiction": "UK",
        "operator": "University",
        "accreditations": ["OFFICIAL"],
        "carbon_g_per_kwh": 100,
        "backend": backend,
        "pools": [
            {
                "name": "gh200",
                "gpu": "GH200",
                "gpus_per_node": 4,
                "nodes": 2,
                "price_gbp_per_gpu_hour": 1.0,
            },
        ],
    }
    if slurm is not None:
        site["slurm"] = slurm
    return parse_fleet({"name": "t", "sites": [site]}, "test")


class ScriptedSlurm(SlurmCli):
    """Answers each command from `answers[command name]`: text, or an exception to raise."""

    def __init__(self, settings: SlurmSettings) -> None:
        super().__init__(settings)
        self.answers: dict[str, object] = {}
        self.calls: list[tuple[list[str], str | None]] = []
        self.prepared: list[str] = []

    def prepare(self, work_dir: str) -> None:
        self.prepared.append(work_dir)  # a path on the cluster: nothing is made here

    def run(self, args: list[str], stdin: str | None = None, as_user: str | None = None) -> str:
        self.calls.append((args, stdin))
        answer = self.answers.get(args[0], "")
        if callable(answer):
            answer = answer(args)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    def called(self, name: str) -> list[list[str]]:
        return [args for args, _ in self.calls if args[0] == name]


def make_backend(settings: dict | None = None, clock=lambda: 1000.0):
    fleet = slurm_fleet({"run_as": "service", **(settings or {})})
    settings = fleet.backend_settings["hpc"]
    scripted = ScriptedSlurm(settings)
    backend = SlurmBackend(fleet, "hpc", settings, "/shared/ark", clock=clock, client=scripted)
    return fleet, backend, scripted


def request_for(fleet, gpus: int = 6, attempt: int = 1, **job_fields) -> RunRequest:
    job = Job(
        job_id="j1",
        tenant="research",
        submit_time=0.0,
        gpus=gpus,
        duration_s=600.0,
        time_limit_s=3600.0,
        data_policy=DataPolicy(),
        **job_fields,
    )
    allocation = ((0, 4), (1, 2)) if gpus > 4 else ((0, gpus),)
    return RunRequest(
        job,
        fleet.pools[0],
        allocation,
        attempt,
        ["python", "train.py", "--name", "it's"],
        {"SEED": "7"},
    )


def started(settings: dict | None = None, clock=lambda: 1000.0):
    fleet, backend, scripted = make_backend(settings, clock)
    scripted.answers["sbatch"] = "4242\n"
    handle = backend.start(request_for(fleet))
    return backend, scripted, handle


def test_sbatch_asks_for_the_placement_the_core_made():
    fleet, backend, scripted = make_backend(
        {
            "partitions": {"gh200": "workq"},
            "gres_types": {"gh200": "gh200"},
            "account": "ark-{tenant}",
            "qos": "normal",
            "extra_args": ["--reservation=ark"],
        }
    )
    scripted.answers["sbatch"] = "4242;isambard\n"
    handle = backend.start(request_for(fleet))
    args = scripted.called("sbatch")[0]
    assert "--partition=workq" in args
    assert "--nodes=2" in args and "--gres=gpu:gh200:4" in args
    assert "--time=60" in args  # minutes, rounded up
    assert "--account=ark-research" in args and "--qos=normal" in args
    assert "--no-requeue" in args and args[-1] == "--reservation=ark"
    assert "--comment=arkwright:j1:1" in args and "--job-name=ark-j1" in args
    assert handle["slurm_job_id"] == "4242" and handle["dir"] == "/shared/ark/j1/attempt-1"
    assert scripted.prepared == ["/shared/ark/j1/attempt-1"]


def test_time_limit_follows_the_pool_speed_and_never_rounds_to_zero():
    fleet, backend, _scripted = make_backend()
    fast = request_for(fleet, gpus=1)
    fast.job.speed = 2.0
    args = backend.client.sbatch_args(backend.submission(fast, "/d"))
    assert "--time=30" in args and "--gres=gpu:1" in args and "--nodes=1" in args
    short = request_for(fleet, gpus=1)
    short.job.time_limit_s = 5.0
    assert "--time=1" in backend.client.sbatch_args(backend.submission(short, "/d"))


def test_batch_script_quotes_the_command_and_writes_an_exit_record(tmp_path):
    fleet = slurm_fleet({})
    request = request_for(fleet)
    script = batch_script(request, str(tmp_path))
    assert script.startswith("#!/bin/bash\n")
    assert "export SEED=7" in script
    # Run it for real: the quoting must survive bash, and the exit record must appear.
    request = RunRequest(
        request.job,
        request.pool,
        request.allocation,
        1,
        ["bash", "-c", 'echo "$SEED:$1"; exit 3', "x", "it's"],
        {"SEED": "7"},
    )
    done = subprocess.run(
        ["bash", "-c", batch_script(request, str(tmp_path))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 3 and done.stdout == "7:it's\n"
    assert json.loads((tmp_path / "exit.json").read_text())["exit_code"] == 3


def test_an_environment_name_the_shell_cannot_hold_is_refused():
    fleet = slurm_fleet({})
    request = request_for(fleet)
    bad = RunRequest(request.job, request.pool, request.allocation, 1, ["true"], {"A-B": "1"})
    with pytest.raises(ValueError, match="A-B"):
        batch_script(bad, "/d")


@pytest.mark.parametrize("state", sorted(ENDINGS))
def test_every_terminal_state_maps_to_an_ending(state):
    backend, scripted, _ = started()
    scripted.answers["squeue"] = f"4242|{state}|Reason|2026-11-25T09:00:00\n"
    scripted.answers["scontrol"] = "JobId=4242 JobState=X ExitCode=2:0 Comment=x\n"
    [outcome] = backend.poll(2000.0)
    ending = ENDINGS[state][0]
    assert outcome.ending is ending
    assert state in outcome.reason
    if ending is Ending.LOST:
        assert outcome.exit_code in (2, None)  # lost runs are re-queued whatever the code


def test_a_failure_carries_its_exit_code_and_a_signal_reads_as_128_plus():
    backend, scripted, _ = started()
    scripted.answers["squeue"] = "4242|FAILED|NonZeroExitCode|2026-11-25T09:00:00\n"
    scripted.answers["scontrol"] = "JobId=4242 ExitCode=3:0\n"
    [outcome] = backend.poll(2000.0)
    assert (outcome.ending, outcome.exit_code) == (Ending.FAILED, 3)
    assert "exit 3" in outcome.reason
    backend, scripted, _ = started()
    scripted.answers["squeue"] = "4242|TIMEOUT|TimeLimit|2026-11-25T09:00:00\n"
    scripted.answers["scontrol"] = "JobId=4242 ExitCode=0:15\n"
    [outcome] = backend.poll(2000.0)
    assert (outcome.ending, outcome.exit_code) == (Ending.FAILED, 143)
    assert "time limit" in outcome.reason


def test_running_and_pending_jobs_are_left_alone_and_their_states_become_events():
    backend, scripted, _ = started()
    scripted.answers["squeue"] = "4242|PENDING|Resources|Unknown\n"
    assert backend.poll(1100.0) == []
    backend._next_poll = 0.0
    scripted.answers["squeue"] = "4242|RUNNING|None|2026-11-25T10:00:00\n"
    assert backend.poll(1200.0) == []
    details = [detail for _, _, detail in backend.drain_events()]
    assert "Slurm job 4242: PENDING (Resources)" in details
    assert "Slurm job 4242: RUNNING" in details
    assert backend.drain_events() == []


def test_polls_wait_for_the_interval():
    backend, scripted, _ = started({"poll_interval_s": 10})
    scripted.answers["squeue"] = "4242|RUNNING|None|Unknown\n"
    backend.poll(1000.0)
    before = len(scripted.called("squeue"))
    backend.poll(1005.0)
    assert len(scripted.called("squeue")) == before
    backend.poll(1011.0)
    assert len(scripted.called("squeue")) == before + 1


def test_a_job_slurm_keeps_pending_too_long_is_taken_back():
    backend, scripted, _ = started({"pending_timeout_s": 300})
    scripted.answers["squeue"] = "4242|PENDING|Priority|Unknown\n"
    [outcome] = backend.poll(1000.0 + 301)
    assert outcome.ending is Ending.LOST and "pending" in outcome.reason
    assert "Priority" in outcome.reason
    assert scripted.called("scancel") == [["scancel", "4242"]]


def test_an_unreachable_controller_loses_nothing():
    backend, scripted, _ = started()
    scripted.answers["squeue"] = BackendUnavailable("squeue: Unable to contact slurm controller")
    assert backend.poll(1100.0) == []
    assert not backend.reachable
    backend._next_poll = 0.0
    scripted.answers["squeue"] = "4242|COMPLETED|None|2026-11-25T09:00:00\n"
    scripted.answers["scontrol"] = "JobId=4242 ExitCode=0:0\n"
    [outcome] = backend.poll(1200.0)
    assert outcome.ending is Ending.COMPLETED and backend.reachable
    details = [detail for _, _, detail in backend.drain_events()]
    assert any("not answering" in d for d in details) and "controller answering again" in details


def test_a_job_slurm_forgot_is_settled_by_its_exit_record_or_lost():
    backend, scripted, _ = started()
    scripted.answers["squeue"] = SlurmError("squeue: Invalid job id specified")
    scripted.answers["sacct"] = SlurmError("Slurm accounting storage is disabled")
    scripted.answers["cat"] = '{"exit_code": 0, "ended_at": 1500}\n'
    [outcome] = backend.poll(2000.0)
    assert (outcome.ending, outcome.ended_at) == (Ending.COMPLETED, 1500.0)
    assert "exit record" in outcome.reason
    backend, scripted, _ = started()
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = SlurmError("Slurm accounting storage is disabled")
    scripted.answers["cat"] = SlurmError("cat: exit.json: No such file or directory")
    [outcome] = backend.poll(2000.0)
    assert outcome.ending is Ending.LOST and "no longer knows job 4242" in outcome.reason


def local_time(epoch: float) -> str:
    """An epoch as Slurm's `standard` time format prints it (local time)."""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%dT%H:%M:%S")


def sacct_line(state: str, code: str, end: float | None, submit: float, name="ark-j1") -> str:
    """One line of `sacct -P -o State,ExitCode,End,Submit,JobName`."""
    ended = "Unknown" if end is None else local_time(end)
    return f"{state}|{code}|{ended}|{local_time(submit)}|{name}\n"


def test_sacct_is_asked_first_where_the_site_keeps_accounting():
    backend, scripted, _ = started()  # submitted at 1000
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = sacct_line("NODE_FAIL", "0:0", 1500, 1001)
    [outcome] = backend.poll(2000.0)
    assert outcome.ending is Ending.LOST and "sacct" in outcome.reason
    assert outcome.ended_at == 1500.0
    assert scripted.called("cat") == []
    [args] = scripted.called("sacct")
    assert "--duplicates" in args and "-j" in args


@pytest.mark.parametrize(
    "silent_accounting",
    [
        "",  # no record of this submission yet: slurmdbd lags the controller
        BackendUnavailable("sacct: slurmdbd not responding"),
        SlurmError("sacct: error: Problem talking to the database"),
        sacct_line("RUNNING", "0:0", None, 1001),  # never heard it end
    ],
    ids=["no-record-yet", "dbd-away", "dbd-error", "still-running"],
)
def test_a_forgotten_job_accounting_cannot_settle_yet_is_asked_again_not_run_twice(
    silent_accounting,
):
    # The controller forgot the job and its exit record is gone: only accounting can tell
    # how it ended, and it cannot say yet. Calling it lost now would place a job that may
    # well have ended, and so run it twice; it is asked again until accounting_wait_s.
    backend, scripted, _ = started({"accounting_wait_s": 120})
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = silent_accounting
    scripted.answers["cat"] = SlurmError("cat: exit.json: No such file or directory")
    for now in (2000.0, 2030.0, 2060.0, 2119.0):
        backend._next_poll = 0.0
        assert backend.poll(now) == [], now
    assert len(scripted.called("sacct")) == 4  # asked at every poll, not given up on
    undecided = [d for _, _, d in backend.drain_events() if "asking again" in d]
    assert len(undecided) == 1  # said once, not once per poll
    # Accounting answers in time: settled by it, never placed again.
    scripted.answers["sacct"] = sacct_line("FAILED", "5:0", 1500, 1001)
    backend._next_poll = 0.0
    [outcome] = backend.poll(2110.0)
    assert (outcome.ending, outcome.exit_code, outcome.ended_at) == (Ending.FAILED, 5, 1500.0)
    assert "from sacct" in outcome.reason


def test_a_forgotten_job_accounting_never_records_is_lost_after_the_wait():
    backend, scripted, _ = started({"accounting_wait_s": 120})
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = ""  # never a record
    scripted.answers["cat"] = SlurmError("cat: exit.json: No such file or directory")
    assert backend.poll(2000.0) == []
    backend._next_poll = 0.0
    assert backend.poll(2119.0) == []
    backend._next_poll = 0.0
    [outcome] = backend.poll(2120.0)  # the wait is bounded: then it is placed again
    assert outcome.ending is Ending.LOST and "no longer knows job 4242" in outcome.reason
    assert "after 120 s" in outcome.reason and "no record" in outcome.reason


def test_a_forgotten_job_with_an_exit_record_does_not_wait_for_accounting():
    backend, scripted, _ = started({"accounting_wait_s": 120})
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = sacct_line("RUNNING", "0:0", None, 1001)  # end not heard
    scripted.answers["cat"] = '{"exit_code": 0, "ended_at": 1500}\n'
    [outcome] = backend.poll(2000.0)
    assert (outcome.ending, outcome.ended_at) == (Ending.COMPLETED, 1500.0)
    assert "exit record" in outcome.reason


def test_an_older_job_that_had_the_same_slurm_id_is_not_taken_for_this_one():
    # A controller that lost its state numbers jobs from 1 again; accounting then holds
    # an older job of the same id and name (from an earlier life of the service).
    backend, scripted, _ = started(clock=lambda: 100_000.0)
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = (
        sacct_line("COMPLETED", "0:0", 20_000, 10_000)
        + sacct_line("FAILED", "5:0", 100_060, 100_001)
        + sacct_line("COMPLETED", "0:0", 50_000, 40_000)
    )
    [outcome] = backend.poll(100_100.0)
    assert (outcome.ending, outcome.exit_code) == (Ending.FAILED, 5)
    # Only older records: accounting has not heard of this submission, the record decides.
    backend, scripted, _ = started(clock=lambda: 100_000.0)
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = sacct_line("COMPLETED", "0:0", 20_000, 10_000)
    scripted.answers["cat"] = '{"exit_code": 3, "ended_at": 100050}\n'
    [outcome] = backend.poll(100_100.0)
    assert (outcome.ending, outcome.exit_code) == (Ending.FAILED, 3)
    assert "exit record" in outcome.reason


@pytest.mark.parametrize("name", ["ark-j1", "allocation"])
def test_a_record_is_matched_by_id_and_submit_time_whatever_name_slurmdbd_gave_it(name):
    # slurmdbd names a job "allocation" when it hears of its end before its start (the
    # controller went down with the start queued): that record is still this job's. Of
    # several records of the id, the one submitted nearest this submission is taken; a
    # job of another name is never taken for this one.
    backend, scripted, _ = started(clock=lambda: 100_000.0)
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = (
        sacct_line("COMPLETED", "0:0", 100_030, 100_000, name="someone-else")
        + sacct_line("FAILED", "5:0", 100_060, 100_001, name=name)
        + sacct_line("COMPLETED", "0:0", 100_200, 100_110, name=name)  # a later job
    )
    [outcome] = backend.poll(100_300.0)
    assert (outcome.ending, outcome.exit_code, outcome.ended_at) == (Ending.FAILED, 5, 100_060)
    [args] = scripted.called("sacct")
    assert not any(a.startswith("--name") for a in args)  # the name is judged here
    # Only another job's record: accounting has not heard of this one yet.
    backend, scripted, _ = started({"accounting_wait_s": 120}, clock=lambda: 100_000.0)
    scripted.answers["squeue"] = ""
    scripted.answers["sacct"] = sacct_line("FAILED", "5:0", 100_060, 100_001, name="other|x")
    scripted.answers["cat"] = SlurmError("cat: exit.json: No such file or directory")
    assert backend.poll(100_100.0) == []


def test_after_a_restart_a_submission_whose_id_was_never_recorded_is_found_by_name():
    _fleet, backend, scripted = make_backend()
    scripted.answers["squeue"] = lambda args: (
        "777|arkwright:j1:2\n778|arkwright:j1:1\n"
        if any(a.startswith("--name=") for a in args)
        else "777|RUNNING|None|Unknown\n"
    )
    handle = backend.recover("j1", None, 2, 1000.0)
    assert handle["slurm_job_id"] == "777"  # attempt 2's, not attempt 1's leftover
    assert scripted.called("sbatch") == []  # adopted, never submitted twice
    scripted.answers["squeue"] = ""
    assert backend.recover("j2", None, 1, 1000.0) is None  # never reached Slurm


def test_at_restart_an_unreachable_controller_keeps_the_run_tracked():
    _fleet, backend, scripted = make_backend()
    scripted.answers["squeue"] = BackendUnavailable("Unable to contact slurm controller")
    handle = backend.recover("j1", {"slurm_job_id": "9", "dir": "/d"}, 1, 1000.0)
    assert handle["slurm_job_id"] == "9"
    assert "j1" in backend._tracked


def test_a_cancel_while_the_controller_is_away_is_paid_when_it_answers():
    backend, scripted, handle = started()
    scripted.answers["scancel"] = BackendUnavailable("Unable to contact slurm controller")
    backend.cancel("j1", handle)
    assert backend._cancels_owed == {"4242": "j1"}
    scripted.answers["scancel"] = ""
    backend.poll(5000.0)
    assert backend._cancels_owed == {} and len(scripted.called("scancel")) == 2


def test_sbatch_refusal_is_an_error_naming_slurms_reason():
    fleet, backend, scripted = make_backend()
    scripted.answers["sbatch"] = SlurmError(
        "sbatch: error: Batch job submission failed: Invalid partition name specified"
    )
    with pytest.raises(StartRefused, match="Invalid partition"):
        backend.start(request_for(fleet))
    assert backend._tracked == {}


def test_commands_go_over_ssh_as_one_quoted_string():
    commands = SlurmCli(
        SlurmSettings(
            ssh="ark@login", ssh_options=["-p", "2222"], slurm_conf="/etc/s.conf", run_as="service"
        )
    )
    argv = commands._argv(["squeue", "--name=a b"])
    assert argv[:6] == ["ssh", "-o", "BatchMode=yes", "-p", "2222", "ark@login"]
    assert argv[6] == "env SLURM_CONF=/etc/s.conf squeue '--name=a b'"


def test_a_missing_slurm_install_reads_as_unreachable():
    commands = SlurmCli(SlurmSettings())
    with pytest.raises(BackendUnavailable, match="not installed"):
        commands._argv = lambda args, as_user=None: ["/nonexistent/squeue"]  # type: ignore[method-assign]
        commands.run(["squeue"])


def test_fleet_files_name_bad_slurm_settings():
    with pytest.raises(FleetFileError, match="needs backend = 'slurm'"):
        slurm_fleet({"partitions": {}}, backend="simulated")
    with pytest.raises(FleetFileError, match="'nope' is not a pool of this site"):
        slurm_fleet({"partitions": {"nope": "x"}})
    with pytest.raises(FleetFileError, match="account"):
        slurm_fleet({"account": "{user}"})
    with pytest.raises(FleetFileError, match="poll_interval_s"):
        slurm_fleet({"poll_interval_s": 0})
    with pytest.raises(FleetFileError, match="backend"):
        slurm_fleet(None, backend="kubernetes")
    assert slurm_fleet(None).backend_settings["hpc"] == SlurmSettings()


def test_the_example_slurm_fleet_reads_and_says_how_to_reach_its_controller():
    from arkwright.fleets import load_fleet

    fleet = load_fleet(Path(__file__).resolve().parents[2] / "examples" / "slurm-site.toml")
    settings = fleet.backend_settings["isambard"]
    assert settings.run_as == "owner" and settings.partition_for("gh200") == "workq"
    assert settings.identity.account_for("alice", "research") == "asmith"
    assert settings.identity.account_for("bob", "research") == "bob"
    assert settings.gres_for("gh200", 4) == "gpu:gh200:4"
    assert "cloud-uk" not in fleet.backend_settings


def test_job_directories_are_made_here_or_on_the_login_node(tmp_path):
    local = SlurmCli(SlurmSettings())
    local.prepare(str(tmp_path / "j1" / "attempt-1"))
    assert (tmp_path / "j1" / "attempt-1").is_dir()
    remote = ScriptedSlurm(SlurmSettings(ssh="ark@login", run_as="service"))
    SlurmCli.prepare(remote, "/cluster/j1")
    assert remote.called("mkdir") == [["mkdir", "-p", "/cluster/j1"]]


def test_a_job_slurm_requeued_by_itself_is_taken_back():
    from arkwright.backends.slurm_client import SlurmStatus

    backend, scripted, _ = started()
    scripted.statuses = lambda ids: {"4242": SlurmStatus("PENDING", "BeginTime", None, None, 1)}
    [outcome] = backend.poll(1100.0)
    assert outcome.ending is Ending.LOST and "requeued by itself (BeginTime)" in outcome.reason
    assert scripted.called("scancel") == [["scancel", "4242"]]


def test_a_submission_whose_answer_was_lost_is_cancelled_if_slurm_took_it():
    fleet, backend, scripted = make_backend()
    scripted.answers["sbatch"] = BackendUnavailable("sbatch did not answer in 30 s")
    with pytest.raises(BackendUnavailable):
        backend.start(request_for(fleet, attempt=1))
    # The controller answers again: attempt 1 did reach it (778); attempt 2 is the live run.
    scripted.answers["squeue"] = lambda args: (
        "778|arkwright:j1:1\n779|arkwright:j1:2\n"
        if any(a.startswith("--name=") for a in args)
        else ""
    )
    backend.poll(2000.0)
    assert scripted.called("scancel") == [["scancel", "778"]]
    assert any("Slurm took attempt 1 after all" in d for _, _, d in backend.drain_events())
    backend._next_poll = 0.0
    backend.poll(3000.0)
    assert scripted.called("scancel") == [["scancel", "778"]]  # swept once, then forgotten

"""Slurm: jobs submitted as their owners (runuser / slurmrestd impersonation), and one
job Slurm will not answer for never stops the site's other runs being settled."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from arkwright.backends.accounts import AccountRefused
from arkwright.backends.base import Ending
from arkwright.backends.slurm_client import SlurmError, Submission
from arkwright.backends.slurm_rest import SlurmRest
from arkwright.fleets.loader import FleetFileError
from arkwright.fleets.slurm_settings import SlurmSettings
from tests.backends.test_slurm_backend import make_backend, request_for, slurm_fleet


def test_one_job_slurm_will_not_answer_for_does_not_stop_the_others():
    fleet, backend, scripted = make_backend({"poll_interval_s": 0.1})
    ids = iter(["101\n", "102\n"])
    scripted.answers["sbatch"] = lambda args: next(ids)
    first = request_for(fleet, gpus=1)
    backend.start(first)
    second = dataclasses.replace(request_for(fleet, gpus=1), job=dataclasses.replace(first.job))
    second.job.job_id = "j2"
    backend.start(second)

    def squeue(args):
        jobs = next(a for a in args if a.startswith("--jobs=")).removeprefix("--jobs=")
        if "101" in jobs.split(","):
            return SlurmError("squeue: a refusal about job 101 alone")
        return "102|COMPLETED|None|2026-12-01T10:00:00\n"

    scripted.answers["squeue"] = squeue
    scripted.answers["scontrol"] = "JobId=102 ExitCode=0:0\n"
    [outcome] = backend.poll(2000.0)
    assert outcome.job_id == "j2" and outcome.ending is Ending.COMPLETED
    assert "j1" in backend._tracked  # asked again next time, not lost
    events = [e for e in backend.drain_events() if e[0] == "j1"]
    assert any("would not answer" in detail for _, _, detail in events)
    assert backend.poll(3000.0) == []  # still refused: still tracked, no second event
    assert not [e for e in backend.drain_events() if "would not answer" in e[2]]


def test_run_as_owner_needs_local_commands_or_rest():
    for table in ({"ssh": "ark@login", "run_as": "owner"}, {"ssh": "ark@login"}):
        with pytest.raises(FleetFileError, match=r"run_as = 'owner' \(the default\) needs"):
            slurm_fleet(table)
    assert slurm_fleet({"ssh": "ark@login", "run_as": "service"})  # shared, said explicitly


def test_an_owner_without_an_account_is_refused_before_anything_is_submitted():
    fleet, backend, scripted = make_backend({"run_as": "owner"})
    backend.accounts.euid = 0  # as the root service; the account does not exist anyway
    request = dataclasses.replace(request_for(fleet), owner="arkt-nobody-here")
    with pytest.raises(AccountRefused, match="does not exist here"):
        backend.start(request)
    assert scripted.called("sbatch") == [] and scripted.prepared == []


def test_rest_submits_in_the_owners_name():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"job_id": 7})

    settings = SlurmSettings(rest_url="http://slurm:6820", rest_user="slurm")
    rest = SlurmRest(settings, transport=httpx.MockTransport(answer))
    submission = Submission("ark-j1", "c", "gpu", 1, "gpu:1", 1, "/w", user="arkt-alice")
    assert rest.submit("#!/bin/bash\n", submission) == "7"
    assert seen[-1].headers["X-SLURM-USER-NAME"] == "arkt-alice"
    rest.cancel("7")  # everything else is asked as the service's SlurmUser
    assert seen[-1].headers["X-SLURM-USER-NAME"] == "slurm"

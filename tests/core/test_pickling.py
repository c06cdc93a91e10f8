"""The core's value objects cross process boundaries (`sim/compare.py` sends fleets, jobs
and configs to workers; the service's processes exchange decisions), on the compiled core
as on the plain one (`core/pickling.py`)."""

from __future__ import annotations

import pickle

from arkwright.core.budget import Budget
from arkwright.core.config import SchedulerConfig
from arkwright.core.decisions import Cancelled, Held, Preempt, Reject, Start
from arkwright.core.gang import GangShape
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import Classification, DataPolicy
from arkwright.fleets import load_fleet


def round_trip(value):
    return pickle.loads(pickle.dumps(value))


def test_fleets_configs_and_policies_come_back_equal():
    fleet = load_fleet("uk-2026")
    back = round_trip(fleet)
    assert back == fleet and back.tenant_by_name == fleet.tenant_by_name  # rebuilt, not lost
    assert round_trip(fleet.pools[3]) == fleet.pools[3]
    config = SchedulerConfig(max_jobs_per_pass=7)
    assert round_trip(config) == config and round_trip(config).max_jobs_per_pass == 7
    policy = DataPolicy(residency=frozenset({"UK"}), classification=Classification.SECRET)
    assert round_trip(policy) == policy
    assert round_trip(GangShape(4, 2)) == GangShape(4, 2)
    budget = Budget.parse("2e6gbp")
    assert round_trip(budget) == budget
    assert round_trip(SchedulerConfig(budgets={"nhs": budget})).budgets == {"nhs": budget}


def test_a_job_keeps_its_spec_and_the_cores_state():
    job = Job("j1", "nhs", 8, 3600.0, 12.5, priority=PriorityClass.HIGH, nodes=2)
    job.seq, job.pool_index, job.allocation, job.attempts = 41, 3, ((0, 4), (1, 4)), 2
    back = round_trip(job)
    names = Job.__dataclass_fields__
    assert [getattr(back, n) for n in names] == [getattr(job, n) for n in names]


def test_decisions_keep_their_type_and_fields():
    job = Job("j2", "research", 1, 60.0, 0.0)
    for decision in (
        Start(job, 1, ((5, 1),), 9.0),
        Preempt(job, 1, "preempted for j9", 9.0, 30.0, 1, 2.0, ((5, 1),)),
        Reject(job, "over budget", 9.0),
        Cancelled(job, "dependency never satisfied", 9.0),
        Held(job, "Dependency", 9.0),
    ):
        back = round_trip(decision)
        assert type(back) is type(decision)
        assert back.job.job_id == "j2"
        assert [getattr(back, n) for n in decision.__dataclass_fields__ if n != "job"] == [
            getattr(decision, n) for n in decision.__dataclass_fields__ if n != "job"
        ]

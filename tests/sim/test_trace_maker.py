"""The generated Job maker builds exactly what Job() builds, or steps aside."""

from __future__ import annotations

import math

import pytest

from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import DataPolicy
from arkwright.fleets import load_fleet
from arkwright.sim import trace_cache, trace_maker
from arkwright.sim.synth import synthesize
from arkwright.sim.trace import read_trace, read_trace_by_rows, write_trace
from arkwright.sim.trace_fast import columns_from_csv
from arkwright.sim.trace_maker import make_jobs

FIELDS = [name for name in Job.__dataclass_fields__]

# The compiled core's Job cannot be made by object.__new__, so there the maker always
# steps aside (and the readers build with Job(...)); what it builds is tested on the
# plain-Python core, which `make test` runs these tests on too.
PLAIN_JOB = trace_maker._plain_dataclass()
plain_job_only = pytest.mark.skipif(not PLAIN_JOB, reason="the compiled core's Job")


def state(job: Job) -> list:
    return [(name, getattr(job, name), type(getattr(job, name))) for name in FIELDS]


def rows(tenant: bool = True):
    given = {"tenant": ["t", "t", "u"]} if tenant else {}
    return given | {
        "job_id": ["a", "b", "c"],
        "gpus": [1, 8, 64],
        "duration_s": [10.0, 20.5, 3600.0],
        "submit_time": [0.0, 1.0, 1.0],
        "deadline": [math.nan, 90.0, math.nan],
    }


@plain_job_only
def test_made_jobs_equal_jobs_from_init_slot_by_slot():
    shared = ("t1", PriorityClass.HIGH)
    other = ("t2", PriorityClass.LOW)
    made = make_jobs(
        rows(tenant=False),
        3,
        repeated=("tenant", "priority"),
        combo=[shared, other, shared],
        optional=("deadline",),
    )
    expected = [
        Job("a", "t1", 1, 10.0, 0.0, priority=PriorityClass.HIGH),
        Job("b", "t2", 8, 20.5, 1.0, priority=PriorityClass.LOW, deadline=90.0),
        Job("c", "t1", 64, 3600.0, 1.0, priority=PriorityClass.HIGH),
    ]
    assert [state(j) for j in made] == [state(j) for j in expected]
    assert made[0].tenant is made[2].tenant  # a combination's values are shared, not copied


@plain_job_only
def test_a_default_factory_gives_each_job_its_own_value_as_init_does():
    made = make_jobs(rows(), 3, optional=("deadline",))
    assert made[0].data_policy == DataPolicy() == Job("x", "t", 1, 1.0, 0.0).data_policy
    assert made[0].data_policy is not made[1].data_policy


@plain_job_only
def test_a_required_field_missing_or_an_unknown_field_is_a_type_error():
    given = rows()
    del given["gpus"]
    with pytest.raises(TypeError, match="gpus"):
        make_jobs(given, 3)
    with pytest.raises(TypeError, match="colour"):
        make_jobs(rows() | {"colour": ["r", "g", "b"]}, 3)


@pytest.mark.skipif(PLAIN_JOB, reason="plain-Python Job: the maker is used")
def test_it_steps_aside_for_the_compiled_job():
    assert make_jobs(rows(), 3, optional=("deadline",)) is None


@plain_job_only  # on the compiled core it steps aside before this matters
def test_it_steps_aside_when_job_is_not_a_plain_dataclass(monkeypatch):
    monkeypatch.setattr(trace_maker, "_plain_dataclass", lambda: False)
    assert make_jobs(rows(), 3) is None


@plain_job_only  # on the compiled core it steps aside before this matters
def test_it_steps_aside_when_its_first_job_differs_from_init(monkeypatch):
    real = trace_maker._maker.__wrapped__

    def wrong(*args):
        make = real(*args)

        def off_by_one(*values):
            job = make(*values)
            job.gpus += 1
            return job

        return off_by_one

    monkeypatch.setattr(trace_maker, "_maker", wrong)
    assert make_jobs(rows(), 3, optional=("deadline",)) is None


@pytest.mark.parametrize("plain", [pytest.param(True, marks=plain_job_only), False])
def test_a_trace_reads_the_same_with_or_without_the_maker(tmp_path, monkeypatch, plain):
    monkeypatch.setattr(trace_cache, "MIN_ROWS", 1)
    monkeypatch.setattr(trace_maker, "_plain_dataclass", lambda: plain)
    path = tmp_path / "t.csv"
    write_trace(path, synthesize(load_fleet("uk-2026"), 300, 0.9, 4))
    columns = columns_from_csv(path.read_bytes())
    assert columns is not None
    by_rows = [state(j) for j in read_trace_by_rows(path).jobs]
    assert [state(j) for j in columns.jobs()] == by_rows
    assert [state(j) for j in read_trace(path).jobs] == by_rows  # from CSV, copy written
    assert [state(j) for j in read_trace(path).jobs] == by_rows  # from the copy

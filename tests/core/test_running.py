"""The running set's run lists: in `end_key` order whatever order jobs start and end in,
ties in expected end included (the list keeps only the ends and settles ties by `seq`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.job import JobState
from arkwright.core.running import RunningSet, end_key
from tests.conftest import make_job


@st.composite
def runs(draw):
    """Jobs started in any order, with few distinct request lengths and start times so
    expected ends tie often; then an order to end them in and how many end."""
    count = draw(st.integers(1, 40))
    seqs = draw(st.permutations(range(count)))
    jobs = []
    for n, seq in enumerate(seqs):
        job = make_job(f"j{n}", time_limit_s=draw(st.sampled_from([100.0, 200.0, 300.0])))
        job.seq = seq
        jobs.append((job, draw(st.sampled_from([0.0, 100.0, 200.0]))))
    ending = draw(st.permutations(range(count)))
    return jobs, ending, draw(st.integers(0, count))


@given(runs())
def test_run_lists_stay_in_end_key_order_with_ties(case):
    jobs, ending, ended = case
    running = RunningSet(1)
    for job, started in jobs:
        running.mark_running(job, 0, ((0, 1),), 1.0, started)
        running.check()
    expected = sorted((job for job, _ in jobs), key=end_key)
    assert running.by_end[0] == expected
    gone = {jobs[n][0].job_id for n in ending[:ended]}
    for n in ending[:ended]:
        running.release(jobs[n][0])
        running.check()
    assert running.by_end[0] == [job for job in expected if job.job_id not in gone]
    until = 300.0
    assert running.ending_by(0, until) == [
        job for job in expected if job.job_id not in gone and job.expected_end <= until
    ]


def test_releasing_a_job_not_running_there_is_an_error():
    running = RunningSet(1)
    a, b = make_job("a", time_limit_s=100.0), make_job("b", time_limit_s=100.0)
    a.seq, b.seq = 0, 1
    running.mark_running(a, 0, ((0, 1),), 1.0, 0.0)
    b.pool_index, b.expected_end, b.state = 0, a.expected_end, JobState.RUNNING
    with pytest.raises(AssertionError, match="missing"):
        running.release(b)  # same expected end as a: the tie walk must not take a
    assert running.by_end[0] == [a]

"""How much a pass looks at: Slurm-style bounds with continuation, and the shortcuts that
keep a pass from examining jobs that cannot do anything (their decisions are held to the
frozen core by test_differential.py; these hold the work)."""

from __future__ import annotations

from arkwright.core.decisions import Start
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler, SchedulerConfig
from tests.conftest import make_job, one_pool_fleet


def started(decisions) -> list[str]:
    return [d.job.job_id for d in decisions if isinstance(d, Start)]


def test_a_pass_that_hits_its_bound_continues_in_the_next():
    config = SchedulerConfig(max_jobs_per_pass=2)
    sched = Scheduler(one_pool_fleet(nodes=1), PolicySpec.parse("backfill"), config=config)
    for n in range(5):
        sched.submit(make_job(f"j{n}", gpus=1), 0.0)
    assert started(sched.schedule(0.0)) == ["j0", "j1"]
    assert sched.stats.bound_hits == 1
    # Nothing new happened, yet the next pass goes on where this one stopped.
    assert started(sched.schedule(1.0)) == ["j2", "j3"]
    assert started(sched.schedule(2.0)) == ["j4"]
    assert sched.stats.examined_per_pass == [2, 2, 1]


def test_a_programme_that_had_its_turn_lets_the_others_through():
    config = SchedulerConfig(max_jobs_per_tenant_per_pass=1)
    sched = Scheduler(one_pool_fleet(nodes=1), PolicySpec.parse("backfill"), config=config)
    for n in range(3):
        sched.submit(make_job(f"a{n}", gpus=1, tenant="a"), 0.0)
    sched.submit(make_job("b0", gpus=1, tenant="b", submit=1.0), 1.0)
    assert started(sched.schedule(1.0)) == ["a0", "b0"]


def blocked_pool(policy: str = "backfill") -> Scheduler:
    """Two nodes of 8: one runs a long job, the other 7 GPUs of short work; a 16-GPU
    job waits holding the pool's reservation; 40 more 8-GPU jobs of another programme
    wait behind it, then one 1-GPU job."""
    sched = Scheduler(one_pool_fleet(nodes=2), PolicySpec.parse(policy))
    sched.submit(make_job("long", gpus=8, duration=10_000), 0.0)
    sched.submit(make_job("short", gpus=7, duration=100), 0.0)
    sched.submit(make_job("holder", gpus=16, duration=100, submit=1.0), 1.0)
    for n in range(40):
        sched.submit(make_job(f"big{n}", gpus=8, duration=50, tenant="b", submit=2.0), 2.0)
    sched.submit(make_job("tiny", gpus=1, duration=10, tenant="b", submit=3.0), 3.0)
    assert started(sched.schedule(3.0)) == ["long", "short", "tiny"]
    assert sched.reservations.pool_of == {"holder": 0}
    return sched


def test_jobs_too_large_for_the_room_left_are_passed_over_unexamined():
    sched = blocked_pool()
    sched.submit(make_job("tiny2", gpus=1, duration=10, tenant="b", submit=4.0), 4.0)
    sched.finish("tiny", 13.0)  # one GPU free again: no 8-GPU job fits, 1-GPU jobs do
    assert started(sched.schedule(13.0)) == ["tiny2"]
    # The holder is examined (it keeps its claim), then tiny2: not the 40 between.
    assert sched.stats.examined_per_pass[-1] <= 2


def test_a_pool_held_by_a_job_ahead_is_not_asked_for_again():
    """Once a pass finds the pool's reservation held by a job ahead, no job behind asks
    for it again (here: arrivals, when nothing came free, so the holder is not seen)."""
    sched = blocked_pool()
    asked: list[str] = []
    reserve = sched.reservations.reserve

    def counting(job, *args):
        asked.append(job.job_id)
        return reserve(job, *args)

    sched.reservations.reserve = counting
    for n in range(5):
        sched.submit(make_job(f"late{n}", gpus=8, duration=50, tenant="b", submit=5.0), 5.0)
    assert started(sched.schedule(5.0)) == []
    assert asked == ["late0"]
    assert sched.reservations.pool_of == {"holder": 0}

"""Carbon deferral as a wait outside the queue: a flexible job that waits for a cleaner
hour holds no reservation, blocks and preempts no one, costs later passes nothing, and
comes back when the answer can change."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from arkwright.core.decisions import Held, Start
from arkwright.core.holds import CARBON
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler
from arkwright.core.throughput import ThroughputTable
from arkwright.sim.simulator import Simulator
from tests.conftest import make_job
from tests.core.test_placement import two_sites
from tests.core.test_properties import copy_jobs, fleets, traces

DIRTY_THEN_CLEAN = [400.0] * 6 + [50.0] * 18  # hours 0-5 dirty, 6-23 clean


def carbon_scheduler(policy: str = "carbon") -> Scheduler:
    fleet = two_sites(carbon_a=400, carbon_b=400, hourly_b=DIRTY_THEN_CLEAN)
    return Scheduler(fleet, PolicySpec.parse(policy), ThroughputTable.flat())


def flexible(job_id: str, gpus: int = 2, **extra):
    return make_job(job_id, gpus=gpus, duration=3600, flexible=True, deadline=86_400.0, **extra)


def test_a_waiting_job_leaves_the_queue_is_told_once_and_starts_in_the_clean_hour():
    sched = carbon_scheduler()
    sched.submit(flexible("f"), 0.0)
    first = sched.schedule(0.0)
    assert [(type(d), d.reason) for d in first] == [(Held, CARBON)]
    assert (sched.pending, sched.held) == (0, 1)
    assert "f" not in sched.reservations.pool_of
    # Still dirty an hour later: it is asked again, waits again, and nobody is told again.
    assert [d for d in sched.schedule(3600.0, full=True) if isinstance(d, Held | Start)] == []
    assert sched.held == 1
    starts = [d for d in sched.schedule(6 * 3600.0, full=True) if isinstance(d, Start)]
    assert [d.job.job_id for d in starts] == ["f"]
    assert (sched.pending, sched.held) == (0, 0)


def test_a_waiting_job_keeps_no_one_off_a_pool():
    """The frozen core kept a deferred job in the queue, where backfill gave it a
    reservation at "now": a rigid job behind it that could use only that pool waited."""
    sched = carbon_scheduler()
    sched.submit(flexible("f", gpus=8), 0.0)
    sched.submit(make_job("rigid", gpus=8, duration=36_000, gpu_types=frozenset({"H100"})), 0.0)
    starts = [d.job.job_id for d in sched.schedule(0.0) if isinstance(d, Start)]
    assert starts == ["rigid"]
    assert sched.held == 1


def test_a_wait_that_ends_without_room_says_so():
    """At the clean hour the job is no longer deferred but cannot start (the pools are
    full): the driver is told it no longer waits for carbon (an empty reason)."""
    sched = carbon_scheduler("carbon")
    sched.submit(flexible("f", gpus=8), 0.0)
    sched.schedule(0.0)
    for name in ("x", "y"):
        sched.submit(make_job(name, gpus=8, duration=10 * 3600), 60.0)
    assert len([d for d in sched.schedule(60.0) if isinstance(d, Start)]) == 2
    later = sched.schedule(6 * 3600.0, full=True)
    assert [(d.job.job_id, d.reason) for d in later if isinstance(d, Held)] == [("f", "")]
    assert (sched.pending, sched.held) == (1, 0)


def test_pass_work_does_not_grow_with_the_jobs_that_wait():
    examined = []
    for waiting in (5, 400):
        sched = carbon_scheduler()
        for n in range(waiting):
            sched.submit(flexible(f"f{n}", gpus=1), 0.0)
        sched.schedule(0.0, full=True)  # the tick's pass: deep enough for all of them
        assert sched.held == waiting
        before = len(sched.stats.examined_per_pass)
        sched.submit(make_job("rigid", gpus=1, duration=7200), 60.0)
        sched.schedule(60.0)
        sched.submit(make_job("second", gpus=1), 300.0)
        sched.schedule(300.0, full=True)
        examined.append(sched.stats.examined_per_pass[before:])
    assert examined[0] == examined[1] == [1, 1]


def test_a_cancelled_waiting_job_frees_its_array_slot_and_never_comes_back():
    sched = carbon_scheduler()
    tasks = [flexible(f"a_{n}", array_id="a", array_limit=1) for n in range(2)]
    for task in tasks:
        sched.submit(task, 0.0)
    sched.schedule(0.0)
    assert (sched.pending, sched.held) == (0, 2)  # one waits for carbon, one for its slot
    sched.cancel("a_0", 30.0)
    sched.schedule(30.0)  # a_1 took the slot, and waits for carbon in its turn
    assert sched.held == 1
    starts = [d.job.job_id for d in sched.schedule(6 * 3600.0, full=True) if isinstance(d, Start)]
    assert starts == ["a_1"]
    sched.check_invariants()


@settings(max_examples=40, deadline=None)
@given(
    fleet=fleets(),
    jobs=traces(),
    policy=st.sampled_from(["carbon", "fairshare+carbon", "fifo+carbon"]),
)
def test_every_waiting_job_comes_back_and_nothing_is_lost(fleet, jobs, policy):
    """Random fleets and traces with flexible jobs: the audit holds after every instant,
    and every accepted job completes (none is left in a carbon wait)."""
    started: dict[str, int] = {}

    def observe(decision, scheduler):
        if isinstance(decision, Start):
            started[decision.job.job_id] = started.get(decision.job.job_id, 0) + 1

    result = Simulator(fleet, PolicySpec.parse(policy), audit=True, observer=observe).run(
        copy_jobs(jobs)
    )
    summary = result.summary
    assert summary["jobs_unfinished"] == 0
    assert summary["jobs_completed"] + summary["jobs_rejected"] == len(jobs)
    assert all(count >= 1 for count in started.values())


def test_a_wait_that_is_up_starts_the_job_at_the_next_pass_whatever_triggered_it():
    """The first pass after the wait is up may be any event's, not the periodic tick's:
    the job comes back as an arrival and that pass starts it."""
    sched = carbon_scheduler()
    sched.submit(flexible("f"), 0.0)
    sched.schedule(0.0)
    starts = [d.job.job_id for d in sched.schedule(6 * 3600.0 + 10) if isinstance(d, Start)]
    assert starts == ["f"]

"""How much a pass looks at: Slurm-style bounds with continuation, and the shortcuts that
keep a pass from examining jobs that cannot do anything (their decisions are held to the
frozen core by test_differential.py; these hold the work)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.decisions import Start
from arkwright.core.job import PriorityClass
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


def test_a_pass_that_hits_its_bound_and_changes_nothing_leaves_no_continuation():
    """A continuation lets the next pass reach jobs this one did not, once the jobs
    ahead have moved. A pass that started, preempted and reserved nothing leaves the
    state as it found it: the next would spend its bound on the same jobs again, so none
    is made until something changes (a finish, an arrival, the tick)."""
    config = SchedulerConfig(max_jobs_per_pass=2)
    sched = Scheduler(one_pool_fleet(nodes=1), PolicySpec.parse("backfill"), config=config)
    sched.submit(make_job("long", gpus=4, duration=10_000), 0.0)
    assert started(sched.schedule(0.0)) == ["long"]
    sched.submit(make_job("holder", gpus=8, submit=1.0), 1.0)
    for n in range(4):  # each fits beside "long" but would delay the holder
        sched.submit(make_job(f"b{n}", gpus=4, duration=20_000, tenant="b", submit=2.0), 2.0)
    sched.submit(make_job("quick", gpus=4, duration=10, tenant="b", submit=3.0), 3.0)
    assert started(sched.schedule(3.0)) == []
    assert sched.reservations.pool_of == {"holder": 0}  # the book changed: go on
    passes, hits = sched.stats.passes, sched.stats.bound_hits
    assert started(sched.schedule(4.0)) == []  # the continuation: b0 and b1, again
    assert sched.stats.passes == passes + 1 and sched.stats.bound_hits == hits + 1
    assert sched.stats.examined_per_pass[-1] == 2
    assert started(sched.schedule(5.0)) == []  # ... which changed nothing: no pass
    assert sched.stats.passes == passes + 1
    sched.submit(make_job("late", gpus=8, submit=6.0), 6.0)
    sched.schedule(6.0)  # an arrival, nothing freed: only the arrival is examined
    assert sched.stats.examined_per_pass[-1] == 1
    sched.finish("long", 7.0)
    assert started(sched.schedule(7.0)) == ["holder"]


@given(
    policy=st.sampled_from(["backfill", "fairshare+backfill", "fairshare"]),
    jobs=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 4, 8, 16]),  # GPUs
            st.integers(1, 50),  # duration, in units of 10 s
            st.sampled_from(["a", "b"]),
            st.booleans(),  # whether a job ends (the earliest to) before this arrives
        ),
        min_size=5,
        max_size=40,
    ),
)
def test_a_pass_left_without_continuation_would_have_changed_nothing(policy, jobs):
    """The premise of leaving no continuation: after a pass that met its bound and
    changed nothing, the same pass made again (same pools, same time, nothing new)
    decides nothing and leaves the reservations and the queue as they were.

    Without preemption: a pass whose arrivals may preempt gives them a right the pass
    made again lacks, so that pass is not the same one (it skips the lists the arrivals
    were examined in, and may reach a job the first did not). Such a pass leaves no
    continuation either (docs/core.md, step 4, says why)."""
    config = SchedulerConfig(
        max_jobs_per_pass=2, max_jobs_per_event_pass=1, max_preemption_attempts_per_pass=0
    )
    sched = Scheduler(one_pool_fleet(nodes=2), PolicySpec.parse(policy), config=config)
    ends: dict[str, float] = {}
    for n, (gpus, duration, tenant, end_one) in enumerate(jobs):
        now = 10.0 * n
        if end_one and ends:
            job_id = min(ends, key=ends.__getitem__)
            sched.finish(job_id, max(now, ends.pop(job_id)))
        sched.submit(
            make_job(f"j{n}", gpus=gpus, duration=10.0 * duration, tenant=tenant, submit=now), now
        )
        hits = sched.stats.bound_hits
        for decision in sched.schedule(now):
            if isinstance(decision, Start):
                ends[decision.job.job_id] = now + decision.job.duration_s
        dirty, arrived, new = sched.take_changes(False)
        assert not arrived and not new  # no victims or holds here: only a continuation
        if sched.stats.bound_hits == hits or dirty:
            sched.carry_over(dirty)
            continue
        # Met its bound, left no continuation: make the pass again, as it would have been.
        revision, queued = sched.reservations.revision, len(sched.queue)
        sched.carry_over(sched.all_pools_mask)  # one pool: the trigger it had
        assert sched.schedule(now) == []
        assert (sched.reservations.revision, len(sched.queue)) == (revision, queued)
        sched.take_changes(False)
    sched.check_invariants()


def test_a_programme_that_had_its_turn_lets_the_others_through():
    config = SchedulerConfig(max_jobs_per_tenant_per_pass=1)
    sched = Scheduler(one_pool_fleet(nodes=1), PolicySpec.parse("backfill"), config=config)
    for n in range(3):
        sched.submit(make_job(f"a{n}", gpus=1, tenant="a"), 0.0)
    sched.submit(make_job("b0", gpus=1, tenant="b", submit=1.0), 1.0)
    assert started(sched.schedule(1.0)) == ["a0", "b0"]


def queue_behind_a_holder(config: SchedulerConfig | None = None) -> Scheduler:
    """Two nodes of 8: one runs a long job, the other 7 GPUs of short work; a 16-GPU
    job waits holding the pool's reservation; 40 more 8-GPU jobs of another programme
    wait behind it, then one 1-GPU job. Nothing scheduled yet."""
    sched = Scheduler(one_pool_fleet(nodes=2), PolicySpec.parse("backfill"), config=config)
    sched.submit(make_job("long", gpus=8, duration=10_000), 0.0)
    sched.submit(make_job("short", gpus=7, duration=100), 0.0)
    sched.submit(make_job("holder", gpus=16, duration=100, submit=1.0), 1.0)
    for n in range(40):
        sched.submit(make_job(f"big{n}", gpus=8, duration=50, tenant="b", submit=2.0), 2.0)
    sched.submit(make_job("tiny", gpus=1, duration=10, tenant="b", submit=3.0), 3.0)
    return sched


def blocked_pool() -> Scheduler:
    sched = queue_behind_a_holder()
    assert started(sched.schedule(3.0)) == ["long", "short", "tiny"]
    assert sched.reservations.pool_of == {"holder": 0}
    return sched


def test_jobs_too_large_for_the_room_left_are_passed_over_in_one_step():
    sched = blocked_pool()
    sched.submit(make_job("tiny2", gpus=1, duration=10, tenant="b", submit=4.0), 4.0)
    sched.finish("tiny", 13.0)  # one GPU free again: no 8-GPU job fits, 1-GPU jobs do
    before = sched.stats.passed_over
    assert started(sched.schedule(13.0)) == ["tiny2"]
    # The holder is not examined (it cannot start, and keeps its pool without a look),
    # the 40 between are passed over in one step (a bisection, not a walk; counted
    # against the bounds all the same), then tiny2 starts.
    assert sched.stats.passed_over - before == 40
    assert sched.stats.examined_per_pass[-1] == 41


def test_passing_over_counts_against_the_bound():
    """A pass's reach stays bounded however long the run of jobs too large for the room:
    passed over in one step, they still count as examined, so with a bound of ten the
    pass stops among them (and marks its continuation, which starts again from the top
    of the queue, as Slurm's default_queue_depth does); with room in the bound it reaches
    the job that fits."""

    def pass_after_a_finish(bound: int) -> tuple[list[str], int]:
        sched = blocked_pool()
        sched.config = SchedulerConfig(max_jobs_per_pass=bound)  # from this pass on
        sched.submit(make_job("tiny2", gpus=1, duration=10, tenant="b", submit=4.0), 4.0)
        sched.finish("tiny", 13.0)
        bound_hits = sched.stats.bound_hits
        return started(sched.schedule(13.0)), sched.stats.bound_hits - bound_hits

    assert pass_after_a_finish(10) == ([], 1)
    assert pass_after_a_finish(50) == (["tiny2"], 0)


def test_an_event_pass_looks_less_deep_than_the_tick():
    """As Slurm's event-triggered pass stops at default_queue_depth and its periodic
    pass looks deeper: a finish's pass examines at most max_jobs_per_event_pass."""
    config = SchedulerConfig(max_jobs_per_event_pass=3, max_jobs_per_pass=1000)
    sched = Scheduler(one_pool_fleet(nodes=2), PolicySpec.parse("backfill"), config=config)
    sched.submit(make_job("long", gpus=8, duration=10_000), 0.0)
    sched.submit(make_job("short", gpus=8, duration=5), 0.0)
    sched.submit(make_job("holder", gpus=16, duration=100, submit=1.0), 1.0)
    for n in range(10):  # each fits beside "long" but would delay the holder
        sched.submit(make_job(f"j{n}", gpus=4, duration=20_000, tenant="b", submit=2.0), 2.0)
    # ... and one that would not, behind them: their list must be looked through.
    sched.submit(make_job("quick", gpus=4, duration=10, tenant="b", submit=3.0), 3.0)
    assert started(sched.schedule(3.0)) == ["long", "short"]
    sched.finish("short", 5.0)
    assert started(sched.schedule(5.0)) == []
    assert sched.stats.examined_per_pass[-1] == 3 and sched.stats.bound_hits >= 1
    # The tick looks at all eleven (the holder can't start) and reaches the short one.
    assert started(sched.schedule(300.0, full=True)) == ["quick"]
    assert sched.stats.examined_per_pass[-1] == 11


def test_a_list_a_reservation_ahead_blocks_is_not_examined():
    """Jobs that fit beside the running work but would each delay the reservation held
    ahead of them (too long to end by its shadow time, too many nodes for its spare)
    are ruled out as a list, not one by one; one short enough behind them is reached."""
    sched = Scheduler(one_pool_fleet(nodes=2), PolicySpec.parse("backfill"))
    sched.submit(make_job("long", gpus=8, duration=10_000), 0.0)
    sched.submit(make_job("short", gpus=8, duration=5), 0.0)
    sched.submit(make_job("holder", gpus=16, duration=100, submit=1.0), 1.0)
    for n in range(10):
        sched.submit(make_job(f"j{n}", gpus=4, duration=20_000, tenant="b", submit=2.0), 2.0)
    assert started(sched.schedule(2.0)) == ["long", "short"]
    sched.finish("short", 5.0)  # 8 GPUs free: each 4-GPU job fits, none may start
    assert started(sched.schedule(5.0)) == []
    assert sched.stats.examined_per_pass[-1] == 0
    sched.submit(make_job("quick", gpus=4, duration=10, tenant="b", submit=6.0), 6.0)
    # Now the list's shortest request ends in time: it is looked through, in order.
    assert started(sched.schedule(6.0, full=True)) == ["quick"]
    assert sched.stats.examined_per_pass[-1] == 11


def test_a_reservation_dropped_in_the_pass_opens_the_pool_to_those_behind():
    """A list ruled out because a job ahead holds the pool's reservation is taken up
    again when that job starts in the same pass: the first job behind it then takes the
    reservation, as it would have had every job been examined in turn."""
    sched = Scheduler(one_pool_fleet(nodes=3), PolicySpec.parse("backfill"))
    sched.submit(make_job("long", gpus=8, duration=10_000), 0.0)
    sched.submit(make_job("mid", gpus=8, duration=50), 0.0)
    sched.submit(make_job("other", gpus=8, duration=50), 0.0)
    assert started(sched.schedule(0.0)) == ["long", "mid", "other"]
    sched.submit(make_job("holder", gpus=16, duration=100, submit=1.0), 1.0)
    sched.submit(make_job("b1", gpus=16, duration=20_000, tenant="b", submit=2.0), 2.0)
    sched.schedule(2.0)
    assert sched.reservations.pool_of == {"holder": 0}
    sched.finish("mid", 50.0)
    sched.finish("other", 50.0)
    # b1 needs both free nodes but would hold them past the holder's shadow time (now):
    # ruled out; the holder starts on them, its reservation goes, and b1 takes the next.
    assert started(sched.schedule(50.0)) == ["holder"]
    assert sched.reservations.pool_of == {"b1": 0}
    assert sched.stats.examined_per_pass[-1] == 2


def test_a_list_whose_preemption_search_failed_is_not_walked_for_the_rest_of_the_pass():
    """Urgent work may preempt low work, but here preempting the one low job frees a
    single GPU, too few for any urgent gang: the first search fails, and no other job of
    the list could do better (none needs fewer GPUs), so the pass skips the list instead
    of examining its every job to hear each say no."""
    sched = Scheduler(one_pool_fleet(nodes=1), PolicySpec.parse("fairshare"))
    sched.submit(make_job("kept", gpus=7, duration=10_000, preemptible=False), 0.0)
    sched.submit(make_job("low", gpus=1, duration=10_000, priority=PriorityClass.LOW), 0.0)
    assert started(sched.schedule(0.0)) == ["kept", "low"]
    for n in range(30):
        urgent = make_job(f"u{n}", gpus=2, submit=1.0, priority=PriorityClass.URGENT)
        sched.submit(urgent, 1.0)
    assert sched.schedule(2.0, full=True) == []
    assert sched.stats.examined_per_pass[-1] == 1  # the one that searched

import pytest

from arkwright.core.decisions import Preempt, Reject, Start
from arkwright.core.job import JobState, PriorityClass
from arkwright.core.policy import PolicySpec
from arkwright.core.policy_data import Classification, DataPolicy
from arkwright.core.scheduler import Scheduler, SchedulerConfig, SubmissionError
from tests.conftest import make_job, one_pool_fleet

# Preemption's mechanics with its restraint turned off (test_preemption.py tests that).
EAGER = SchedulerConfig(
    preempt_exempt_s=0,
    reclaim_after_s=0,
    reclaim_hysteresis=0,
    preempt_start_horizon_s=0,
    preemptor_min_priority=1,
)


def scheduler(policy: str, config: SchedulerConfig | None = None, **fleet_args) -> Scheduler:
    return Scheduler(one_pool_fleet(**fleet_args), PolicySpec.parse(policy), config=config)


def started(decisions) -> list[str]:
    return [d.job.job_id for d in decisions if isinstance(d, Start)]


def submit_all(sched, jobs, now=0.0):
    for job in jobs:
        assert sched.submit(job, now) == []
    return sched.schedule(now)


def test_job_larger_than_any_eligible_pool_is_rejected_with_reason():
    sched = scheduler("fifo")
    [decision] = sched.submit(make_job("big", gpus=24), 0)
    assert isinstance(decision, Reject)
    assert "24 GPUs" in decision.reason and "s/p" in decision.reason and "16" in decision.reason
    assert sched.pending == 0


def test_job_no_pool_may_hold_is_rejected_naming_the_rule():
    sched = scheduler("fifo")
    secret = make_job("x", data_policy=DataPolicy(classification=Classification.SECRET))
    [decision] = sched.submit(secret, 0)
    assert isinstance(decision, Reject) and "SECRET" in decision.reason


@pytest.mark.parametrize(
    "job, message",
    [
        (make_job("z", gpus=0), "gpus must be positive"),
        (make_job("d", duration=0), "duration must be positive"),
    ],
)
def test_malformed_jobs_are_refused(job, message):
    with pytest.raises(SubmissionError, match=message):
        scheduler("fifo").submit(job, 0)


def test_duplicate_job_id_is_refused_and_changes_nothing():
    sched = scheduler("fifo")
    sched.submit(make_job("a"), 0)
    with pytest.raises(SubmissionError, match="already"):
        sched.submit(make_job("a"), 0)
    assert sched.pending == 1


def test_fifo_blocks_behind_a_job_that_cannot_start():
    sched = scheduler("fifo")
    decisions = submit_all(
        sched,
        [make_job("r", gpus=8, duration=1000), make_job("big", gpus=16), make_job("small", gpus=1)],
    )
    assert started(decisions) == ["r"]  # 'small' would fit, but FIFO keeps order


def test_backfill_starts_short_jobs_that_do_not_delay_the_reservation():
    sched = scheduler("backfill")
    runner = make_job("r", gpus=8, duration=1000)
    decisions = submit_all(
        sched,
        [
            runner,
            make_job("big", gpus=16, duration=500),
            make_job("short", gpus=4, duration=900),
            make_job("long", gpus=4, duration=5000),
        ],
    )
    # 'big' waits for 'r' (ends at 1000); 'short' ends by then, 'long' would delay it.
    assert started(decisions) == ["r", "short"]
    reservation = sched.reservations.get(0)
    assert reservation.holder.job_id == "big" and reservation.shadow_time == 1000


def test_backfill_uses_spare_nodes_beside_the_reservation():
    sched = scheduler("backfill", nodes=3)
    decisions = submit_all(
        sched,
        [
            make_job("r", gpus=16, duration=1000),
            make_job("big", gpus=16, duration=500),
            make_job("long", gpus=8, duration=5000),
            make_job("long2", gpus=8, duration=5000),
        ],
    )
    # 'big' needs two whole nodes; at t=1000 three are free, so one is spare: 'long' may
    # take it although it runs past the reservation. Nothing is left for 'long2'.
    assert started(decisions) == ["r", "long"]
    assert sched.reservations.get(0).spare_nodes == 0
    sched.finish("r", 1000)
    assert started(sched.schedule(1000)) == ["big"]


def test_fairshare_prefers_the_programme_below_its_share():
    sched = scheduler("fairshare", nodes=1)
    submit_all(sched, [make_job("a1", gpus=6, tenant="a", duration=1000)])
    sched.submit(make_job("a2", gpus=2, tenant="a", submit=1), 1)
    sched.submit(make_job("b1", gpus=2, tenant="b", submit=2), 2)
    # Both fit only one at a time (2 free); b uses nothing, so b goes first.
    assert started(sched.schedule(2)) == ["b1"]


def test_reclaim_preempts_a_borrower_and_keeps_checkpointed_work():
    sched = scheduler("fairshare", EAGER, nodes=2)  # 16 GPUs, a and b entitled to 8 each
    borrower = make_job("a-big", gpus=16, tenant="a", duration=10_000, checkpoint_interval_s=1000)
    assert started(submit_all(sched, [borrower])) == ["a-big"]
    sched.submit(make_job("b1", gpus=8, tenant="b", submit=2500), 2500)
    decisions = sched.schedule(2500)
    preempts = [d for d in decisions if isinstance(d, Preempt)]
    assert [p.job.job_id for p in preempts] == ["a-big"]
    assert preempts[0].work_lost_s == pytest.approx(500)
    assert started(decisions) == ["b1"]
    assert borrower.state is JobState.PENDING and borrower.work_done_s == pytest.approx(2000)
    sched.check_invariants()


def test_no_reclaim_from_a_programme_within_its_share():
    sched = scheduler("fairshare", EAGER, nodes=2)
    submit_all(
        sched,
        [
            make_job("a1", gpus=8, tenant="a", duration=10_000),
            make_job("b1", gpus=8, tenant="b", duration=10_000),
        ],
    )
    sched.submit(make_job("b2", gpus=8, tenant="b", submit=5), 5)
    assert sched.schedule(5, full=True) == []


def test_higher_priority_preempts_only_preemptible_lower_work():
    sched = scheduler("fairshare", EAGER, nodes=1)
    submit_all(
        sched,
        [
            make_job("keep", gpus=4, tenant="a", preemptible=False, duration=1e4),
            make_job("lose", gpus=4, tenant="a", priority=PriorityClass.LOW, duration=1e4),
        ],
    )
    sched.submit(
        make_job("urgent", gpus=4, tenant="a", priority=PriorityClass.URGENT, submit=10), 10
    )
    decisions = sched.schedule(10)
    assert [d.job.job_id for d in decisions if isinstance(d, Preempt)] == ["lose"]
    assert started(decisions) == ["urgent"]
    sched.submit(
        make_job("urgent2", gpus=4, tenant="a", priority=PriorityClass.URGENT, submit=11), 11
    )
    assert sched.schedule(11, full=True) == []  # only non-preemptible work is left


def test_cancel_pending_and_running_jobs_free_everything():
    sched = scheduler("backfill", nodes=1)
    submit_all(sched, [make_job("run", gpus=8, duration=100), make_job("wait", gpus=8)])
    sched.cancel("wait", 1)
    sched.cancel("run", 1)
    assert sched.pending == 0 and sched.running == 0
    assert sched.pool_states[0].free_gpus == 8 and not sched.reservations
    sched.check_invariants()


def test_requeue_puts_a_lost_job_back_in_its_place():
    sched = scheduler("fifo", nodes=1)
    submit_all(sched, [make_job("x", gpus=8, duration=100, checkpoint_interval_s=10)])
    sched.requeue("x", 35)
    assert sched.jobs["x"].state is JobState.PENDING
    assert sched.jobs["x"].work_done_s == pytest.approx(30)
    assert started(sched.schedule(35)) == ["x"]


def test_cordoned_pool_starts_nothing_new():
    sched = scheduler("backfill", nodes=1)
    sched.set_cordoned(0, True)
    assert submit_all(sched, [make_job("x")]) == []
    sched.set_cordoned(0, False)
    assert started(sched.schedule(1)) == ["x"]

import pytest

from arkwright.core.budget import Budget, BudgetUnit, OverBudget
from arkwright.core.decisions import Reject, Start
from arkwright.core.fleet import Fleet
from arkwright.core.policy import PolicySpec
from arkwright.core.policy_data import DataPolicy
from arkwright.core.scheduler import Scheduler, SchedulerConfig
from arkwright.core.throughput import ThroughputTable
from arkwright.fleets.loader import parse_fleet
from tests.conftest import make_job

TABLE = ThroughputTable(
    {
        "inference": {"H100": 1.0, "B200": 3.0, "A100": 0.4, "H200": 1.6},
        "science-sim": {"H100": 1.0, "B200": 0.7, "A100": 0.3, "H200": 1.1},
    }
)


def two_sites(carbon_a=100.0, carbon_b=100.0, hourly_b=None) -> Fleet:
    def site(name, gpu, carbon, hourly=None, jurisdiction="UK"):
        spec = {
            "name": name,
            "region": name,
            "jurisdiction": jurisdiction,
            "operator": "o",
            "carbon_g_per_kwh": carbon,
            "pools": [
                {
                    "name": "p",
                    "gpu": gpu,
                    "gpus_per_node": 8,
                    "nodes": 1,
                    "price_gbp_per_gpu_hour": 2.0,
                    "watts_per_gpu": 700,
                }
            ],
        }
        if hourly:
            spec["carbon_hourly"] = hourly
        return spec

    return parse_fleet(
        {
            "name": "two",
            "tenants": [{"name": "a"}],
            "sites": [
                site("hopper", "H100", carbon_a),
                site("blackwell", "B200", carbon_b, hourly_b),
            ],
        },
        "t",
    )


def first_start(scheduler, job, now=0.0):
    scheduler.submit(job, now)
    starts = [d for d in scheduler.schedule(now) if isinstance(d, Start)]
    return scheduler.fleet.pools[starts[0].pool].gpu_model if starts else None


@pytest.mark.parametrize("job_type, expected", [("inference", "B200"), ("science-sim", "H100")])
def test_hetero_puts_each_job_type_where_it_runs_best(job_type, expected):
    sched = Scheduler(two_sites(), PolicySpec.parse("hetero"), TABLE)
    assert first_start(sched, make_job("j", gpus=4, job_type=job_type)) == expected


def test_pack_ignores_speed_and_fills_the_fuller_pool():
    sched = Scheduler(two_sites(), PolicySpec.parse("backfill"), TABLE)
    first_start(sched, make_job("filler", gpus=2, job_type="inference"))  # lands on pool 0
    assert first_start(sched, make_job("j", gpus=4, job_type="inference")) == "H100"


def test_hetero_waits_for_a_much_faster_pool_then_gives_up_waiting():
    table = ThroughputTable({"inference": {"H100": 1.0, "B200": 3.0}})
    sched = Scheduler(two_sites(), PolicySpec.parse("hetero"), table)
    assert (
        first_start(sched, make_job("busy", gpus=8, job_type="inference", duration=10_000))
        == "B200"
    )
    # B200 is full; H100 runs this job at a third of the speed: better to wait a while.
    assert (
        first_start(
            sched, make_job("j", gpus=8, job_type="inference", duration=900, time_limit_s=900)
        )
        is None
    )
    # Once it has waited as long as it would run on the B200 (300 s), it takes the H100.
    starts = [d for d in sched.schedule(301, full=True) if isinstance(d, Start)]
    assert [sched.fleet.pools[d.pool].gpu_model for d in starts] == ["H100"]


def test_carbon_moves_work_to_the_cleaner_site_it_may_use():
    sched = Scheduler(
        two_sites(carbon_a=300, carbon_b=40), PolicySpec.parse("carbon"), ThroughputTable.flat()
    )
    assert first_start(sched, make_job("j", gpus=2)) == "B200"
    only_h100 = make_job("k", gpus=2, gpu_types=frozenset({"H100"}))
    assert first_start(sched, only_h100) == "H100"  # never outside eligibility


def test_carbon_never_trades_a_deadline_for_a_cleaner_slower_pool():
    # Hypothesis found it (test_properties' deadline property): the cleaner H100 site
    # runs inference at a third of the B200's speed. A job whose request ends by its
    # deadline only on the B200 must go there, or wait for it, not to the H100.
    table = ThroughputTable({"inference": {"H100": 1.0, "B200": 3.0}})
    sched = Scheduler(two_sites(carbon_a=40, carbon_b=300), PolicySpec.parse("carbon"), table)

    def job(name, gpus=2, **extra):
        return make_job(name, gpus=gpus, job_type="inference", duration=900, **extra)

    assert first_start(sched, job("loose", time_limit_s=900)) == "H100"  # the cleaner site
    # 300 s on the B200, 900 s on the H100: only the B200 meets a deadline at 600 s.
    assert first_start(sched, job("due", time_limit_s=900, deadline=600.0)) == "B200"
    # Where no pool can meet it, the deadline does not narrow the choice.
    assert first_start(sched, job("lost", time_limit_s=900, deadline=100.0)) == "H100"
    pinned = job("pinned", gpus=6, gpu_types=frozenset({"B200"}))
    assert first_start(sched, pinned) == "B200"  # the B200 is now full
    assert first_start(sched, job("late", time_limit_s=900, deadline=700.0)) is None  # waits


def test_carbon_defers_a_flexible_job_to_a_cleaner_hour_within_its_deadline():
    dirty_now_clean_later = [400.0] * 6 + [50.0] * 18
    fleet = two_sites(carbon_a=400, carbon_b=400, hourly_b=dirty_now_clean_later)
    sched = Scheduler(fleet, PolicySpec.parse("carbon"), ThroughputTable.flat())
    slack = make_job("slack", gpus=2, duration=3600, flexible=True, deadline=86_400.0)
    tight = make_job("tight", gpus=2, duration=3600, flexible=True, deadline=4 * 3600.0)
    rigid = make_job("rigid", gpus=2, duration=3600)
    assert first_start(sched, slack) is None
    assert first_start(sched, tight) is not None  # waiting would risk the deadline
    assert first_start(sched, rigid) is not None  # not flexible: never deferred
    starts = [d.job.job_id for d in sched.schedule(6 * 3600.0, full=True) if isinstance(d, Start)]
    assert starts == ["slack"]


def budget_scheduler(limit: str, action=OverBudget.HOLD) -> Scheduler:
    config = SchedulerConfig(budgets={"a": Budget.parse(limit)}, over_budget=action)
    return Scheduler(two_sites(), PolicySpec.parse("backfill"), ThroughputTable.flat(), config)


def test_budget_holds_work_until_commitments_are_settled():
    sched = budget_scheduler("10gpuh")  # 10 GPU-hours
    assert first_start(sched, make_job("one", gpus=8, duration=3600)) is not None
    # 8 GPU-h committed; the next 8 GPU-h would exceed 10: it waits.
    assert first_start(sched, make_job("two", gpus=8, duration=3600, submit=1), 1) is None
    sched.finish("one", 1800)  # used only 4 GPU-h: 6 are left, still not enough
    assert [d for d in sched.schedule(1800) if isinstance(d, Start)] == []
    sched.submit(make_job("small", gpus=4, duration=3600, submit=1800), 1800)
    assert [d.job.job_id for d in sched.schedule(1800) if isinstance(d, Start)] == ["small"]


def test_budget_rejects_work_its_programme_can_never_afford():
    sched = budget_scheduler("£10", OverBudget.REJECT)
    [decision] = sched.submit(make_job("big", gpus=8, duration=3600), 0)
    assert isinstance(decision, Reject)
    assert "over budget" in decision.reason and "£10" in decision.reason


def test_budget_in_pounds_uses_the_pool_price():
    sched = budget_scheduler("33gbp")  # 8 GPUs x 2 h x £2 = £32
    assert first_start(sched, make_job("j", gpus=8, duration=7200)) is not None
    assert sched.ledger.committed["a"] == pytest.approx(32.0)


@pytest.mark.parametrize(
    "text, limit, unit",
    [
        ("500000gpuh", 5e5, BudgetUnit.GPU_HOURS),
        ("2e6gbp", 2e6, BudgetUnit.GBP),
        ("£1,000", 1000, BudgetUnit.GBP),
        ("42", 42, BudgetUnit.GPU_HOURS),
    ],
)
def test_budget_parse(text, limit, unit):
    assert Budget.parse(text) == Budget(limit, unit)


@pytest.mark.parametrize("text", ["lots", "-5gpuh", "5 apples"])
def test_budget_parse_errors(text):
    with pytest.raises(ValueError, match="budget"):
        Budget.parse(text)


def test_uk_residency_is_never_traded_for_carbon(tiny):
    sched = Scheduler(tiny, PolicySpec.parse("carbon"), ThroughputTable.flat())
    # eu-b is the cleanest site in the tiny fleet, but this job must stay in the UK.
    job = make_job("uk", gpus=2, tenant="nhs", data_policy=DataPolicy.parse(residency="UK"))
    sched.submit(job, 0)
    [start] = sched.schedule(0)
    assert tiny.pools[start.pool].site.jurisdiction == "UK"

"""Properties that must hold for every policy, over random fleets and random traces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.decisions import Preempt, Reject, Start
from arkwright.core.eligibility import is_eligible
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy import PolicySpec
from arkwright.core.policy_data import Classification, DataPolicy, PersonalData
from arkwright.fleets.loader import parse_fleet
from arkwright.sim.simulator import Simulator

POLICIES = [
    "fifo",
    "backfill",
    "fairshare",
    "fairshare+backfill",
    "backfill+hetero",
    "fairshare+backfill+hetero",
    "carbon+backfill",
    "fairshare+carbon",
]
TENANTS = ["t0", "t1", "t2"]


@st.composite
def fleets(draw):
    sites = []
    for s in range(draw(st.integers(1, 3))):
        pools = [
            {
                "name": f"p{p}",
                "gpu": draw(st.sampled_from(["H100", "B200", "A100", "GH200"])),
                "gpus_per_node": draw(st.sampled_from([1, 4, 8])),
                "nodes": draw(st.integers(1, 4)),
                "price_gbp_per_gpu_hour": 1.0,
            }
            for p in range(draw(st.integers(1, 2)))
        ]
        site = {
            "name": f"s{s}",
            "region": f"r{s}",
            "jurisdiction": draw(st.sampled_from(["UK", "EU", "US"])),
            "operator": "o",
            "accreditations": draw(
                st.sampled_from(
                    [
                        ["OFFICIAL"],
                        ["OFFICIAL", "OFFICIAL-SENSITIVE"],
                        ["OFFICIAL", "OFFICIAL-SENSITIVE", "NHS-DSPT"],
                    ]
                )
            ),
            "carbon_g_per_kwh": draw(st.integers(20, 400)),
            "pools": pools,
        }
        if draw(st.booleans()):
            site["carbon_hourly"] = draw(st.lists(st.integers(10, 500), min_size=24, max_size=24))
        sites.append(site)
    tenants = [{"name": t, "weight": draw(st.integers(1, 4))} for t in TENANTS]
    return parse_fleet({"name": "random", "sites": sites, "tenants": tenants}, "hypothesis")


@st.composite
def traces(draw):
    jobs = []
    for i in range(draw(st.integers(1, 30))):
        submit = draw(st.integers(0, 20_000))
        deadline = None
        if draw(st.booleans()):
            deadline = float(submit + draw(st.integers(500, 200_000)))
        jobs.append(
            Job(
                job_id=f"j{i}",
                tenant=draw(st.sampled_from(TENANTS)),
                gpus=draw(st.sampled_from([1, 2, 3, 4, 8, 12, 16, 40])),
                duration_s=float(draw(st.integers(1, 20_000))),
                submit_time=float(submit),
                time_limit_s=draw(st.one_of(st.none(), st.integers(1, 40_000).map(float))),
                data_policy=DataPolicy(
                    residency=draw(
                        st.sampled_from([None, frozenset({"UK"}), frozenset({"UK", "EU"})])
                    ),
                    classification=draw(st.sampled_from(list(Classification)[:3])),
                    personal_data=draw(st.sampled_from(list(PersonalData))),
                ),
                gpu_types=draw(
                    st.sampled_from([None, frozenset({"H100"}), frozenset({"B200", "GH200"})])
                ),
                job_type=draw(st.sampled_from(["llm-pretrain", "inference", "vision"])),
                priority=draw(st.sampled_from(list(PriorityClass))),
                preemptible=draw(st.booleans()),
                checkpoint_interval_s=draw(st.sampled_from([None, 500.0])),
                deadline=deadline,
                flexible=deadline is not None,
            )
        )
    return jobs


def copy_jobs(jobs: list[Job]) -> list[Job]:
    return [j.spec_copy() for j in jobs]


def run(fleet, policy, jobs, observer=None):
    simulator = Simulator(
        fleet, PolicySpec.parse(policy), audit=True, tick_s=600, observer=observer
    )
    return simulator.run(copy_jobs(jobs)).summary


@given(fleet=fleets(), jobs=traces(), policy=st.sampled_from(POLICIES))
def test_every_policy_keeps_the_hard_rules(fleet, jobs, policy):
    starts: list[tuple[Job, int, float]] = []
    rejected: set[str] = set()

    def observe(decision, scheduler):
        if isinstance(decision, Start):
            pool = fleet.pools[decision.pool]
            job = decision.job
            # Independent of the core's class cache: ask the rule itself.
            assert is_eligible(pool, fleet.tenant(job.tenant), job.data_policy, job.gpu_types)
            assert decision.at >= job.submit_time
            assert scheduler.busy_gpus(decision.pool) <= pool.gpus
            starts.append((job, decision.pool, decision.at))
        elif isinstance(decision, Reject):
            rejected.add(decision.job.job_id)
        elif isinstance(decision, Preempt):
            assert decision.job.preemptible
        # The running set's per-pool possible victims, against its run lists.
        runs = scheduler.runs
        preemptible = [{j.job_id: j for j in r if j.preemptible} for r in runs.by_end]
        assert runs.preemptible_on == preemptible
        # And the GPUs they hold, by programme and priority class.
        for pool_index, on_pool in enumerate(preemptible):
            held: dict[str, list[int]] = {}
            for j in on_pool.values():
                held.setdefault(j.tenant, [0] * len(PriorityClass))[j.priority] += j.allocated_gpus
            kept = {t: g for t, g in runs.preemptible_gpus_on[pool_index].items() if any(g)}
            assert kept == held

    summary = run(fleet, policy, jobs, observe)
    assert summary["eligibility_violations"] == 0
    assert summary["jobs_submitted"] == len(jobs)
    assert (
        summary["jobs_completed"] + summary["jobs_rejected"] + summary["jobs_unfinished"]
        == summary["jobs_submitted"]
    )
    assert summary["jobs_rejected"] == len(rejected)
    # Every job that can fit somewhere eventually runs: nothing accepted is lost.
    assert summary["jobs_unfinished"] == 0
    assert {j.job_id for j, _, _ in starts} | rejected == {j.job_id for j in jobs}


@given(fleet=fleets(), jobs=traces(), policy=st.sampled_from(POLICIES))
def test_simulation_is_deterministic(fleet, jobs, policy):
    first = run(fleet, policy, jobs)
    second = run(fleet, policy, jobs)
    for summary in (first, second):
        summary.pop("wall_time_s")
        # Pass timings are wall-clock measurements; the pass counts stay.
        summary["passes"] = {k: v for k, v in summary["passes"].items() if "time_us" not in k}
    assert first == second


@given(fleet=fleets(), jobs=traces())
def test_carbon_deferral_never_causes_a_deadline_miss_that_backfill_avoids(fleet, jobs):
    """Flexible jobs that backfill finishes on time, carbon+backfill finishes on time too,
    provided the job was startable at submission (an idle fleet)."""
    ends: dict[str, dict[str, float]] = {"backfill": {}, "carbon+backfill": {}}
    alone = copy_jobs(jobs)
    for job in alone:
        job.submit_time = 0.0  # all at once on an idle fleet: no queueing noise
    for policy, seen in ends.items():

        def observe(decision, scheduler, seen=seen):
            if isinstance(decision, Start):
                job = decision.job
                seen[job.job_id] = decision.at + (job.requested_s - job.work_done_s) / job.speed

        run(fleet, policy, [j for j in alone if j.gpus <= 1], observe)
    for job in alone:
        if job.gpus > 1 or job.deadline is None or job.job_id not in ends["backfill"]:
            continue
        if ends["backfill"][job.job_id] <= job.deadline:
            assert ends["carbon+backfill"][job.job_id] <= job.deadline + 1e-6


@given(
    fleet=fleets(),
    jobs=traces(),
    policy=st.sampled_from(POLICIES),
    limits=st.lists(st.floats(0.5, 50.0), min_size=3, max_size=3),
    unit=st.sampled_from(["gpuh", "gbp"]),
)
def test_a_programme_never_spends_past_its_budget(fleet, jobs, policy, limits, unit):
    from arkwright.core.budget import Budget, BudgetUnit
    from arkwright.core.scheduler import SchedulerConfig

    budgets = {t: Budget(limit, BudgetUnit(unit)) for t, limit in zip(TENANTS, limits, strict=True)}
    seen = {}

    def observe(decision, scheduler):
        ledger = scheduler.ledger
        seen["ledger"] = ledger
        for tenant, budget in budgets.items():
            # Spend plus the worst case still committed never passes the limit.
            assert ledger.spent[tenant] + ledger.committed[tenant] <= budget.limit + 1e-6

    simulator = Simulator(
        fleet,
        PolicySpec.parse(policy),
        audit=True,
        tick_s=600,
        config=SchedulerConfig(budgets=budgets),
        observer=observe,
    )
    summary = simulator.run(copy_jobs(jobs)).summary
    assert summary["eligibility_violations"] == 0
    if "ledger" in seen:
        for tenant, budget in budgets.items():
            assert seen["ledger"].spent[tenant] <= budget.limit + 1e-6

import pytest

from arkwright.core.policy import PolicySpec
from arkwright.fleets import load_fleet
from arkwright.sim.metrics import IDLE_POWER_FRACTION
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize
from tests.conftest import make_job, one_pool_fleet

REQUIRED_KEYS = {
    "jobs_submitted",
    "jobs_completed",
    "jobs_rejected",
    "jobs_unfinished",
    "gpu_utilization",
    "mean_wait_s",
    "p95_wait_s",
    "mean_jct_s",
    "p50_jct_s",
    "p95_jct_s",
    "p99_jct_s",
    "mean_slowdown",
    "preemptions",
    "energy_mwh",
    "carbon_tco2e",
    "cost_gbp",
    "eligibility_violations",
    "wall_time_s",
    "events",
    "by_tenant",
}


def simulate(fleet, policy, jobs, **kw):
    return Simulator(fleet, PolicySpec.parse(policy), audit=True, **kw).run(jobs).summary


def test_two_jobs_on_one_node_queue_and_account_exactly():
    fleet = one_pool_fleet(nodes=1)  # 8 GPUs, 1000 W each, PUE 1.0, 100 g/kWh, £1/GPU-h
    jobs = [make_job("a", gpus=8, duration=3600), make_job("b", gpus=8, duration=3600)]
    s = simulate(fleet, "fifo", jobs)
    assert (s["jobs_completed"], s["jobs_rejected"], s["jobs_unfinished"]) == (2, 0, 0)
    assert s["mean_wait_s"] == pytest.approx(1800)
    assert s["mean_jct_s"] == pytest.approx(5400)
    assert s["mean_slowdown"] == pytest.approx(1.5)
    assert s["gpu_utilization"] == pytest.approx(1.0)
    # 8 GPUs × 1 kW × 2 h = 16 kWh; no idle time.
    assert s["energy_mwh"] == pytest.approx(0.016)
    assert s["carbon_tco2e"] == pytest.approx(0.016 * 100 / 1000)
    assert s["cost_gbp"] == pytest.approx(16.0)
    assert set(s) >= REQUIRED_KEYS


def test_idle_gpus_draw_idle_power():
    fleet = one_pool_fleet(nodes=1)
    s = simulate(fleet, "fifo", [make_job("a", gpus=4, duration=3600)])
    busy_kwh, idle_kwh = 4.0, 4 * IDLE_POWER_FRACTION
    assert s["energy_mwh"] == pytest.approx((busy_kwh + idle_kwh) / 1000)
    assert s["gpu_utilization"] == pytest.approx(0.5)


def test_rejected_jobs_are_counted_with_reasons():
    fleet = one_pool_fleet(nodes=1)
    s = simulate(fleet, "backfill", [make_job("a"), make_job("huge", gpus=64)])
    assert s["jobs_rejected"] == 1 and s["jobs_completed"] == 1
    assert list(s["rejection_reasons"]) == ["asks for more GPUs than the largest eligible pool has"]


def test_horizon_leaves_work_unfinished():
    fleet = one_pool_fleet(nodes=1)
    jobs = [make_job("a", gpus=8, duration=1000), make_job("b", gpus=8, duration=1000)]
    s = simulate(fleet, "fifo", jobs, horizon_s=500)
    assert s["jobs_unfinished"] == 2 and s["jobs_completed"] == 0


def test_time_limit_cuts_a_run_short():
    fleet = one_pool_fleet(nodes=1)
    s = simulate(fleet, "fifo", [make_job("a", duration=1000, time_limit_s=400)])
    assert s["jobs_timed_out"] == 1 and s["mean_jct_s"] == pytest.approx(400)


def test_entitled_and_attained_shares_are_reported():
    fleet = load_fleet("tiny")
    s = simulate(fleet, "fairshare", synthesize(fleet, 200, 0.9, 4), tick_s=900)
    shares = s["by_tenant"]
    assert sum(t["entitled_share"] for t in shares.values()) == pytest.approx(1.0)
    assert sum(t["attained_share"] for t in shares.values()) == pytest.approx(1.0)
    assert shares["research"]["entitled_share"] == pytest.approx(0.5)

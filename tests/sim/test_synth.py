import pytest

from arkwright.core.eligibility import EligibilityIndex
from arkwright.fleets import load_fleet
from arkwright.sim.synth import synthesize


@pytest.fixture(scope="module")
def uk():
    return load_fleet("uk-2026")


def signature(jobs):
    return [
        (
            j.job_id,
            j.gpus,
            j.duration_s,
            j.submit_time,
            j.tenant,
            j.data_policy,
            j.priority,
            j.time_limit_s,
        )
        for j in jobs
    ]


def test_same_seed_same_trace_other_seed_other_trace(uk):
    assert signature(synthesize(uk, 500, 0.8, 3)) == signature(synthesize(uk, 500, 0.8, 3))
    assert signature(synthesize(uk, 500, 0.8, 3)) != signature(synthesize(uk, 500, 0.8, 4))


@pytest.mark.parametrize("load", [0.5, 0.8, 0.95])
def test_offered_load_is_what_was_asked(uk, load):
    jobs = synthesize(uk, 4000, load, 1)
    demand = sum(j.gpus * j.duration_s for j in jobs)
    span = jobs[-1].submit_time - jobs[0].submit_time
    assert demand / (uk.total_gpus * span) == pytest.approx(load, rel=0.05)


def test_demand_is_heavy_tailed_and_mixed(uk):
    jobs = synthesize(uk, 5000, 0.8, 2)
    sizes = sorted(j.gpus for j in jobs)
    gpu_seconds = sorted((j.gpus * j.duration_s for j in jobs), reverse=True)
    assert sizes[len(sizes) // 2] <= 8  # most jobs are small...
    assert sum(gpu_seconds[: len(jobs) // 20]) > 0.5 * sum(gpu_seconds)  # ...5% hold most
    assert {j.tenant for j in jobs} == {t.name for t in uk.tenants}
    assert any(j.data_policy.personal_data == "health" for j in jobs)
    assert all(j.time_limit_s >= j.duration_s for j in jobs)


def test_jobs_fit_their_eligible_pools_unless_nothing_is_eligible(uk):
    index = EligibilityIndex(uk)
    for job in synthesize(uk, 3000, 0.8, 5):
        cls = index.classify(job.tenant, job.data_policy, job.gpu_types)
        assert not cls.pools or job.gpus <= cls.max_gang_gpus


def test_arrivals_follow_the_working_day(uk):
    jobs = synthesize(uk, 20000, 0.8, 1)
    hours = [int(j.submit_time // 3600) % 24 for j in jobs]
    afternoon = sum(1 for h in hours if 12 <= h < 16)
    small_hours = sum(1 for h in hours if 0 <= h < 4)
    assert afternoon > 2 * small_hours


@pytest.mark.parametrize("jobs, load", [(0, 0.8), (10, 0), (10, -1)])
def test_bad_arguments(uk, jobs, load):
    with pytest.raises(ValueError):
        synthesize(uk, jobs, load, 1)


def test_load_counts_faster_gpus_as_more_capacity(uk):
    from arkwright.sim.throughput_file import default_table

    flat = synthesize(uk, 3000, 0.8, 9)
    weighted = synthesize(uk, 3000, 0.8, 9, default_table())
    # Same demand; Blackwell pools deliver 2-4x the reference GPU, so the same load
    # means the same work arrives over a shorter span.
    assert weighted[-1].submit_time < 0.6 * flat[-1].submit_time
    assert [j.gpus for j in weighted] == [j.gpus for j in flat]

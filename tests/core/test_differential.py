"""The pipeline makes the same decisions as the frozen pre-redesign core (tests/core/legacy)
wherever the new pass bounds do not bite and preemption is not involved.

Preemption changed on purpose (issue 11: exempt time, victim order, hysteresis, horizon);
it is compared here only with preemption turned off on both sides (no preemptible job),
and has its own properties in test_preemption.py.

Carbon deferral changed on purpose too: a job waiting for a cleaner hour now waits
outside the queue (no reservation, no preemption, no fifo block), where the frozen core
kept it in the queue holding a reservation at "now" that kept others off the pool. Carbon
placement is compared here with no flexible job; deferral has its own properties in
test_carbon_wait.py.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from arkwright.core.decisions import Preempt, Reject, Start
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler, SchedulerConfig
from arkwright.fleets import load_fleet
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize
from tests.core.legacy.scheduler_v1 import Scheduler as LegacyScheduler
from tests.core.test_properties import copy_jobs, fleets, traces

POLICIES = [
    "fifo",
    "backfill",
    "fairshare",
    "fairshare+backfill",
    "backfill+hetero",
    "fairshare+backfill+hetero",
    "carbon+backfill",
    "fairshare+carbon",
    "hetero",
    "carbon",
]

# Bounds set so high that they never bite on these traces.
UNBOUNDED = SchedulerConfig(
    max_jobs_per_pass=10**9, max_jobs_per_tenant_per_pass=10**9, max_jobs_per_event_pass=10**9
)


def decisions(factory, fleet, policy, jobs, config):
    seen: list[tuple] = []

    def observe(decision, scheduler):
        job = decision.job
        if isinstance(decision, Start):
            seen.append(("start", job.job_id, decision.pool, decision.allocation, decision.at))
        elif isinstance(decision, Preempt):
            seen.append(("preempt", job.job_id, decision.pool, decision.at))
        elif isinstance(decision, Reject):
            seen.append(("reject", job.job_id, decision.reason, decision.at))

    simulator = Simulator(
        fleet,
        PolicySpec.parse(policy),
        tick_s=600,
        config=config,
        observer=observe,
        scheduler_factory=factory,
    )
    summary = simulator.run(copy_jobs(jobs)).summary
    return seen, summary


def comparable(jobs):
    """Jobs whose decisions the frozen core should match: none preemptible, none flexible,
    none with a deadline (neither preemption nor carbon deferral is in play, nor carbon
    placement's care for deadlines, which the frozen core lacked; deadlines play no
    other part in the core)."""
    jobs = copy_jobs(jobs)
    for job in jobs:
        job.preemptible = False
        job.flexible = False
        job.deadline = None
    return jobs


@given(fleet=fleets(), jobs=traces(), policy=st.sampled_from(POLICIES))
def test_same_decisions_as_the_frozen_core(fleet, jobs, policy):
    jobs = comparable(jobs)
    new, _ = decisions(Scheduler, fleet, policy, jobs, UNBOUNDED)
    old, _ = decisions(LegacyScheduler, fleet, policy, jobs, UNBOUNDED)
    assert new == old


@settings(max_examples=3, deadline=None)
@given(policy=st.sampled_from(POLICIES), seed=st.integers(0, 2**16))
def test_same_decisions_on_a_loaded_national_fleet(policy, seed):
    """Hundreds of jobs at 120% load on the tiny fleet: queues, reservations and
    fair-share order all in play."""
    fleet = load_fleet("tiny")
    jobs = comparable(synthesize(fleet, jobs=600, load=1.2, seed=seed))
    new, new_summary = decisions(Scheduler, fleet, policy, jobs, UNBOUNDED)
    old, old_summary = decisions(LegacyScheduler, fleet, policy, jobs, UNBOUNDED)
    assert new == old
    assert new_summary["jobs_completed"] == old_summary["jobs_completed"]

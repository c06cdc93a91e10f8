"""Node shapes (sbatch's --nodes with --gpus-per-node) and pool restrictions, as
properties over random fleets and traces: a shaped job gets exactly its nodes, each with
its share of GPUs; a job restricted to pools runs only there; nothing is lost."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.decisions import Reject, Start
from arkwright.core.eligibility import is_eligible
from arkwright.core.gang import GangShape
from arkwright.core.job import Job
from arkwright.core.pool_state import PoolState
from arkwright.core.scheduler import Scheduler
from tests.core.test_properties import POLICIES, fleets, run, traces


@st.composite
def shaped_traces(draw, fleet):
    jobs = draw(traces())
    names = [p.name for p in fleet.pools]
    shaped = []
    for job in jobs:
        nodes = draw(st.sampled_from([0, 0, 1, 2, 3, 4]))
        per_node = draw(st.sampled_from([1, 2, 4, 8]))
        pools = draw(
            st.one_of(st.none(), st.sets(st.sampled_from(names), min_size=1).map(frozenset))
        )
        if nodes:
            job = dataclasses.replace(job, gpus=nodes * per_node, nodes=nodes)
        shaped.append(dataclasses.replace(job, pools=pools))
    return shaped


@given(data=st.data(), fleet=fleets(), policy=st.sampled_from(POLICIES))
def test_a_shaped_job_gets_exactly_its_nodes_and_a_restricted_job_only_its_pools(
    data, fleet, policy
):
    jobs = data.draw(shaped_traces(fleet))
    started: set[str] = set()
    rejected: set[str] = set()

    def observe(decision, scheduler):
        if isinstance(decision, Start):
            job, pool = decision.job, fleet.pools[decision.pool]
            assert is_eligible(
                pool, fleet.tenant(job.tenant), job.data_policy, job.gpu_types, job.sites, job.pools
            )
            nodes = [node for node, _ in decision.allocation]
            assert len(set(nodes)) == len(nodes)  # distinct nodes, never one twice
            if job.nodes:
                assert len(nodes) == job.nodes
                assert {g for _, g in decision.allocation} == {job.gpus // job.nodes}
            else:
                assert sum(g for _, g in decision.allocation) >= job.gpus
            assert scheduler.busy_gpus(decision.pool) <= pool.gpus
            started.add(job.job_id)
        elif isinstance(decision, Reject):
            rejected.add(decision.job.job_id)

    summary = run(fleet, policy, jobs, observe)
    assert summary["eligibility_violations"] == 0
    assert summary["jobs_unfinished"] == 0  # every job that can fit somewhere runs
    assert started | rejected == {j.job_id for j in jobs}
    for job in jobs:  # rejected only when no eligible pool could ever hold the shape
        if job.job_id in rejected and job.nodes:
            holds = [
                p
                for p in fleet.pools
                if p.gpus_per_node >= job.gpus // job.nodes
                and p.nodes >= job.nodes
                and is_eligible(
                    p,
                    fleet.tenant(job.tenant),
                    job.data_policy,
                    job.gpu_types,
                    job.sites,
                    job.pools,
                )
            ]
            limited = any(p.site.max_job_duration_s is not None for p in holds)
            assert not holds or limited


def test_two_nodes_of_one_gpu_are_two_nodes_not_two_gpus_on_one():
    fleet_pool = PoolState(nodes=4, gpus_per_node=4)
    allocation = fleet_pool.allocate_gang(GangShape(1, 2))
    assert allocation is not None and len({n for n, _ in allocation}) == 2
    assert fleet_pool.free_gpus == 14
    fleet_pool.check()
    # Best fit: a partly used node is filled before an empty one is broken into.
    state = PoolState(nodes=3, gpus_per_node=4)
    state.take(((1, 3),))
    assert {n for n, _ in state.allocate_gang(GangShape(1, 2))} == {1, 0}
    # All or nothing: three nodes with two free each are not there.
    state = PoolState(nodes=2, gpus_per_node=4)
    before = list(state.node_free)
    assert state.allocate_gang(GangShape(2, 3)) is None and state.node_free == before


def test_a_shape_no_pool_can_hold_is_rejected_naming_the_shape():
    from arkwright.core.policy import PolicySpec
    from arkwright.fleets.loader import load_fleet

    fleet = load_fleet("tiny")
    scheduler = Scheduler(fleet, PolicySpec.parse("backfill"))
    most_nodes = max(p.nodes for p in fleet.pools)
    job = Job("big", "research", gpus=most_nodes + 1, duration_s=60.0, submit_time=0.0)
    job.nodes = most_nodes + 1
    [decision] = scheduler.submit(job, 0.0)
    assert isinstance(decision, Reject)
    assert f"{most_nodes + 1} nodes with 1 GPUs each" in decision.reason

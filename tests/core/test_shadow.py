"""The shadow-time index answers exactly as the reference walk over running jobs in end
order (`gang.walk_until_fits`), through any sequence of starts and finishes."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from arkwright.core.gang import GangShape, suitable_nodes, walk_until_fits
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler
from tests.conftest import make_job, one_pool_fleet


def reference(sched: Scheduler, shape: GangShape) -> tuple[float, int]:
    state = sched.pool_states[0]
    now = suitable_nodes(state, shape)
    if now >= shape.need:
        return -math.inf, now
    releases = sched.runs.by_end[0]
    index, suitable = walk_until_fits(state, shape, releases, now)
    return (math.inf, suitable) if index < 0 else (releases[index].expected_end, suitable)


def assert_same(sched: Scheduler, nodes: int, gpn: int) -> None:
    index = sched.reservations._shadows[0]
    for threshold in range(1, gpn + 1):
        for need in range(1, nodes + 2):
            shape = GangShape(threshold, need)
            assert index.earliest(shape) == reference(sched, shape), shape


@settings(max_examples=60, deadline=None)
@given(
    nodes=st.integers(1, 6),
    gpn=st.sampled_from([2, 4, 8]),
    steps=st.lists(
        st.tuples(st.integers(1, 20), st.integers(1, 5), st.booleans()), min_size=1, max_size=40
    ),
)
def test_the_index_matches_the_walk_through_starts_and_finishes(nodes, gpn, steps):
    sched = Scheduler(one_pool_fleet(nodes=nodes, gpus_per_node=gpn), PolicySpec.parse("fairshare"))
    now = 0.0
    for n, (gpus, hours, finish_one) in enumerate(steps):
        now += 60.0
        # Equal durations started together give equal ends: ties on end are in play.
        job = make_job(f"j{n}", gpus=min(gpus, nodes * gpn), duration=hours * 3600.0)
        sched.submit(job, now)
        sched.schedule(now)
        running = [j for jobs in sched.runs.by_end for j in jobs]
        if finish_one and running:
            sched.finish(running[n % len(running)].job_id, now)
        assert_same(sched, nodes, gpn)  # asked at every step: the lazy re-keying is used


@settings(max_examples=80, deadline=None)
@given(
    nodes=st.integers(1, 6),
    gpn=st.sampled_from([2, 4, 8]),
    steps=st.lists(
        st.tuples(st.integers(1, 24), st.integers(1, 5), st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
def test_the_index_matches_the_walk_when_asked_only_now_and_then(nodes, gpn, steps):
    # Asked only at some steps, the index carries nodes waiting to be re-keyed across
    # starts and finishes, among them whole nodes that jobs take and give back in one
    # count (the whole-node path) while a shared job's earlier touch is still pending.
    sched = Scheduler(one_pool_fleet(nodes=nodes, gpus_per_node=gpn), PolicySpec.parse("fairshare"))
    now = 0.0
    assert_same(sched, nodes, gpn)  # every threshold is known from the start
    for n, (gpus, hours, finish_one, ask) in enumerate(steps):
        now += 60.0
        job = make_job(f"j{n}", gpus=min(gpus, nodes * gpn), duration=hours * 3600.0)
        sched.submit(job, now)
        sched.schedule(now)
        running = [j for jobs in sched.runs.by_end for j in jobs]
        if finish_one and running:
            sched.finish(running[(3 * n) % len(running)].job_id, now)
        if ask:
            assert_same(sched, nodes, gpn)
    assert_same(sched, nodes, gpn)


@settings(max_examples=60, deadline=None)
@given(
    gpn=st.sampled_from([2, 4, 8]),
    holds=st.lists(
        st.tuples(st.lists(st.integers(0, 8), min_size=4, max_size=4), st.integers(1, 5)),
        min_size=1,
        max_size=8,
    ),
    finish=st.lists(st.integers(0, 7), max_size=8),
)
def test_the_index_matches_the_walk_for_jobs_holding_whole_and_part_nodes_at_once(
    gpn, holds, finish
):
    # Jobs found again after a restart (`adopt`) may hold any mix: a whole node and part
    # of another, or several entries for one node. A job's whole nodes live in the
    # index's whole layer and its shared ones per threshold; a finish must move each
    # back, and an index built after they started must sort them the same way.
    nodes = 4
    sched = Scheduler(one_pool_fleet(nodes=nodes, gpus_per_node=gpn), PolicySpec.parse("fairshare"))
    free = [gpn] * nodes
    adopted: list[str] = []
    for n, (wanted, hours) in enumerate(holds):
        allocation = []
        for node, gpus in enumerate(wanted):
            gpus = min(gpus, free[node])
            if gpus:
                # Half of a node's share as two entries for the same node, now and then.
                if gpus > 1 and (n + node) % 3 == 0:
                    allocation += [(node, gpus // 2), (node, gpus - gpus // 2)]
                else:
                    allocation.append((node, gpus))
                free[node] -= gpus
        if not allocation:
            continue
        job = make_job(f"a{n}", gpus=sum(g for _, g in allocation), duration=hours * 3600.0)
        sched.adopt(job, 0, tuple(allocation), started_at=0.0)
        adopted.append(job.job_id)
        if n == 1:
            assert_same(sched, nodes, gpn)  # built here: later adoptions update it
    assert_same(sched, nodes, gpn)
    for k in finish:
        if adopted:
            sched.finish(adopted.pop(k % len(adopted)), 60.0)
            assert_same(sched, nodes, gpn)

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.pool_state import OverAllocation, PoolState


def test_small_job_goes_to_the_fullest_node_that_holds_it():
    pool = PoolState(nodes=2, gpus_per_node=8)
    first = pool.allocate(6)
    second = pool.allocate(2)
    # Best fit: the 2-GPU job fills the node the 6-GPU job left, keeping one node whole.
    assert first[0][0] == second[0][0]
    assert pool.free_nodes == 1
    assert pool.free_gpus == 8


def test_multi_node_gang_takes_whole_nodes_or_nothing():
    pool = PoolState(nodes=3, gpus_per_node=4)
    pool.allocate(1)
    assert pool.allocate(12) is None  # only two whole nodes are free
    assert pool.free_gpus == 11
    gang = pool.allocate(8)
    assert gang is not None and sorted(g for _, g in gang) == [4, 4]
    assert pool.free_gpus == 3
    pool.check()


def test_release_restores_capacity_and_refuses_double_release():
    pool = PoolState(nodes=1, gpus_per_node=8)
    allocation = pool.allocate(8)
    assert not pool.fits(1)
    pool.release(allocation)
    assert pool.free_gpus == 8 and pool.max_fit() == 8
    with pytest.raises(OverAllocation):
        pool.release(allocation)


def test_max_fit_reports_largest_gang():
    pool = PoolState(nodes=3, gpus_per_node=4)
    assert pool.max_fit() == 12
    pool.allocate(3)
    assert pool.max_fit() == 8
    pool.allocate(8)
    assert pool.max_fit() == 1


@given(
    nodes=st.integers(1, 6),
    gpn=st.sampled_from([1, 2, 4, 8]),
    ops=st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=60),
)
def test_random_allocations_never_over_allocate(nodes, gpn, ops):
    pool = PoolState(nodes, gpn)
    held = []
    for allocate, size in ops:
        if allocate or not held:
            before = pool.free_gpus
            got = pool.allocate(size)
            if got is None:
                assert pool.free_gpus == before  # all-or-nothing
                assert not pool.fits(size)
            else:
                taken = sum(g for _, g in got)
                assert taken >= size
                assert len({n for n, _ in got}) == len(got)
                held.append(got)
        else:
            pool.release(held.pop(size % len(held)))
        pool.max_fit()  # cached between changes: check() holds it to a recount
        pool.check()
        assert 0 <= pool.free_gpus <= nodes * gpn
        assert pool.free_gpus == nodes * gpn - sum(g for a in held for _, g in a)

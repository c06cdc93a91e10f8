"""The queue's lists of like jobs: order, gang sizes and requests kept in step with the
jobs, and `first_fitting` against a plain walk."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.job import PriorityClass
from arkwright.core.queue import JobQueue, list_key, static_key
from tests.conftest import make_job


def queued_jobs(specs):
    jobs = []
    for n, (gpus, submit, priority, limit) in enumerate(specs):
        job = make_job(
            f"j{n}",
            gpus=gpus,
            submit=float(submit),
            priority=PriorityClass(priority),
            time_limit_s=float(limit),
        )
        job.eligibility_class, job.pool_mask, job.seq = 0, 1, n
        jobs.append(job)
    return jobs


SPECS = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 4, 8, 16, 64]),
        st.integers(0, 20),
        st.integers(0, 3),
        st.integers(60, 10_000),
    ),
    min_size=1,
    max_size=60,
)


@given(
    specs=SPECS,
    gone=st.sets(st.integers(0, 59), max_size=20),
    probes=st.lists(
        st.tuples(
            st.integers(0, 59),
            st.sampled_from([0, 1, 2, 3, 8, 16, 20, 64, 100]),
            st.integers(0, 45),
        ),
        max_size=20,
    ),
)
def test_a_list_keeps_its_order_sizes_and_requests_and_finds_the_next_fit(specs, gone, probes):
    queue = JobQueue()
    jobs = queued_jobs(specs)
    for job in jobs:
        queue.add(job)
    for n in sorted(gone):
        if n < len(jobs):
            queue.remove(jobs[n])
    left = [j for n, j in enumerate(jobs) if n not in gone]
    if not left:
        assert queue.lists == {} and len(queue) == 0
        return
    [queued] = queue.lists.values()
    assert queued.key == list_key(left[0])
    assert queued.jobs == sorted(left, key=static_key)
    assert queued.keys == [static_key(j) for j in queued.jobs]
    assert queued.smallest == min(j.fit_size for j in left)
    assert queued.requests == sorted(j.remaining_request_s for j in left)
    assert {size: len(keys) for size, keys in queued.by_size.items()} == {
        size: sum(1 for j in left if j.fit_size == size) for size in {j.fit_size for j in left}
    }
    for start, room, limit in probes:
        if start >= len(queued.jobs):
            continue
        limit = max(start, min(limit, len(queued.jobs)))
        walked = next((i for i in range(start, limit) if queued.jobs[i].fit_size <= room), limit)
        assert queued.first_fitting(start, room, limit) == walked

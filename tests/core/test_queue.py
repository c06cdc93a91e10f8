"""The queue's lists of like jobs: order, gang sizes and requests kept in step with the
jobs, and `first_fitting` against a plain walk."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.job import PriorityClass
from arkwright.core.ordering import FairShareOrder, PriorityOrder, first_after
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
    live = queued.jobs[queued.lo :]
    assert queued.key == list_key(left[0]) and len(queued) == len(left) == len(queue)
    assert live == sorted(left, key=static_key)
    assert queued.keys[queued.lo :] == [static_key(j) for j in live]
    assert queued.smallest == min(j.fit_size for j in left)
    assert queued.shortest_request() == min(j.remaining_request_s for j in left)
    assert {size: len(keys) for size, keys in queued.by_size.items()} == {
        size: sum(1 for j in left if j.fit_size == size) for size in {j.fit_size for j in left}
    }
    assert list(queue) == live
    for start, room, limit in probes:
        start += queued.lo
        if start >= len(queued.jobs):
            continue
        limit = max(start, min(limit + queued.lo, len(queued.jobs)))
        walked = next((i for i in range(start, limit) if queued.jobs[i].fit_size <= room), limit)
        assert queued.first_fitting(start, room, limit) == walked
    queue.tidy()  # renumbering between passes keeps every job and its order
    assert queued.jobs[queued.lo :] == live


@given(specs=SPECS, order=st.randoms(use_true_random=False))
def test_jobs_leave_from_anywhere_and_the_others_keep_their_places(specs, order):
    """A job leaving moves only the jobs before it one place on: an index past it names
    the same job as before, which the merge's cursors rely on within a pass."""
    queue = JobQueue()
    jobs = queued_jobs(specs)
    for job in jobs:
        queue.add(job)
    leaving = list(jobs)
    order.shuffle(leaving)
    for job in leaving[:-1]:
        [queued] = queue.lists.values()
        i = queued.jobs.index(job, queued.lo)
        after = queued.jobs[i + 1 :]
        queue.remove(job)
        assert queued.jobs[i + 1 :] == after
        assert job not in queued.jobs[queued.lo :]
    queue.remove(leaving[-1])
    assert queue.lists == {} and len(queue) == 0


@given(
    specs=SPECS,
    gone=st.sets(st.integers(0, 59), max_size=20),
    gpus_held=st.sampled_from([0, 5, 20]),
    reached=st.tuples(
        st.integers(-3, 0),
        st.sampled_from([0.0, 5.0, 20.0]),
        st.integers(0, 20),
        st.integers(0, 60),
    ),
)
def test_a_list_is_taken_up_again_just_past_the_key_the_merge_reached(
    specs, gone, gpus_held, reached
):
    """`first_after` bisects static keys with the list's share put in: the same index as
    walking the list and comparing each job's whole key, under either order."""
    queue = JobQueue()
    jobs = queued_jobs(specs)
    for job in jobs:
        queue.add(job)
    for n in sorted(gone):
        if 0 < n < len(jobs):  # job 0 stays: the list is never empty
            queue.remove(jobs[n])
    [queued] = queue.lists.values()
    priority, share, submitted, seq = reached
    key = (priority, share, float(submitted), seq)
    for order in (PriorityOrder(), FairShareOrder({"a": gpus_held}, {"a": 1.0})):
        walked = next(
            (i for i in range(queued.lo, len(queued.jobs)) if order.key(queued.jobs[i]) > key),
            len(queued.jobs),
        )
        assert first_after(queued, order, key) == walked

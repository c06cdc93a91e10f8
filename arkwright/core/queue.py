"""Pending jobs, kept in sorted lists of like jobs: one per (programme, eligibility class,
usable pools).

Splitting by class and usable pools lets a scheduling pass skip, in one step, every job
whose pools have no free GPU, and decide for a whole list whether any job of it could
take a backfill reservation; splitting by programme lets fair share reorder programmes
without re-sorting jobs. Within a list the order is fixed: priority class, then
submission time, then sequence.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from arkwright.core.job import Job

# (programme, eligibility class, usable pools): what a list's jobs share. The usable pools
# are the class's less any whose site time limit is shorter than the job asks for.
ListKey = tuple[str, int, int]
StaticKey = tuple[int, float, int]
NEAR = 8  # `JobList.first_fitting` looks at this many jobs in turn before it bisects


def list_key(job: Job) -> ListKey:
    return (job.tenant, job.eligibility_class, job.pool_mask)


def static_key(job: Job) -> StaticKey:
    return (-job.priority, job.submit_time, job.seq)


class JobList:
    """One list of like jobs, and what a pass asks of it without looking at its jobs
    (read as attributes: no lookup by key on the pass's path)."""

    __slots__ = (
        "by_size",
        "class_index",
        "jobs",
        "key",
        "keys",
        "pool_mask",
        "requests",
        "smallest",
        "tenant",
    )

    def __init__(self, key: ListKey) -> None:
        self.key = key
        self.tenant = key[0]
        self.class_index = key[1]
        self.pool_mask = key[2]
        self.jobs: list[Job] = []
        # The jobs' `static_key`s, in step with `jobs`: bisecting them calls no key
        # function at every probe (as `running.RunningSet` keeps its end keys).
        self.keys: list[StaticKey] = []
        # The static keys of the jobs of each gang size (`Job.fit_size`), sorted, and the
        # smallest size: what a pass compares with the room left before it skips the whole
        # list, and how it finds the next job that fits without walking those that don't.
        self.by_size: dict[int, list[StaticKey]] = {}
        self.smallest = 0
        # Every job's remaining request (`Job.remaining_request_s`), sorted: the shortest is what
        # the pass compares with a backfill reservation's shadow time before it skips the
        # whole list.
        self.requests: list[float] = []

    def __len__(self) -> int:
        return len(self.jobs)

    def first_fitting(self, start: int, room: int, limit: int) -> int:
        """The index of the first job from `start` on whose gang size fits `room`, or
        `limit` if none comes before it: the next few jobs are looked at in turn (a run
        of large ones is short more often than not), then one bisection per gang size,
        not a walk over every job that doesn't fit."""
        jobs = self.jobs
        near = min(limit, start + NEAR)
        for i in range(start, near):
            if jobs[i].fit_size <= room:
                return i
        if near >= limit:
            return limit
        start_key = self.keys[near]
        first: StaticKey | None = None
        for size, keys in self.by_size.items():
            if size <= room:
                k = bisect_left(keys, start_key)
                if k < len(keys) and (first is None or keys[k] < first):
                    first = keys[k]
        return limit if first is None else min(bisect_left(self.keys, first), limit)


class JobQueue:
    def __init__(self) -> None:
        self.lists: dict[ListKey, JobList] = {}
        self.size = 0

    def smallest_gang(self, key: ListKey) -> int:
        return self.lists[key].smallest

    def __len__(self) -> int:
        return self.size

    def add(self, job: Job) -> None:
        key = list_key(job)
        queued = self.lists.get(key)
        if queued is None:
            queued = self.lists[key] = JobList(key)
        order = static_key(job)
        size = job.fit_size
        same_size = queued.by_size.get(size)
        if same_size is None:
            queued.by_size[size] = [order]
        else:
            insort(same_size, order)
        if not queued.jobs or size < queued.smallest:
            queued.smallest = size
        insort(queued.requests, job.remaining_request_s)
        jobs, keys = queued.jobs, queued.keys
        if not keys or keys[-1] <= order:
            jobs.append(job)  # the common case: arrivals come in order
            keys.append(order)
        else:  # re-queued after preemption, or a high priority
            i = bisect_right(keys, order)
            jobs.insert(i, job)
            keys.insert(i, order)
        self.size += 1

    def remove(self, job: Job) -> None:
        key = list_key(job)
        queued = self.lists[key]
        jobs, keys = queued.jobs, queued.keys
        i = bisect_left(keys, static_key(job))
        if i >= len(jobs) or jobs[i] is not job:
            raise KeyError(job.job_id)
        order = keys[i]
        del jobs[i]
        del keys[i]
        self.size -= 1
        if not jobs:
            del self.lists[key]
            return
        requests = queued.requests
        del requests[bisect_left(requests, job.remaining_request_s)]
        size = job.fit_size
        same_size = queued.by_size[size]
        del same_size[bisect_left(same_size, order)]
        if not same_size:
            del queued.by_size[size]
            if size == queued.smallest:
                queued.smallest = min(queued.by_size)

    def __iter__(self):
        for queued in self.lists.values():
            yield from queued.jobs

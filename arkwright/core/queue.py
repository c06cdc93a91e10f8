"""Pending jobs, kept in sorted lists of like jobs: one per (programme, eligibility class,
usable pools).

Splitting by class and usable pools lets a scheduling pass skip, in one step, every job
whose pools have no free GPU, and decide for a whole list whether any job of it could
take a backfill reservation; splitting by programme lets fair share reorder programmes
without re-sorting jobs. Within a list the order is fixed: priority class, then
submission time, then sequence.

What a pass does to a list must not cost more as the list grows: jobs start from near
its head far more often than from anywhere else, so a list's arrays start at an offset
(`lo`) and a job leaving closes the gap from the head's side, moving the jobs before
it, not every job after it (a million-job list would otherwise move a million
references for each start).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right

from arkwright.core.job import Job

# (programme, eligibility class, usable pools): what a list's jobs share. The usable pools
# are the class's less any whose site time limit is shorter than the job asks for.
ListKey = tuple[str, int, int]
StaticKey = tuple[int, float, int]
NEAR = 8  # `JobList.first_fitting` looks at this many jobs in turn before it bisects
COMPACT = 64  # a list's dead head is given back once it is this long and half the list


def list_key(job: Job) -> ListKey:
    return (job.tenant, job.eligibility_class, job.pool_mask)


def static_key(job: Job) -> StaticKey:
    return (-job.priority, job.submit_time, job.seq)


class SortedKeys:
    """Static keys in order, from an offset: what `JobList` keeps per gang size. Removing
    a key near the front moves the keys before it, not those after."""

    __slots__ = ("keys", "lo")

    def __init__(self, first: StaticKey) -> None:
        self.keys: list[StaticKey] = [first]
        self.lo = 0

    def __len__(self) -> int:
        return len(self.keys) - self.lo

    def add(self, key: StaticKey) -> None:
        keys, lo = self.keys, self.lo
        if keys[-1] <= key:
            keys.append(key)
        elif lo and key <= keys[lo]:
            self.lo = lo - 1
            keys[lo - 1] = key
        else:
            keys.insert(bisect_right(keys, key, lo), key)
        if self.lo >= COMPACT and 2 * self.lo >= len(keys):
            del keys[: self.lo]
            self.lo = 0

    def remove(self, key: StaticKey) -> None:
        keys, lo = self.keys, self.lo
        i = bisect_left(keys, key, lo)
        keys[lo + 1 : i + 1] = keys[lo:i]
        self.lo = lo + 1

    def first_from(self, key: StaticKey) -> StaticKey | None:
        """The first key at or after `key`, or None."""
        keys = self.keys
        k = bisect_left(keys, key, self.lo)
        return keys[k] if k < len(keys) else None


class JobList:
    """One list of like jobs, and what a pass asks of it without looking at its jobs
    (read as attributes: no lookup by key on the pass's path).

    Its jobs are `jobs[lo:]`: indices below `lo` are dead slots, never read. An index
    names a job for as long as a pass runs: a job leaving moves the jobs before it one
    place on (`lo` grows), and the dead head is given back only by `JobQueue.tidy`,
    between passes."""

    __slots__ = (
        "_gone",
        "by_size",
        "class_index",
        "jobs",
        "key",
        "keys",
        "lo",
        "pool_mask",
        "requests",
        "smallest",
        "tenant",
        "untidy",
    )

    def __init__(self, key: ListKey) -> None:
        self.key = key
        self.untidy = False  # waits for `JobQueue.tidy` to give its dead head back
        self.tenant = key[0]
        self.class_index = key[1]
        self.pool_mask = key[2]
        self.jobs: list[Job] = []
        # The jobs' `static_key`s, in step with `jobs`: bisecting them calls no key
        # function at every probe (as `running.RunningSet` keeps its end keys).
        self.keys: list[StaticKey] = []
        self.lo = 0
        # The static keys of the jobs of each gang size (`Job.fit_size`), and the smallest
        # size: what a pass compares with the room left before it skips the whole list,
        # and how it finds the next job that fits without walking those that don't.
        self.by_size: dict[int, SortedKeys] = {}
        self.smallest = 0
        # Every job's remaining request (`Job.remaining_request_s`) in a heap, less those
        # of jobs gone (counted in `_gone`, dropped when they come to the top): the
        # shortest is what a pass compares with a backfill reservation's shadow time.
        self.requests: list[float] = []
        self._gone: dict[float, int] = {}

    def __len__(self) -> int:
        return len(self.jobs) - self.lo

    def shortest_request(self) -> float:
        heap, gone = self.requests, self._gone
        while gone:
            top = heap[0]
            count = gone.get(top, 0)
            if not count:
                break
            heapq.heappop(heap)
            if count == 1:
                del gone[top]
            else:
                gone[top] = count - 1
        return heap[0]

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
        for size, same_size in self.by_size.items():
            if size <= room:
                found = same_size.first_from(start_key)
                if found is not None and (first is None or found < first):
                    first = found
        if first is None:
            return limit
        return min(bisect_left(self.keys, first, self.lo), limit)


class JobQueue:
    def __init__(self) -> None:
        self.lists: dict[ListKey, JobList] = {}
        self.size = 0
        self._untidy: list[JobList] = []  # lists whose dead head may be worth giving back

    def tidy(self) -> None:
        """Give back the dead head of lists where it grew long and at least half the list
        (marked as it did): between passes only, as it renumbers the list's jobs; its
        cost is amortised over the starts that made it."""
        for queued in self._untidy:
            lo = queued.lo
            del queued.jobs[:lo]
            del queued.keys[:lo]
            queued.lo = 0
            queued.untidy = False
        self._untidy = []

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
            queued.by_size[size] = SortedKeys(order)
        else:
            same_size.add(order)
        if not len(queued) or size < queued.smallest:
            queued.smallest = size
        heapq.heappush(queued.requests, job.remaining_request_s)
        jobs, keys, lo = queued.jobs, queued.keys, queued.lo
        if lo == len(keys) or keys[-1] <= order:
            jobs.append(job)  # the common case: arrivals come in order
            keys.append(order)
        elif lo and order <= keys[lo]:  # a new head, where the dead head has room
            queued.lo = lo - 1
            jobs[lo - 1] = job
            keys[lo - 1] = order
        else:  # re-queued after preemption, or a high priority
            i = bisect_right(keys, order, lo)
            jobs.insert(i, job)
            keys.insert(i, order)
        self.size += 1

    def remove(self, job: Job) -> None:
        key = list_key(job)
        queued = self.lists[key]
        jobs, keys, lo = queued.jobs, queued.keys, queued.lo
        i = bisect_left(keys, static_key(job), lo)
        if i >= len(jobs) or jobs[i] is not job:
            raise KeyError(job.job_id)
        order = keys[i]
        # Close the gap from the head's side: the jobs before it move one place on.
        jobs[lo + 1 : i + 1] = jobs[lo:i]
        keys[lo + 1 : i + 1] = keys[lo:i]
        queued.lo = lo = lo + 1
        self.size -= 1
        if lo == len(jobs):
            del self.lists[key]
            return
        if lo >= COMPACT and 2 * lo >= len(jobs) and not queued.untidy:
            queued.untidy = True
            self._untidy.append(queued)
        request = job.remaining_request_s
        queued._gone[request] = queued._gone.get(request, 0) + 1
        size = job.fit_size
        same_size = queued.by_size[size]
        same_size.remove(order)
        if not len(same_size):
            del queued.by_size[size]
            if size == queued.smallest:
                queued.smallest = min(queued.by_size)

    def __iter__(self):
        for queued in self.lists.values():
            yield from queued.jobs[queued.lo :]

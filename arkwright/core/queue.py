"""Pending jobs, kept in one sorted list per (programme, eligibility class).

Splitting by class lets a scheduling pass skip, in one step, every job whose pools have
no free GPU; splitting by programme lets fair share reorder programmes without resorting
jobs. Within a list the order is fixed: priority class, then submission time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from arkwright.core.job import Job

# (programme, eligibility class, usable pools): what a list's jobs share. The usable pools
# are the class's less any whose site time limit is shorter than the job asks for.
ListKey = tuple[str, int, int]


def list_key(job: Job) -> ListKey:
    return (job.tenant, job.eligibility_class, job.pool_mask)


def static_key(job: Job) -> tuple[int, float, int]:
    return (-job.priority, job.submit_time, job.seq)


class JobQueue:
    def __init__(self) -> None:
        self.lists: dict[ListKey, list[Job]] = {}
        # Each list's `static_key`s, in step with it: bisecting them calls no key function
        # at every probe (as `running.RunningSet` keeps its end keys).
        self._keys: dict[ListKey, list[tuple[int, float, int]]] = {}
        # Per list, how many jobs of each gang size wait: the smallest gang of a list is
        # what a pass compares with the room left before it skips the whole list.
        self.gang_sizes: dict[ListKey, dict[int, int]] = {}
        self._smallest: dict[ListKey, int] = {}  # min of each list's gang sizes, kept
        self.size = 0

    def smallest_gang(self, key: ListKey) -> int:
        return self._smallest[key]

    def __len__(self) -> int:
        return self.size

    def add(self, job: Job) -> None:
        key = list_key(job)
        jobs = self.lists.get(key)
        sizes = self.gang_sizes.get(key)
        if sizes is None:
            sizes = self.gang_sizes[key] = {}
        size = job.fit_size
        sizes[size] = sizes.get(size, 0) + 1
        smallest = self._smallest.get(key)
        if smallest is None or size < smallest:
            self._smallest[key] = size
        order = static_key(job)
        if jobs is None:
            jobs = self.lists[key] = []
            self._keys[key] = []
        keys = self._keys[key]
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
        jobs, keys = self.lists[key], self._keys[key]
        i = bisect_left(keys, static_key(job))
        if i >= len(jobs) or jobs[i] is not job:
            raise KeyError(job.job_id)
        del jobs[i]
        del keys[i]
        self.size -= 1
        sizes = self.gang_sizes[key]
        size = job.fit_size
        left = sizes[size] - 1
        if left:
            sizes[size] = left
        else:
            del sizes[size]
            if sizes and size == self._smallest[key]:
                self._smallest[key] = min(sizes)
        if not jobs:
            del self.lists[key]
            del self._keys[key]
            del self.gang_sizes[key]
            del self._smallest[key]

    def __iter__(self):
        for jobs in self.lists.values():
            yield from jobs

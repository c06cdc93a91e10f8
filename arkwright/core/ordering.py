"""Queue ordering: which waiting job a pass considers next.

Order is (priority class, share, submission time, sequence). `share` is what fairness
contributes: zero for plain priority order, a programme's GPUs in use per unit of
weight for fair share (the programme furthest below its share goes first). The pass
calls `order.key(job)`; it never asks which policy it is running.

`in_order` merges the queue's lists (`queue.JobList`) with a heap. A programme's share
grows as a pass starts its jobs, so stale heap keys are refreshed lazily when popped
rather than re-sorted. A preemption lowers its victims' programmes' shares; their
entries keep the keys they were pushed with for the rest of the pass, as in the frozen
core (re-keying the heap there was tried: on the tiny fleet at 120% load it lost more
work to preemption, as programmes just reclaimed from came first again in the pass).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from arkwright.core.eligibility import EligibilityClass
from arkwright.core.job import Job, JobState
from arkwright.core.queue import JobList, JobQueue

OrderKey = tuple[int, float, float, int]

SKIP_LIST = -1  # `ListGate.room`: nothing in this list can do anything in this pass
NO_LIMIT = 1 << 62  # `ListGate.room`: any job of this list may act, whatever its size


class QueueOrder:
    """What the pass asks of an order. A base class, not a union or a protocol: the
    compiled core then calls `key` through its method table, not Python's attribute
    lookup, on the hottest path there is."""

    dynamic = False  # whether a waiting job's key can change (fair share: it can)

    def share(self, tenant: str) -> float:
        raise NotImplementedError

    def key(self, job: Job) -> OrderKey:
        raise NotImplementedError


class PriorityOrder(QueueOrder):
    """Priority class, then first come first served."""

    dynamic = False  # keys never change while a job waits

    def share(self, tenant: str) -> float:
        return 0.0

    def key(self, job: Job) -> OrderKey:
        return (-job.priority, 0.0, job.submit_time, job.seq)


class FairShareOrder(QueueOrder):
    """Weighted fair share between programmes (current GPUs per unit of weight)."""

    dynamic = True

    def __init__(self, usage_gpus: dict[str, int], weights: dict[str, float]) -> None:
        self._usage = usage_gpus
        self._weights = weights

    def share(self, tenant: str) -> float:
        return self._usage.get(tenant, 0) / self._weights[tenant]

    def key(self, job: Job) -> OrderKey:
        return (-job.priority, self.share(job.tenant), job.submit_time, job.seq)


class ListGate:
    """What `in_order` asks of the pass about a list (see `in_order`); the pass's
    `pass_run.PassGate` answers. A base class for the same reason as `QueueOrder`."""

    def room(self, queued: JobList, i: int) -> int:
        raise NotImplementedError

    def pass_over(self, queued: JobList, start: int, room: int) -> int:
        raise NotImplementedError


class ListFilter:
    """The pools a pass still considers; lists whose class has none are skipped. The
    pass narrows it as pools fill or block, and the iterator reads it live."""

    __slots__ = ("mask",)

    def __init__(self, mask: int) -> None:
        self.mask = mask


# A heap entry: the list head's key spelled out flat, then the list's number and the
# head's index in it. Flat, not (key, n, i): the merge compares entries most of all, and
# a nested tuple costs every comparison an equality test of the keys before the order.
HeapEntry = tuple[int, float, float, int, int, int]


def in_order(
    queue: JobQueue,
    order: QueueOrder,
    classes: list[EligibilityClass],
    consider: ListFilter,
    gate: ListGate | None = None,
    skip_before_heap: bool = False,
) -> Iterator[Job]:
    """Queued jobs in policy order, skipping whole lists whose pools aren't considered.

    `gate.room(list, i)`, asked when a list's next job (`list.jobs[i]`) comes up, says
    what of it and the jobs behind it could do anything in this pass now: SKIP_LIST
    (nothing), NO_LIMIT (any job), or a gang size: jobs needing more than that on one
    node can neither start nor do anything else, so
    `gate.pass_over` passes them over in a tight loop (charging the pass's bounds as if
    each had been examined) instead of their being examined one by one.

    With `skip_before_heap`, the gate is asked before a list enters the heap as well
    as when its head comes up: the caller says so when the reasons it gives hold for the
    rest of the pass (room only shrinks and per-programme counts only grow while no
    preemption can open pools), so a list that can do nothing costs no heap work."""
    dynamic = order.dynamic
    heap: list[HeapEntry] = []
    lists: list[JobList] = []
    mask = consider.mask
    for queued in queue.lists.values():
        jobs = queued.jobs
        if jobs and classes[queued.class_index].pool_mask & mask:
            if skip_before_heap and gate is not None and gate.room(queued, 0) < 0:
                continue
            heap.append(entry(order, jobs[0], len(lists), 0))
            lists.append(queued)
    heapq.heapify(heap)
    pushpop, pop = heapq.heappushpop, heapq.heappop  # looked up once, not per job
    # The entry that follows the one just taken: pushed and popped in one step, which
    # costs one comparison when it is still the smallest (a run from one list).
    follow: HeapEntry | None = None
    while True:
        if follow is not None:
            top = pushpop(heap, follow)
            follow = None
        elif heap:
            top = pop(heap)
        else:
            return
        n, i = top[4], top[5]
        queued = lists[n]
        jobs = queued.jobs
        if i >= len(jobs):
            continue
        job = jobs[i]
        if not classes[job.eligibility_class].pool_mask & consider.mask:
            continue
        if gate is not None:
            room = gate.room(queued, i)
            if room < 0:
                continue
            if job.fit_size > room:
                nxt = gate.pass_over(queued, i, room)
                if nxt < len(jobs):
                    follow = entry(order, jobs[nxt], n, nxt)
                continue
        # A key differs from the one it was pushed with only in its share (fair share:
        # the programme's usage grew in this pass), so only that is compared.
        if dynamic and order.share(job.tenant) > top[1]:
            follow = entry(order, job, n, i)
            continue
        yield job
        # A job that started, or went to wait outside the queue, has left its list, so
        # the same index now holds the next one.
        nxt = i if job.state is not JobState.PENDING or job.held else i + 1
        if nxt < len(jobs):
            follow = entry(order, jobs[nxt], n, nxt)


def entry(order: QueueOrder, job: Job, n: int, i: int) -> HeapEntry:
    """The heap entry of `job`, at index `i` of list `n`: its key, then where it is."""
    priority, share, submitted, seq = order.key(job)
    return (priority, share, submitted, seq, n, i)

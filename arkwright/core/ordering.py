"""Queue ordering: which waiting job a pass considers next.

Order is (priority class, share, submission time, sequence). `share` is what fairness
contributes: zero for plain priority order, a programme's GPUs in use per unit of
weight for fair share (the programme furthest below its share goes first). The pass
calls `order.key(job)`; it never asks which policy it is running.

`in_order` merges the queue's per-(programme, class) lists with a heap. A programme's
share only grows during a pass (a pass only starts its jobs), so stale heap keys are
refreshed lazily when popped rather than re-sorted.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Protocol

from arkwright.core.eligibility import EligibilityClass
from arkwright.core.job import Job, JobState
from arkwright.core.queue import JobQueue

OrderKey = tuple[int, float, float, int]

SKIP_LIST = -1  # `ListGate.room`: nothing in this list can do anything in this pass
NO_LIMIT = 1 << 62  # `ListGate.room`: any job of this list may act, whatever its size


class PriorityOrder:
    """Priority class, then first come first served."""

    dynamic = False  # keys never change while a job waits

    def share(self, tenant: str) -> float:
        return 0.0

    def key(self, job: Job) -> OrderKey:
        return (-job.priority, 0.0, job.submit_time, job.seq)


class FairShareOrder:
    """Weighted fair share between programmes (current GPUs per unit of weight)."""

    dynamic = True

    def __init__(self, usage_gpus: dict[str, int], weights: dict[str, float]) -> None:
        self._usage = usage_gpus
        self._weights = weights

    def share(self, tenant: str) -> float:
        return self._usage.get(tenant, 0) / self._weights[tenant]

    def key(self, job: Job) -> OrderKey:
        return (-job.priority, self.share(job.tenant), job.submit_time, job.seq)


QueueOrder = PriorityOrder | FairShareOrder


class ListGate(Protocol):
    """What `in_order` asks of the pass about a list (see `in_order`)."""

    def room(self, jobs: list[Job]) -> int: ...

    def pass_over(self, jobs: list[Job], start: int, room: int) -> int: ...


class ListFilter:
    """The pools a pass still considers; lists whose class has none are skipped. The
    pass narrows it as pools fill or block, and the iterator reads it live."""

    __slots__ = ("mask",)

    def __init__(self, mask: int) -> None:
        self.mask = mask


def in_order(
    queue: JobQueue,
    order: QueueOrder,
    classes: list[EligibilityClass],
    consider: ListFilter,
    gate: ListGate | None = None,
    skip_before_heap: bool = False,
) -> Iterator[Job]:
    """Queued jobs in policy order, skipping whole lists whose pools aren't considered.

    `gate.room(list)`, asked when a list's head comes up, says what of the list could do
    anything in this pass now: SKIP_LIST (nothing), NO_LIMIT (any job), or a gang size:
    jobs needing more than that on one node can neither start nor do anything else, so
    `gate.pass_over` passes them over in a tight loop (charging the pass's bounds as if
    each had been examined) instead of their being examined one by one.

    With `skip_before_heap`, the gate is asked before a list enters the heap as well
    as when its head comes up: the caller says so when the reasons it gives hold for the
    rest of the pass (room only shrinks and per-programme counts only grow while no
    preemption can open pools), so a list that can do nothing costs no heap work."""
    key_of = order.key
    dynamic = order.dynamic
    heap: list[tuple[OrderKey, int, list[Job], int]] = []
    mask = consider.mask
    for n, ((_, cls_index), jobs) in enumerate(queue.lists.items()):
        if jobs and classes[cls_index].pool_mask & mask:
            if skip_before_heap and gate is not None and gate.room(jobs) < 0:
                continue
            heap.append((key_of(jobs[0]), n, jobs, 0))
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        key, n, jobs, i = pop(heap)
        if i >= len(jobs):
            continue
        job = jobs[i]
        if not classes[job.eligibility_class].pool_mask & consider.mask:
            continue
        if gate is not None:
            room = gate.room(jobs)
            if room < 0:
                continue
            if job.fit_size > room:
                nxt = gate.pass_over(jobs, i, room)
                if nxt < len(jobs):
                    push(heap, (key_of(jobs[nxt]), n, jobs, nxt))
                continue
        if dynamic:
            fresh = key_of(job)
            if fresh > key:
                push(heap, (fresh, n, jobs, i))
                continue
        yield job
        # A job that started, or went to wait outside the queue, has left its list, so
        # the same index now holds the next one.
        nxt = i if job.state is not JobState.PENDING or job.held else i + 1
        if nxt < len(jobs):
            push(heap, (key_of(jobs[nxt]), n, jobs, nxt))

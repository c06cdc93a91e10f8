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
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from arkwright.core.eligibility import EligibilityClass
from arkwright.core.job import Job, JobState
from arkwright.core.queue import JobList, JobQueue

OrderKey = tuple[int, float, float, int]
INFINITY = float("inf")

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
        """(-priority, share(tenant), submit time, seq): a job's queue-list key
        (`queue.static_key`) with the programme's share after the priority. `entry` and
        `first_after` rely on that shape; an order that needs another changes them too."""
        raise NotImplementedError

    def before(self, a: Job, b: Job) -> bool:
        """`key(a) < key(b)`, made without building either key (the reservation checks
        ask it of every pool a job might use)."""
        raise NotImplementedError


class PriorityOrder(QueueOrder):
    """Priority class, then first come first served."""

    dynamic = False  # keys never change while a job waits

    def share(self, tenant: str) -> float:
        return 0.0

    def key(self, job: Job) -> OrderKey:
        return (-job.priority, 0.0, job.submit_time, job.seq)

    def before(self, a: Job, b: Job) -> bool:
        if a.priority != b.priority:
            return a.priority > b.priority
        if a.submit_time != b.submit_time:
            return a.submit_time < b.submit_time
        return a.seq < b.seq


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

    def before(self, a: Job, b: Job) -> bool:
        if a.priority != b.priority:
            return a.priority > b.priority
        if a.tenant != b.tenant:
            share_a, share_b = self.share(a.tenant), self.share(b.tenant)
            if share_a != share_b:
                return share_a < share_b
        if a.submit_time != b.submit_time:
            return a.submit_time < b.submit_time
        return a.seq < b.seq


class ListGate:
    """What `in_order` asks of the pass about a list (see `in_order`); the pass's
    `pass_run.PassGate` answers. A base class for the same reason as `QueueOrder`."""

    def room(self, queued: JobList, i: int) -> int:
        raise NotImplementedError

    def pass_over(self, queued: JobList, start: int, room: int) -> int:
        raise NotImplementedError

    def loosened(self) -> int:
        """Pools where, since last asked, the pass may have let a job act that `room`
        had ruled out (-1: any pool; 0: none)."""
        raise NotImplementedError


class ListFilter:
    """The pools a pass still considers; lists whose class has none are skipped. The
    pass narrows it as pools fill or block, and the iterator reads it live."""

    __slots__ = ("mask",)

    def __init__(self, mask: int) -> None:
        self.mask = mask


# A heap entry: the list head's key spelled out flat, then the list's number, the head's
# index in it, and the entry's serial number in the pass (which of a list's entries is
# live: an identity test would not do, as the compiled core rebuilds a fixed-length
# tuple it has unpacked). Flat, not (key, n, i): the merge compares entries most of all,
# and a nested tuple costs every comparison an equality test of the keys first.
HeapEntry = tuple[int, float, float, int, int, int, int]


PARKED = -1  # `in_order`'s cursor of a list with no live heap entry
DROPPED = -2  # a list whose class the pass no longer considers


def in_order(
    queue: JobQueue,
    order: QueueOrder,
    classes: list[EligibilityClass],
    consider: ListFilter,
    gate: ListGate | None = None,
) -> Iterator[Job]:
    """Queued jobs in policy order, skipping whole lists whose pools aren't considered.

    `gate.room(list, i)`, asked before a list enters the heap and whenever its next job
    (`list.jobs[i]`) comes up, says what of that job and the jobs behind it could do
    anything in this pass now: SKIP_LIST (nothing: the list is parked), NO_LIMIT (any
    job), or a gang size: jobs needing more than that on one node can do nothing, so
    `gate.pass_over` passes them over in a tight loop (charging the pass's bounds as if
    each had been examined) instead of their being examined one by one.

    The gate answers for jobs that come up later in the order, so its answer holds only
    while nothing the pass does could change it. Room only shrinks as a pass starts
    jobs, but a reservation dropped, moved or made stale (and, under fair share, any
    decision: keys move) can let a job act that was ruled out: `gate.loosened()` says
    on which pools, and every list using them is taken up again from its first job
    after the point the pass has reached, so each job is judged as at its own place in
    the order."""
    dynamic = order.dynamic
    heap: list[HeapEntry] = []
    lists: list[JobList] = []
    # Per list, the index its one live heap entry points at, PARKED, or DROPPED; and that
    # entry itself (an entry of a list taken up again is stale: passed by when popped).
    cursor: list[int] = []
    live: list[int] = []  # serial number of each list's live entry
    serial = 0
    # Under fair share, per list: how many of its first jobs the order has passed, at the
    # keys they had then (a start raises its programme's keys, and a job passed before
    # that must not be taken up again after).
    passed: list[int] = []
    mask = consider.mask
    for queued in queue.lists.values():
        if classes[queued.class_index].pool_mask & mask:
            n = len(lists)
            head = queued.lo  # a queue's list is never empty
            lists.append(queued)
            passed.append(head)
            # The gate is asked here too, before the list costs a heap entry: most
            # lists a pass weighs can do nothing (after a finish at 80% load, a pass
            # weighs ~6 lists and examines 0.4 jobs), and a heap of them cost more than
            # the answers. Exact: an answer only narrows as the pass goes on, except
            # where `gate.loosened` says, and that takes parked lists up again too.
            # Under fair share it must be asked here: a list parked now is taken up
            # again at its current key, where one left in the heap keeps the key it
            # was pushed with (asking lazily changed decisions where a preemption
            # lowered a programme's share mid-pass).
            if gate is not None and gate.room(queued, head) < 0:
                cursor.append(PARKED)
                live.append(-1)
            else:
                cursor.append(head)
                live.append(serial)
                heap.append(entry(order, queued.jobs[head], n, head, serial))
                serial += 1
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
        if live[n] != top[6]:
            continue  # superseded when the list was taken up again
        queued = lists[n]
        jobs = queued.jobs
        if i >= len(jobs):
            cursor[n] = PARKED
            continue
        job = jobs[i]
        if not classes[job.eligibility_class].pool_mask & consider.mask:
            cursor[n] = DROPPED
            continue
        if gate is not None:
            room = gate.room(queued, i)
            if room < 0:
                cursor[n] = PARKED
                continue
            if job.fit_size > room:
                nxt = gate.pass_over(queued, i, room)
                if nxt < len(jobs):
                    cursor[n] = nxt
                    follow = entry(order, jobs[nxt], n, nxt, serial)
                    live[n] = serial
                    serial += 1
                else:
                    cursor[n] = PARKED
                continue
        # A key differs from the one it was pushed with only in its share (fair share:
        # the programme's usage grew in this pass), so only that is compared.
        if dynamic and order.share(job.tenant) > top[1]:
            follow = entry(order, job, n, i, serial)
            live[n] = serial
            serial += 1
            continue
        yield job
        # A job that started, or went to wait outside the queue, has left its list: the
        # jobs before it moved one place on (`queue.JobList`), those after stayed.
        nxt = i + 1
        if passed[n] <= i and (job.state is not JobState.PENDING or job.held):
            passed[n] += 1
        if nxt < len(jobs):
            cursor[n] = nxt
            follow = entry(order, jobs[nxt], n, nxt, serial)
            live[n] = serial
            serial += 1
        else:
            cursor[n] = PARKED
        if gate is None:
            continue
        loosened = gate.loosened()
        if not loosened:
            continue
        # Take up again, after the point reached (the key just yielded), every list
        # using a loosened pool whose jobs from there on the gate had ruled out.
        reached = (top[0], top[1], top[2], top[3])
        if dynamic:
            # The programme just served may use more now: its keys grew. What of its
            # lists the order had passed, it passed at the old keys, which order its
            # lists as their static keys do.
            static = (top[0], top[2], top[3])
            for m, queued in enumerate(lists):
                if queued.tenant == job.tenant:
                    passed[m] = max(passed[m], bisect_right(queued.keys, static, queued.lo))
        for m, queued in enumerate(lists):
            at = cursor[m]
            if at == DROPPED or not queued.pool_mask & loosened:
                continue
            k = max(first_after(queued, order, reached), passed[m])
            if k < len(queued.jobs) and (at == PARKED or k < at):
                cursor[m] = k
                heapq.heappush(heap, entry(order, queued.jobs[k], m, k, serial))
                live[m] = serial
                serial += 1
        if follow is not None and live[follow[4]] != follow[6]:
            follow = None  # its list was taken up again at an earlier job


def first_after(queued: JobList, order: QueueOrder, reached: OrderKey) -> int:
    """The index of the first job of a list whose key is past `reached`. A list's jobs
    share a programme, so their keys share one share and rise with their static keys:
    the answer is a bisection of the list's static keys against `reached` translated
    into them, and touches no job (at a million queued, a probe that read each job's
    key cost a cache miss and a share lookup per step)."""
    priority, share, submitted, seq = reached
    keys, lo = queued.keys, queued.lo
    own = order.share(queued.tenant)
    if own < share:  # behind `reached` only where its priority class is higher
        return bisect_right(keys, (priority, INFINITY, 0), lo)
    if own > share:  # past `reached` from its priority class on
        return bisect_left(keys, (priority, -INFINITY, 0), lo)
    return bisect_right(keys, (priority, submitted, seq), lo)


def entry(order: QueueOrder, job: Job, n: int, i: int, serial: int) -> HeapEntry:
    """The heap entry of `job`, at index `i` of list `n`: its key, then where it is."""
    priority, share, submitted, seq = order.key(job)
    return (priority, share, submitted, seq, n, i, serial)

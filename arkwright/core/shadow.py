"""When could a gang start on a pool, if running jobs end at their time limits?

The answer for EASY backfill's shadow time used to be a walk over the pool's running
jobs in end order, once per replan: O(running jobs) after every finish. This index keeps
it incrementally instead. For each gang threshold T that has been asked about, every
node has a *reach key*: the (end, seq) of the running job whose end brings the node to at
least T free GPUs (minus infinity if it has them now). With the distinct keys sorted and
counted, the gang of `need` nodes fits at the first key by which `need` nodes are
reached; the nodes suitable then are those whose key is no later. A start or finish
re-keys only the nodes it touched, and only when someone next asks. The answers equal
the walk's exactly (`gang.walk_until_fits` is the reference; the differential test
holds them together).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort

from arkwright.core.gang import GangShape
from arkwright.core.job import Job
from arkwright.core.pool_state import PoolState

# A node's reach key, (end, seq) of a running job. Typed as a tuple of any length on
# purpose: the compiled core keeps a fixed-length tuple unboxed and would build a fresh
# object for it at every dict and bisect call of the re-keying loop; this stays the one
# object made by `_reach`.
ReachKey = tuple[float, ...]

_NOW: ReachKey = (-math.inf, -1)


class ShadowIndex:
    """Built on the first question, not before: a pool nobody asks about (no backfill,
    no estimate) costs its starts and finishes nothing."""

    __slots__ = ("_counts", "_entries", "_jobs_on", "_lists", "_pending", "_running", "_state")

    def __init__(self, state: PoolState, running: list[Job]) -> None:
        self._state = state
        self._running = running  # the pool's running jobs by (expected end, seq), shared
        # Per node, its running jobs' (end, seq, gpus there), in end order; None until
        # the first question.
        self._jobs_on: list[list[tuple[float, int, int]]] | None = None
        self._lists: dict[int, list[ReachKey]] = {}  # T -> distinct keys, sorted
        self._counts: dict[int, dict[ReachKey, int]] = {}  # T -> nodes per key
        self._entries: dict[int, list[ReachKey]] = {}  # T -> key by node
        self._pending: dict[int, set[int]] = {}  # T -> nodes to re-key

    def _build(self) -> None:
        jobs_on: list[list[tuple[float, int, int]]] = [[] for _ in range(self._state.nodes)]
        for job in self._running:  # in end order, so every node's list comes out sorted
            for node, gpus in job.allocation:
                jobs_on[node].append((job.expected_end, job.seq, gpus))
        self._jobs_on = jobs_on

    def started(self, job: Job) -> None:
        jobs_on = self._jobs_on
        if jobs_on is None:
            return
        end, seq = job.expected_end, job.seq
        whole = self._state.gpus_per_node
        shared = held_whole = False
        entry = (end, seq, whole)
        for node, gpus in job.allocation:
            if gpus == whole:
                jobs_on[node].append(entry)  # a whole node was free: its list was empty
                held_whole = True
            else:
                insort(jobs_on[node], (end, seq, gpus))
                shared = True
        if held_whole:
            self._rekey_whole(job, (end, seq))
        if shared:
            self._touch(job)

    def ended(self, job: Job) -> None:
        """Call while `job.allocation` still names its nodes."""
        jobs_on = self._jobs_on
        if jobs_on is None:
            return
        whole = self._state.gpus_per_node
        shared = held_whole = False
        key = (job.expected_end, job.seq)
        for node, gpus in job.allocation:
            on_node = jobs_on[node]
            if gpus == whole:
                on_node.pop()  # the node's only job
                held_whole = True
            else:
                del on_node[bisect_left(on_node, key)]
                shared = True
        if held_whole:
            self._rekey_whole(job, _NOW)
        if shared:
            self._touch(job)

    def _rekey_whole(self, job: Job, key: ReachKey) -> None:
        """The nodes the job holds whole, re-keyed at once for every threshold: a node
        wholly given to one job reaches any threshold when that job ends, so its key is
        the job's while it runs and "now" once it has ended: nothing to walk. Their old
        keys are equal in the usual case (the job's, or "now"), so the counts move by the
        run of equal keys, not by the node. Nodes the job shares are left to `_touch`."""
        whole = self._state.gpus_per_node
        allocation = job.allocation
        for threshold, entries in self._entries.items():
            counts = self._counts[threshold]
            ends = self._lists[threshold]
            moved = 0
            run_key: ReachKey | None = None
            run = 0
            for node, gpus in allocation:
                if gpus != whole:
                    continue
                old = entries[node]
                entries[node] = key
                moved += 1
                # Equal keys may be distinct objects (each node's was made by `_reach`).
                if old is run_key or (run_key is not None and old == run_key):
                    run += 1
                    continue
                if run_key is not None:
                    self._uncount(counts, ends, run_key, run)
                run_key, run = old, 1
            if run_key is None:
                continue
            self._uncount(counts, ends, run_key, run)
            had = counts.get(key)
            if had:
                counts[key] = had + moved
            else:
                counts[key] = moved
                insort(ends, key)

    @staticmethod
    def _uncount(counts: dict[ReachKey, int], ends: list[ReachKey], key: ReachKey, n: int) -> None:
        left = counts[key] - n
        if left:
            counts[key] = left
        else:
            del counts[key]
            del ends[bisect_left(ends, key)]

    def _touch(self, job: Job) -> None:
        whole = self._state.gpus_per_node
        for pending in self._pending.values():
            for node, gpus in job.allocation:
                if gpus != whole:
                    pending.add(node)

    def earliest(self, shape: GangShape) -> tuple[float, int]:
        """(end of the job whose release makes the gang fit: -inf if it fits now, inf if
        never; nodes suitable at that point)."""
        threshold, need = shape.threshold, shape.need
        if self._jobs_on is None:
            self._build()
        ends, counts = self._keys(threshold)
        reached = 0
        for key in ends:  # distinct reach keys, soonest first: stops within `need` nodes
            reached += counts[key]
            if reached >= need:
                return key[0], reached
        return math.inf, reached

    def _keys(self, threshold: int) -> tuple[list[ReachKey], dict[ReachKey, int]]:
        """The distinct reach keys for this threshold, sorted, and how many nodes have
        each. Keeping distinct keys, not one per node, makes a multi-node job's start or
        finish move one key, not one per node, in a list as long as the running jobs."""
        ends = self._lists.get(threshold)
        if ends is None:
            entries = [self._reach(node, threshold) for node in range(self._state.nodes)]
            counts: dict[ReachKey, int] = {}
            for key in entries:
                counts[key] = counts.get(key, 0) + 1
            ends = sorted(counts)
            self._lists[threshold] = ends
            self._counts[threshold] = counts
            self._entries[threshold] = entries
            self._pending[threshold] = set()
            return ends, counts
        counts = self._counts[threshold]
        pending = self._pending[threshold]
        if pending:
            entries = self._entries[threshold]
            for node in pending:
                old = entries[node]
                new = self._reach(node, threshold)
                if new == old:
                    continue
                entries[node] = new
                left = counts[old] - 1
                if left:
                    counts[old] = left
                else:
                    del counts[old]
                    del ends[bisect_left(ends, old)]
                had = counts.get(new)
                if had:
                    counts[new] = had + 1
                else:
                    counts[new] = 1
                    insort(ends, new)
            pending.clear()
        return ends, counts

    def _reach(self, node: int, threshold: int) -> ReachKey:
        free = self._state.node_free[node]
        if free >= threshold:
            return _NOW
        jobs_on = self._jobs_on
        assert jobs_on is not None  # built by the question that led here
        for end, seq, gpus in jobs_on[node]:
            free += gpus
            if free >= threshold:
                return (end, seq)
        raise AssertionError(f"node {node} never frees {threshold} GPUs")

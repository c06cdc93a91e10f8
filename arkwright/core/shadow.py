"""When could a gang start on a pool, if running jobs end at their time limits?

The answer for EASY backfill's shadow time used to be a walk over the pool's running
jobs in end order, once per replan: O(running jobs) after every finish. This index keeps
it incrementally instead. For a gang threshold T, every node has a *reach key*: the
(end, seq) of the running job whose end brings the node to at least T free GPUs (minus
infinity if it has them now). With the distinct keys sorted and counted, the gang of
`need` nodes fits at the first key by which `need` nodes are reached; the nodes suitable
then are those whose key is no later. The answers equal the walk's exactly
(`gang.walk_until_fits` is the reference; tests/core/test_shadow.py holds them together).

Two layers keep the keys. A node that is wholly free, or wholly held by one job, has the
same key at every threshold ("now", or that job's): those nodes are counted once, in
the *whole* layer, so a gang that takes or gives back whole nodes moves one count there,
whatever its size (a 64-node gang used to re-key 64 nodes at every threshold asked
about). A node shared by jobs that each hold part of it has a key per threshold, kept
per threshold for those nodes only and re-keyed when someone next asks. A question
merges the two layers in key order.
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

    __slots__ = (
        "_counts",
        "_entries",
        "_jobs_on",
        "_lists",
        "_pending",
        "_running",
        "_state",
        "_whole_counts",
        "_whole_keys",
    )

    def __init__(self, state: PoolState, running: list[Job]) -> None:
        self._state = state
        self._running = running  # the pool's running jobs by (expected end, seq), shared
        # Per node, the (end, seq, gpus there) of the jobs holding part of it, in end
        # order (empty: the node is in the whole layer); None until the first question.
        self._jobs_on: list[list[tuple[float, int, int]]] | None = None
        # The whole layer: distinct keys of wholly free or wholly held nodes, sorted,
        # and how many nodes have each.
        self._whole_keys: list[ReachKey] = []
        self._whole_counts: dict[ReachKey, int] = {}
        # The shared layer, per threshold T: distinct keys sorted, nodes per key, the key
        # by node (None: not a shared node), and nodes to re-key.
        self._lists: dict[int, list[ReachKey]] = {}
        self._counts: dict[int, dict[ReachKey, int]] = {}
        self._entries: dict[int, list[ReachKey | None]] = {}
        self._pending: dict[int, set[int]] = {}

    def _build(self) -> None:
        state = self._state
        whole = state.gpus_per_node
        jobs_on: list[list[tuple[float, int, int]]] = [[] for _ in range(state.nodes)]
        held_by: dict[int, ReachKey] = {}  # node -> key of the job holding it whole
        for job in self._running:  # in end order, so every node's list comes out sorted
            for node, gpus in job.allocation:
                if gpus == whole:
                    held_by[node] = (job.expected_end, job.seq)
                else:
                    jobs_on[node].append((job.expected_end, job.seq, gpus))
        self._jobs_on = jobs_on
        counts: dict[ReachKey, int] = {}
        free = state.node_free
        for node in range(state.nodes):
            if jobs_on[node]:
                continue
            key = _NOW if free[node] == whole else held_by[node]
            counts[key] = counts.get(key, 0) + 1
        self._whole_counts = counts
        self._whole_keys = sorted(counts)

    def started(self, job: Job) -> None:
        jobs_on = self._jobs_on
        if jobs_on is None:
            return
        end, seq = job.expected_end, job.seq
        whole = self._state.gpus_per_node
        held_whole = 0
        for node, gpus in job.allocation:
            if gpus == whole:
                held_whole += 1  # a wholly free node, now wholly held
                continue
            on_node = jobs_on[node]
            if not on_node:
                self._move_whole(_NOW, None, 1)  # a free node becomes a shared one
            insort(on_node, (end, seq, gpus))
            for pending in self._pending.values():
                pending.add(node)
        if held_whole:
            self._move_whole(_NOW, (end, seq), held_whole)

    def ended(self, job: Job) -> None:
        """Call while `job.allocation` still names its nodes."""
        jobs_on = self._jobs_on
        if jobs_on is None:
            return
        whole = self._state.gpus_per_node
        held_whole = 0
        key = (job.expected_end, job.seq)
        for node, gpus in job.allocation:
            if gpus == whole:
                held_whole += 1
                continue
            on_node = jobs_on[node]
            del on_node[bisect_left(on_node, key)]
            if not on_node:
                self._move_whole(None, _NOW, 1)  # its last shared job gone: wholly free
            for pending in self._pending.values():
                pending.add(node)
        if held_whole:
            self._move_whole(key, _NOW, held_whole)

    def _move_whole(self, old: ReachKey | None, new: ReachKey | None, n: int) -> None:
        """`n` nodes of the whole layer change key from `old` to `new` (None: the nodes
        leave or join the layer)."""
        counts, keys = self._whole_counts, self._whole_keys
        if old is not None:
            _uncount(counts, keys, old, n)
        if new is not None:
            _count(counts, keys, new, n)

    def earliest(self, shape: GangShape) -> tuple[float, int]:
        """(end of the job whose release makes the gang fit: -inf if it fits now, inf if
        never; nodes suitable at that point)."""
        threshold, need = shape.threshold, shape.need
        if threshold > self._state.gpus_per_node:
            raise AssertionError(f"no node has {threshold} GPUs")
        if self._jobs_on is None:
            self._build()
        shared, shared_counts = self._keys(threshold)
        whole, whole_counts = self._whole_keys, self._whole_counts
        # Both layers' distinct keys, soonest first: stops within `need` nodes.
        reached = 0
        i = j = 0
        n_whole, n_shared = len(whole), len(shared)
        while i < n_whole or j < n_shared:
            if j == n_shared or (i < n_whole and whole[i] <= shared[j]):
                key = whole[i]
                reached += whole_counts[key]
                i += 1
                if j < n_shared and shared[j] == key:
                    reached += shared_counts[key]
                    j += 1
            else:
                key = shared[j]
                reached += shared_counts[key]
                j += 1
            if reached >= need:
                return key[0], reached
        return math.inf, reached

    def _keys(self, threshold: int) -> tuple[list[ReachKey], dict[ReachKey, int]]:
        """The shared layer's distinct keys for this threshold, sorted, and how many
        nodes have each, its nodes touched since last asked re-keyed first. Distinct
        keys, not one per node, keep the list as short as the jobs sharing nodes."""
        jobs_on = self._jobs_on
        assert jobs_on is not None  # built by the question that led here
        ends = self._lists.get(threshold)
        if ends is None:
            entries: list[ReachKey | None] = [
                self._reach(node, threshold) if jobs_on[node] else None
                for node in range(self._state.nodes)
            ]
            counts: dict[ReachKey, int] = {}
            for key in entries:
                if key is not None:
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
                new = self._reach(node, threshold) if jobs_on[node] else None
                if new == old:
                    continue
                entries[node] = new
                if old is not None:
                    _uncount(counts, ends, old, 1)
                if new is not None:
                    _count(counts, ends, new, 1)
            pending.clear()
        return ends, counts

    def _reach(self, node: int, threshold: int) -> ReachKey:
        """A shared node's key: the end that frees `threshold` GPUs on it."""
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


def _count(counts: dict[ReachKey, int], keys: list[ReachKey], key: ReachKey, n: int) -> None:
    had = counts.get(key)
    if had:
        counts[key] = had + n
    else:
        counts[key] = n
        insort(keys, key)


def _uncount(counts: dict[ReachKey, int], keys: list[ReachKey], key: ReachKey, n: int) -> None:
    left = counts[key] - n
    if left:
        counts[key] = left
    else:
        del counts[key]
        del keys[bisect_left(keys, key)]

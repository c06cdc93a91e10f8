"""Node-level allocation within one pool: gangs are all-or-nothing.

A job of at most one node's GPUs goes on one node (best fit: the fullest node that still
holds it, to keep whole nodes free for big gangs); a larger job takes whole free nodes.
Nodes are tracked in buckets by free-GPU count so both cases cost O(GPUs per node).
Nodes with no free GPU are in no bucket: nothing asks for them, and a big gang's start
and end would otherwise move every node it holds through that bucket too.
"""

from __future__ import annotations

import heapq
from typing import Protocol

from arkwright.core.errors import OverAllocation

__all__ = ["Allocation", "GangShapeLike", "OverAllocation", "PoolState"]

Allocation = tuple[tuple[int, int], ...]


class GangShapeLike(Protocol):
    @property
    def threshold(self) -> int: ...  # GPUs per node

    @property
    def need(self) -> int: ...  # nodes


class PoolState:
    __slots__ = (
        "_fit",
        "free_gpus",
        "gpus_per_node",
        "node_free",
        "nodes",
        "nodes_by_free",
        "total_gpus",
    )

    def __init__(self, nodes: int, gpus_per_node: int) -> None:
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        self.total_gpus = nodes * gpus_per_node
        self.node_free = [gpus_per_node] * nodes
        # Nodes by free GPUs, from 1 to gpus_per_node (index 0 stays empty: see above).
        self.nodes_by_free: list[set[int]] = [set() for _ in range(gpus_per_node + 1)]
        self.nodes_by_free[gpus_per_node] = set(range(nodes))
        self.free_gpus = self.total_gpus
        # `max_fit` until GPUs move (-1: not known): the pass gate asks it of every pool
        # of every queue list it weighs, far more often than a pool changes.
        self._fit = -1

    @property
    def free_nodes(self) -> int:
        return len(self.nodes_by_free[self.gpus_per_node])

    def fits(self, gpus: int) -> bool:
        gpn = self.gpus_per_node
        if gpus <= gpn:
            by_free = self.nodes_by_free
            for k in range(gpus, gpn + 1):  # noqa: SIM110 - any() makes a generator per call
                if by_free[k]:
                    return True
            return False
        return len(self.nodes_by_free[gpn]) * gpn >= gpus

    def max_fit(self) -> int:
        """The largest gang that would fit now."""
        if self._fit >= 0:
            return self._fit
        gpn = self.gpus_per_node
        fit = len(self.nodes_by_free[gpn]) * gpn
        if not fit:
            for k in range(gpn - 1, 0, -1):
                if self.nodes_by_free[k]:
                    fit = k
                    break
        self._fit = fit
        return fit

    def fits_gang(self, per_node: int, nodes: int) -> bool:
        """Whether `nodes` distinct nodes with `per_node` free GPUs each exist now."""
        gpn = self.gpus_per_node
        if per_node > gpn:
            return False
        if nodes == 1 or per_node == gpn:
            return self.fits(per_node * nodes)
        by_free = self.nodes_by_free
        found = 0
        for k in range(per_node, gpn + 1):
            found += len(by_free[k])
            if found >= nodes:
                return True
        return False

    def allocate_gang(self, shape: GangShapeLike) -> Allocation | None:
        """Take `shape.need` distinct nodes with `shape.threshold` GPUs each, or nothing.
        One node, or whole nodes, take the same path as `allocate` (same choices)."""
        per_node, nodes = shape.threshold, shape.need
        gpn = self.gpus_per_node
        if per_node > gpn:
            return None
        if nodes == 1 or per_node == gpn:
            return self.allocate(per_node * nodes)
        by_free = self.nodes_by_free
        chosen: list[int] = []
        for k in range(per_node, gpn + 1):  # best fit: the fullest nodes that still hold it
            # Lowest node numbers first: the choice must not depend on set order.
            chosen += heapq.nsmallest(nodes - len(chosen), by_free[k])
            if len(chosen) == nodes:
                break
        if len(chosen) < nodes:
            return None
        taken = tuple((node, per_node) for node in chosen)
        self.take(taken)
        return taken

    def allocate(self, gpus: int) -> Allocation | None:
        """Take a gang, or nothing at all. Returns (node, gpus) pairs."""
        self._fit = -1
        gpn = self.gpus_per_node
        by_free = self.nodes_by_free
        if gpus <= gpn:
            for k in range(gpus, gpn + 1):
                bucket = by_free[k]
                if bucket:
                    node = bucket.pop()
                    left = k - gpus
                    if left:
                        by_free[left].add(node)
                    self.node_free[node] = left
                    self.free_gpus -= gpus
                    return ((node, gpus),)
            return None
        need = -(-gpus // gpn)
        whole = by_free[gpn]
        if len(whole) < need:
            return None
        nodes = [whole.pop() for _ in range(need)]
        node_free = self.node_free
        for node in nodes:
            node_free[node] = 0
        self.free_gpus -= need * gpn
        return tuple([(node, gpn) for node in nodes])

    def take(self, allocation: Allocation) -> None:
        """Claim these exact (node, gpus) pairs, or nothing if any is not free."""
        self._fit = -1
        wanted: dict[int, int] = {}
        for node, gpus in allocation:
            wanted[node] = wanted.get(node, 0) + gpus
        for node, gpus in wanted.items():
            if not 0 <= node < self.nodes or gpus <= 0 or self.node_free[node] < gpus:
                raise OverAllocation(f"node {node} cannot give {gpus} GPUs")
        for node, gpus in wanted.items():
            before = self.node_free[node]
            self.nodes_by_free[before].discard(node)
            if before - gpus:
                self.nodes_by_free[before - gpus].add(node)
            self.node_free[node] = before - gpus
            self.free_gpus -= gpus

    def release(self, allocation: Allocation) -> None:
        self._fit = -1
        by_free = self.nodes_by_free
        gpn = self.gpus_per_node
        node_free = self.node_free
        whole: list[int] = []  # nodes the job held whole: moved between buckets at once
        for node, gpus in allocation:
            before = node_free[node]
            after = before + gpus
            if after > gpn:
                self._move_whole(whole)  # the buckets stay true to node_free
                raise OverAllocation(f"node {node} would have {after} free GPUs of {gpn}")
            if before == 0 and after == gpn:
                whole.append(node)
            else:
                if before:
                    by_free[before].discard(node)
                by_free[after].add(node)
            node_free[node] = after
            self.free_gpus += gpus
        self._move_whole(whole)

    def _move_whole(self, nodes: list[int]) -> None:
        """Nodes a job held whole join the free bucket in one call, not one per node (in
        the order given: set order decides later picks)."""
        if nodes:
            self.nodes_by_free[self.gpus_per_node].update(nodes)

    def check(self) -> None:
        """Full consistency audit (tests and debugging; O(nodes))."""
        gpn = self.gpus_per_node
        total = 0
        for node, free in enumerate(self.node_free):
            if not 0 <= free <= gpn:
                raise OverAllocation(f"node {node} has {free} free GPUs of {gpn}")
            if free and node not in self.nodes_by_free[free]:
                raise OverAllocation(f"node {node} missing from its free bucket {free}")
            total += free
        if self.nodes_by_free[0]:
            raise OverAllocation("a node sits in the bucket of nodes with nothing free")
        if sum(len(b) for b in self.nodes_by_free) != sum(1 for f in self.node_free if f):
            raise OverAllocation("a node sits in more than one free bucket")
        if total != self.free_gpus:
            raise OverAllocation(f"free GPU count {self.free_gpus} != node sum {total}")
        largest = max(
            (len(self.nodes_by_free[gpn]) * gpn, *(k for k in range(gpn) if self.nodes_by_free[k])),
        )
        if self._fit >= 0 and self._fit != largest:
            raise OverAllocation(f"remembered largest fit {self._fit} != {largest} now")

"""Gang arithmetic, written once: how many nodes a gang needs and when enough are free.

A job of at most one node's GPUs needs one node with that many free GPUs; a larger job
needs whole free nodes (multi-node gangs hold their nodes exclusively, see `PoolState`).
A job with a fixed node shape (`Job.nodes`, as sbatch's --nodes with --gpus-per-node)
needs exactly that many distinct nodes with gpus / nodes free GPUs each, and holds only
those GPUs (as Slurm, without --exclusive).
Backfill's reservation planning and preemption's victim search both walk jobs in the
order their GPUs would come free and ask the same question — "does the gang fit yet?" —
so that walk lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from arkwright.core.fleet import Pool
from arkwright.core.job import Job
from arkwright.core.pool_state import PoolState


class GangShape:
    """A plain class, not a dataclass: one is made for every placement and plan, and a
    dataclass's generated `__init__` stays interpreted in the compiled core."""

    __slots__ = ("need", "threshold")

    def __init__(self, threshold: int, need: int) -> None:
        self.threshold = threshold  # free GPUs a node must have to count towards the gang
        self.need = need  # how many such nodes the gang needs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GangShape):
            return NotImplemented
        return self.threshold == other.threshold and self.need == other.need

    def __hash__(self) -> int:
        return hash((self.threshold, self.need))

    def __repr__(self) -> str:
        return f"GangShape(threshold={self.threshold}, need={self.need})"

    def __reduce__(self) -> tuple:
        return (GangShape, (self.threshold, self.need))  # compiled, too (core/pickling.py)


def gang_shape(gpus: int, gpus_per_node: int) -> GangShape:
    if gpus <= gpus_per_node:
        return GangShape(gpus, 1)
    return GangShape(gpus_per_node, -(-gpus // gpus_per_node))


def shape_on(job: Job, gpus_per_node: int) -> GangShape:
    """The gang `job` forms on nodes of this size: its own shape if it fixed one."""
    if job.nodes:
        return GangShape(job.gpus // job.nodes, job.nodes)
    return gang_shape(job.gpus, gpus_per_node)


def fits_now(state: PoolState, job: Job) -> bool:
    """Whether the job's gang fits the pool's free GPUs now."""
    if job.nodes:
        return state.fits_gang(job.gpus // job.nodes, job.nodes)
    return state.fits(job.gpus)


def can_ever_hold(job: Job, pool: Pool) -> bool:
    """Whether the pool, empty, could hold the job's gang."""
    shape = shape_on(job, pool.gpus_per_node)
    return shape.threshold <= pool.gpus_per_node and shape.need <= pool.nodes


def held_gpus(job: Job, pool: Pool) -> int:
    """GPUs the job holds on this pool (whole nodes for a multi-node gang of no shape)."""
    shape = shape_on(job, pool.gpus_per_node)
    return shape.threshold * shape.need


def suitable_nodes(state: PoolState, shape: GangShape) -> int:
    """Nodes that could take a member of this gang right now."""
    by_free = state.nodes_by_free
    return sum(len(by_free[k]) for k in range(shape.threshold, state.gpus_per_node + 1))


def walk_until_fits(
    state: PoolState, shape: GangShape, releases: Sequence[Job], suitable: int
) -> tuple[int, int]:
    """Release `releases` one by one (in the given order) on top of the pool's free GPUs
    until the gang fits. Returns (index of the job whose release made it fit, or -1 if it
    never does; suitable nodes at that point). `suitable` is `suitable_nodes` now."""
    threshold, need = shape.threshold, shape.need
    node_free = state.node_free
    freed: dict[int, int] = {}
    for index, job in enumerate(releases):
        for node, gpus in job.allocation:
            before = freed.get(node)
            if before is None:
                before = node_free[node]
            freed[node] = before + gpus
            if before < threshold <= before + gpus:
                suitable += 1
        if suitable >= need:
            return index, suitable
    return -1, suitable

"""A submission's Slurm-world names and defaults resolved against the fleet, at the API
boundary: partition -> pools, account -> programme, QoS -> priority class, constraint
and GRES type -> GPU models, no --time -> the pool's default time limit, UNLIMITED -> the
longest the pools allow. Returns the resolved submission and the warnings the submitter
sees. The rules are `arkwright.fleets.slurm_resolve`'s; this only translates a JobSubmit.
"""

from __future__ import annotations

from collections.abc import Collection

from arkwright.core.fleet import Fleet, Pool
from arkwright.core.job import PriorityClass
from arkwright.core.throughput import ThroughputTable
from arkwright.fleets.slurm_names import SlurmNames, default_slurm_names
from arkwright.fleets.slurm_resolve import NamesRequest, resolve
from arkwright.service.schema import JobSubmit
from arkwright.sim.throughput_file import table_for

# Per fleet, what a request needs and a fleet file did not give: built once, not per
# request. Keyed by id() with the fleet held, so an id is never reused while cached.
_derived: dict[int, tuple[Fleet, SlurmNames, ThroughputTable]] = {}


def _derived_for(fleet: Fleet) -> tuple[SlurmNames, ThroughputTable]:
    held = _derived.get(id(fleet))
    if held is None or held[0] is not fleet:
        names = fleet.slurm_names
        if not isinstance(names, SlurmNames):  # a fleet not read from a file: its own names
            names = default_slurm_names(fleet.pools, fleet.backend_settings)
        if len(_derived) > 8:  # a process serves one fleet; tests make a few
            _derived.clear()
        held = _derived[id(fleet)] = (fleet, names, table_for(fleet))
    return held[1], held[2]


def names_of(fleet: Fleet) -> SlurmNames:
    return _derived_for(fleet)[0]


def resolve_submission(
    spec: JobSubmit,
    fleet: Fleet,
    programmes: Collection[str] | None = None,
    throughput: ThroughputTable | None = None,
) -> tuple[JobSubmit, list[str]]:
    """The submission with its names resolved, and the warnings; ValueError (a
    SlurmNameError) naming the field for what the fleet refuses. `programmes`: the
    programmes an unmapped account may name (default: the fleet file's). `throughput`:
    the control plane's table (default: the one `serve` builds from the fleet), so an
    UNLIMITED job gets the longest time the core admits on its pools."""
    request = NamesRequest(
        partition=spec.partition,
        account=spec.account,
        qos=spec.qos,
        constraint=spec.constraint,
        gres_type=spec.gres_type,
        time=spec.time,
        pools=spec.pools,
        sites=spec.sites,
        gpu_type=spec.gpu_type,
        tenant=spec.tenant,
        # The schema fills "normal" in: only a priority the submitter wrote can conflict.
        priority=(
            PriorityClass.parse(spec.priority) if "priority" in spec.model_fields_set else None
        ),
    )
    known = frozenset(programmes) if programmes is not None else frozenset(fleet.tenant_by_name)
    names, default_table = _derived_for(fleet)
    table = throughput or default_table

    def speed(pool: Pool) -> float:
        return table.speed(spec.job_type, pool.gpu_model)

    result = resolve(request, fleet.pools, names, known, speed)
    updates: dict = {"time": result.time}
    if result.pools is not None:
        updates["pools"] = list(result.pools)
    if result.tenant is not None:
        updates["tenant"] = result.tenant
    if result.priority is not None:
        updates["priority"] = result.priority.name.lower()
    if result.gpu_types is not None:
        updates["gpu_type"] = list(result.gpu_types)
    return spec.model_copy(update=updates), list(result.warnings)

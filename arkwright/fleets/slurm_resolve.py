"""A submission's Slurm-world names resolved against the fleet's `[slurm_names]`.

Steps, each narrowing what the job may use; every restriction is combined with the
others by intersection, and an empty one is refused naming both sides:
  1. --account -> the programme charged (and, for `proj@hw`, the hardware named);
  2. --qos -> a priority class;
  3. GPU models: gpu_type, --constraint, the GRES type, an account's `@hw`;
  4. pools: --partition (a comma list: any of them), pools, sites, an account's `@hw`;
  5. the time limit: UNLIMITED -> the longest the pools allow; none -> a default, warned.

Pure: no I/O, no service imports. Errors are `SlurmNameError`s whose message starts
with the field at fault; warnings say what was ignored or filled in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from arkwright.core.fleet import Pool
from arkwright.core.job import PriorityClass
from arkwright.fleets.slurm_constraint import ConstraintError, evaluate
from arkwright.fleets.slurm_names import ALL_MODELS, Partition, SlurmNames
from arkwright.timefmt import format_duration, is_unlimited, parse_duration

SHOWN_NAMES = 8  # names listed in one message; a hostile list is not echoed whole


class SlurmNameError(ValueError):
    """The submission names something the fleet refuses: a 422, its message naming the field."""


@dataclass(frozen=True)
class NamesRequest:
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gres_type: str | None = None
    time: str | float | None = None
    pools: Sequence[str] | None = None
    sites: Sequence[str] | None = None
    gpu_type: Sequence[str] | None = None
    tenant: str | None = None
    priority: PriorityClass | None = None  # only when the submitter gave one


@dataclass(frozen=True)
class Resolution:
    pools: tuple[str, ...] | None  # None: no pool restriction from a name
    tenant: str | None
    priority: PriorityClass | None
    gpu_types: tuple[str, ...] | None  # None: any model
    time: str | float  # what to store: the request's own, or the limit filled in
    warnings: tuple[str, ...]


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


@dataclass
class _Restriction:
    field: str
    shown: str
    members: frozenset[str]


class _Narrowing:
    """Running intersections of model and pool restrictions, with who asked for each."""

    def __init__(self) -> None:
        self.models: list[_Restriction] = []
        self.pools: list[_Restriction] = []

    def add(self, into: list[_Restriction], item: _Restriction, what: str) -> None:
        if into:
            current = frozenset.intersection(*(r.members for r in into))
            if not current & item.members:
                others = " and ".join(f"{r.field} {r.shown}" for r in into)
                raise SlurmNameError(f"{item.field}: {item.shown} shares no {what} with {others}")
        into.append(item)

    def from_names(self) -> bool:
        """Whether a Slurm name (or `pools`/`sites`) restricts, not only gpu_type."""
        return bool(self.pools) or any(r.field != "gpu_type" for r in self.models)

    def model_set(self) -> frozenset[str] | None:
        if not self.models:
            return None
        return frozenset.intersection(*(r.members for r in self.models))

    def pool_set(self) -> frozenset[str] | None:
        if not self.pools:
            return None
        return frozenset.intersection(*(r.members for r in self.pools))


def _account(
    req: NamesRequest, names: SlurmNames, programmes: frozenset[str], narrow: _Narrowing
) -> str | None:
    if req.account is None:
        return req.tenant
    account = req.account.strip()
    programme = names.account(account, programmes)
    if programme is None and "@" in account:  # `proj@hw`: the programme's allocation on hw
        base, _, hardware = account.rpartition("@")
        programme = names.account(base, programmes) if base else None
        if programme is not None:
            partition = names.partitions.get(hardware.lower())
            models = names.features.get(hardware.lower()) or names.gres_types.get(hardware.lower())
            if partition is not None:
                narrow.add(
                    narrow.pools, _Restriction("account", repr(account), partition.pools), "pool"
                )
            elif models is not None:
                narrow.add(
                    narrow.models, _Restriction("account", repr(account), models), "GPU model"
                )
            else:
                raise SlurmNameError(
                    f"account: {account!r}: {hardware!r} is neither a partition nor a GPU "
                    "feature of this fleet"
                )
    if programme is None:
        raise SlurmNameError(
            f"account: {account!r} is not an account of this fleet ([slurm_names.accounts]) "
            "nor a programme's name"
        )
    if req.tenant is not None and req.tenant != programme:
        raise SlurmNameError(
            f"account: {account!r} charges programme {programme!r}, but tenant is {req.tenant!r}"
        )
    return programme


def _qos(req: NamesRequest, names: SlurmNames, warnings: list[str]) -> PriorityClass | None:
    if req.qos is None:
        return req.priority
    qos = req.qos.strip()
    priority = names.qos.get(qos.lower())
    if priority is None:
        if names.unknown_qos == "error":
            raise SlurmNameError(f"qos: {qos!r} is not a QoS of this fleet ([slurm_names.qos])")
        warnings.append(f"qos: {qos!r} is not a QoS of this fleet; ignored")
        return req.priority
    if req.priority is not None and req.priority != priority:
        raise SlurmNameError(
            f"qos: {qos!r} is priority {priority.name.lower()}, but priority is "
            f"{req.priority.name.lower()}"
        )
    return priority


def _constraint(text: str, names: SlurmNames, warnings: list[str]) -> frozenset[str]:
    ignored: list[str] = []

    def lookup(name: str) -> frozenset[str]:
        models = names.features.get(name.lower())
        if models is not None:
            return models
        if names.unknown_feature == "error":
            raise ConstraintError(
                f"{name!r} is not a feature of this fleet ([slurm_names.features])"
            )
        ignored.append(name)
        return ALL_MODELS  # ignored: it narrows nothing

    try:
        models = evaluate(text, lookup)
    except ConstraintError as exc:
        raise SlurmNameError(f"constraint: {text[:64]!r}: {exc}") from None
    if ignored:
        warnings.append(
            f"constraint: {_listed(sorted(set(ignored)))} not features of this fleet; ignored"
        )
    if not models:
        raise SlurmNameError(f"constraint: {text[:64]!r} matches no GPU model")
    return models


def _partitions(req: NamesRequest, names: SlurmNames, warnings: list[str]) -> list[Partition]:
    assert req.partition is not None
    asked = list(dict.fromkeys(p.strip() for p in req.partition.split(",") if p.strip()))
    if not asked:
        raise SlurmNameError(f"partition: {req.partition[:64]!r} names no partition")
    known = [names.partitions[p.lower()] for p in asked if p.lower() in names.partitions]
    unknown = [p for p in asked if p.lower() not in names.partitions]
    if unknown:
        if names.unknown_partition == "error":
            raise SlurmNameError(
                f"partition: {_listed(unknown)} not a partition of this fleet "
                f"(it has {_listed(sorted({p.name for p in names.partitions.values()}))})"
            )
        warnings.append(f"partition: {_listed(unknown)} not a partition of this fleet; ignored")
    return known


def _restrict(
    req: NamesRequest,
    names: SlurmNames,
    pools: Sequence[Pool],
    narrow: _Narrowing,
    warnings: list[str],
) -> tuple[list[Partition], frozenset[str] | None]:
    """Steps 3 and 4: the named partitions, and the pools the job may use (None: any)."""
    if req.gpu_type:
        narrow.add(
            narrow.models,
            _Restriction("gpu_type", _listed(req.gpu_type), frozenset(req.gpu_type)),
            "GPU model",
        )
    if req.constraint is not None:
        models = _constraint(req.constraint, names, warnings)
        narrow.add(
            narrow.models,
            _Restriction("constraint", repr(req.constraint[:64]), models),
            "GPU model",
        )
    if req.gres_type is not None:
        models = names.gres_types.get(req.gres_type.strip().lower())
        if models is None:
            raise SlurmNameError(
                f"gres_type: {req.gres_type[:64]!r} is not a GRES type of this fleet "
                "([slurm_names.gres_types], a GPU model or a vendor)"
            )
        narrow.add(
            narrow.models, _Restriction("gres_type", repr(req.gres_type), models), "GPU model"
        )
    partitions = _partitions(req, names, warnings) if req.partition is not None else []
    if partitions:
        members = frozenset().union(*(p.pools for p in partitions))
        narrow.add(
            narrow.pools, _Restriction("partition", repr(req.partition[:64]), members), "pool"
        )
    by_name = {p.name for p in pools}
    if req.pools:
        unknown = [p for p in req.pools if p not in by_name]
        if unknown:
            raise SlurmNameError(f"pools: {_listed(unknown)} not a pool of this fleet")
        narrow.add(
            narrow.pools, _Restriction("pools", _listed(req.pools), frozenset(req.pools)), "pool"
        )
    sites = {p.site.name for p in pools}
    if req.sites and set(req.sites) <= sites:  # an unknown site: the intake refuses it
        at = frozenset(p.name for p in pools if p.site.name in req.sites)
        narrow.add(narrow.pools, _Restriction("sites", _listed(req.sites), at), "pool")
    models, named = narrow.model_set(), narrow.pool_set()
    if models is None or not narrow.from_names():
        return partitions, named  # gpu_type alone: the core's eligibility answers for it
    fitting = frozenset(
        p.name for p in pools if p.gpu_model in models and (named is None or p.name in named)
    )
    if not fitting:
        asked = " and ".join(f"{r.field} {r.shown}" for r in narrow.models)
        where = " and ".join(f"{r.field} {r.shown}" for r in narrow.pools) or "this fleet"
        raise SlurmNameError(
            f"{narrow.models[-1].field}: no pool of {where} has a GPU model that {asked} "
            f"allows ({_listed(sorted(models))})"
        )
    return partitions, fitting if named is not None else None


def _time(
    req: NamesRequest,
    names: SlurmNames,
    usable: Sequence[Pool],
    partitions: list[Partition],
    speed: Callable[[Pool], float],
    warnings: list[str],
) -> str | float:
    """Step 5. Limits are wall-clock: a site's max_job_hours (else the fleet's max_time)
    and a partition's max_time bound the pools they cover. The core reads a job's time
    in reference-GPU seconds and gives it time / speed of wall-clock on a pool, so the
    longest time a pool admits is its wall-clock limit times the job's speed there."""

    def partition_limit(pool: Pool) -> float:
        limits = [p.max_s for p in partitions if pool.name in p.pools]
        return math.inf if not limits or None in limits else max(limits)  # type: ignore[type-var]

    def wall_limit(pool: Pool) -> float:
        return min(pool.site.max_job_duration_s or names.max_time_s, partition_limit(pool))

    widest = max(usable, key=lambda p: wall_limit(p) * speed(p))
    # Whole seconds, rounded down: a limit a fraction over the maximum is refused.
    longest = math.floor(min(wall_limit(widest) * speed(widest), names.max_time_s))
    if req.time is not None and not is_unlimited(req.time):
        asked = parse_duration(req.time)
        if all(asked / speed(p) > partition_limit(p) for p in usable):
            allowed = max(partition_limit(p) for p in usable)
            raise SlurmNameError(
                f"time: {req.time!r} is longer than partition {req.partition[:64]!r} allows "
                f"({format_duration(allowed)})"
            )
        return req.time
    if req.time is not None:
        warnings.append(
            f"time: {req.time!r} means the longest the job's pools allow: "
            f"{format_duration(wall_limit(widest))} on {widest.name}"
        )
        return format_duration(longest)
    # No --time: Slurm gives the partition's DefaultTime. Arkwright fixes one limit before
    # it knows the pool, so it takes the smallest default among the pools the job names:
    # never longer than the default of whichever it lands on (a default is what that
    # pool's operator lets backfill plan around); a job wanting longer says --time.
    usable_names = {p.name for p in usable}
    candidates: list[tuple[float, str]] = []
    for partition in partitions:
        if partition.default_s is not None:
            candidates.append((partition.default_s, f"partition {partition.name}'s default"))
        else:
            candidates += _pool_defaults(names, partition.pools & usable_names)
    candidates += _pool_defaults(names, set(req.pools or ()) & usable_names)
    seconds, source = (
        min(candidates) if candidates else (names.default_time_s, "the fleet's default")
    )
    if seconds > longest:
        seconds, source = longest, f"{source}, cut to the longest the pools allow,"
    warnings.append(
        f"time: none given; {source} {format_duration(seconds)} applies (set --time to choose)"
    )
    return format_duration(seconds)


def _pool_defaults(names: SlurmNames, pools: set[str] | frozenset[str]) -> list[tuple[float, str]]:
    return [
        (names.pool_default_s[p], f"pool {p}'s default")
        for p in sorted(pools)
        if p in names.pool_default_s
    ]


def resolve(
    req: NamesRequest,
    pools: Sequence[Pool],
    names: SlurmNames,
    programmes: frozenset[str],
    speed: Callable[[Pool], float] = lambda pool: 1.0,
) -> Resolution:
    """The request's names resolved (see the module's steps), or SlurmNameError.
    `speed(pool)`: the job's throughput there relative to the reference GPU, as the core
    reads it (its time limits are reference-GPU seconds)."""
    warnings: list[str] = []
    narrow = _Narrowing()
    tenant = _account(req, names, programmes, narrow)
    priority = _qos(req, names, warnings)
    partitions, allowed = _restrict(req, names, pools, narrow, warnings)
    usable = [p for p in pools if allowed is None or p.name in allowed]
    models = narrow.model_set()
    if models == ALL_MODELS:  # e.g. a feature every node has: no restriction
        models = None
    if models is not None:
        usable = [p for p in usable if p.gpu_model in models] or usable
    if models is not None and narrow.from_names():
        # Shown as the models it can get on its pools, not every one a name allows.
        models = frozenset(p.gpu_model for p in usable)
    elif models is not None:
        models = None  # gpu_type alone is the submitter's own field: left as written
    time = _time(req, names, usable, partitions, speed, warnings)
    # `sites` alone stays in its own field; a pool restriction from a name is written out.
    by_name = any(r.field != "sites" for r in narrow.pools)
    return Resolution(
        pools=tuple(sorted(allowed)) if allowed is not None and by_name else None,
        tenant=tenant,
        priority=priority,
        gpu_types=tuple(sorted(models)) if models is not None else None,
        time=time,
        warnings=tuple(warnings),
    )

"""The fleet file's `[slurm_names]`: the names a site's users already write in their batch
scripts (partitions, accounts, QoS, --constraint features, GRES types) mapped to
Arkwright's pools, programmes, priority classes and GPU models, and the default and
longest time limits a job gets when it gives none or asks for UNLIMITED.

This is the opposite direction to `[sites.slurm]` (fleets/slurm_settings.py), which says
how Arkwright itself writes a job for a Slurm site; the names that table uses (a pool's
real partition, its GRES type) are read here as well, so a script written for that site
works unchanged.

    [slurm_names]
    default_time = "1-00:00:00"     # no --time and no pool default: 24 h (see below)
    max_time = "365-00:00:00"       # UNLIMITED where no site sets max_job_hours
    unknown_partition = "warn"      # or "error"; an unmapped --partition is a hint
    unknown_qos = "warn"            # or "error"
    unknown_feature = "error"       # or "warn"; a --constraint is a hard requirement
    [slurm_names.partitions]        # --partition: pools ("site/pool"), sites, or globs
    gpu = ["isambard-ai/gh200", "nebius-london"]
    debug = { pools = ["isambard-ai/gh200"], default_time = "30:00", max_time = "1:00:00" }
    [slurm_names.accounts]          # --account: programmes; globs; first match wins
    "brics.a5k" = "research"
    "nhs-*" = "public-services"
    [slurm_names.qos]               # --qos: low, normal, high or urgent
    debug = "high"
    [slurm_names.features]          # --constraint names: GPU models ("*": any model)
    "80gb" = ["A100", "H100"]
    [slurm_names.gres_types]        # --gres=gpu:TYPE:N spellings: GPU models
    "a100_80gb" = "A100"

Every name is matched without regard to case (Slurm lower-cases accounts and QoS; sites
spell partitions and features either way), so two keys that differ only in case are an
error. Names the fleet already has need no entry: a pool's "site/pool" name, a site's
name, a pool's short name (every pool so named) and a Slurm site's real partition name
are partitions; a GPU model or vendor name ("a100", "nvidia") is a feature and a GRES
type; a programme's name is an account; low/normal/high/urgent are QoS names.

Why 24 h when nothing says otherwise: Slurm gives a job without --time its partition's
DefaultTime or else its MaxTime, and the GPU partitions of most centres cap jobs at 24 to
48 h; a script that never set --time was written for that, not for the API's old 1 h.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    field_validator,
    model_validator,
)

from arkwright.core.fleet import Pool
from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import PriorityClass
from arkwright.fleets.slurm_settings import SlurmSettings
from arkwright.timefmt import format_duration, parse_duration

Policy = Literal["warn", "error"]
ANY_MODEL = "*"
GLOB = re.compile(r"[*?\[]")
PROGRAMME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")  # as the API's TenantIn
ALL_MODELS = frozenset(GPU_CATALOGUE)


def _seconds(text: str) -> str:
    parse_duration(text)  # raises ValueError naming the value
    return text


TimeText = Annotated[StrictStr, AfterValidator(_seconds)]
Key = Annotated[StrictStr, Field(min_length=1, max_length=256)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _models(values: list[str]) -> list[str]:
    for model in values:
        if model != ANY_MODEL and model not in GPU_CATALOGUE:
            known = ", ".join(GPU_CATALOGUE)
            raise ValueError(f"unknown GPU model {model!r} (known: {known}, or '*' for any)")
    return values


Models = Annotated[
    list[StrictStr], BeforeValidator(_one_or_many), AfterValidator(_models), Field(min_length=1)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartitionFile(_Strict):
    """One --partition alias. Written as a list of targets, or as a table with limits."""

    pools: Annotated[list[Key], Field(min_length=1)]
    default_time: TimeText | None = None  # as Slurm's partition DefaultTime
    max_time: TimeText | None = None  # as its MaxTime: longer --time is refused

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str | list):
            return {"pools": _one_or_many(value)}
        return value

    @model_validator(mode="after")
    def _default_within_max(self) -> PartitionFile:
        if (
            self.default_time
            and self.max_time
            and parse_duration(self.default_time) > parse_duration(self.max_time)
        ):
            raise ValueError(
                f"default_time {self.default_time!r} is longer than max_time {self.max_time!r}"
            )
        return self


def _programme(value: str) -> str:
    if not PROGRAMME.match(value):
        raise ValueError(f"{value!r} is not a programme name (lower case: a-z 0-9 _ . -)")
    return value


def _priority(value: str) -> str:
    return PriorityClass.parse(value).name.lower()  # raises naming the value


class SlurmNamesFile(_Strict):
    default_time: TimeText = "1-00:00:00"
    max_time: TimeText = "365-00:00:00"
    unknown_partition: Policy = "warn"
    unknown_qos: Policy = "warn"
    unknown_feature: Policy = "error"
    partitions: dict[Key, PartitionFile] = {}
    accounts: dict[Key, Annotated[StrictStr, AfterValidator(_programme)]] = {}
    qos: dict[Key, Annotated[StrictStr, AfterValidator(_priority)]] = {}
    features: dict[Key, Models] = {}
    gres_types: dict[Key, Models] = {}

    @field_validator("partitions", "accounts", "qos", "features", "gres_types")
    @classmethod
    def _no_case_twins(cls, table: dict[str, Any]) -> dict[str, Any]:
        seen: dict[str, str] = {}
        for key in table:
            if key.strip() != key or not key:
                raise ValueError(f"{key!r}: a name has no surrounding spaces")
            twin = seen.setdefault(key.lower(), key)
            if twin != key:
                raise ValueError(f"{twin!r} and {key!r} differ only in case (names match in any)")
        return table

    @model_validator(mode="after")
    def _default_within_max(self) -> SlurmNamesFile:
        if parse_duration(self.default_time) > parse_duration(self.max_time):
            raise ValueError(
                f"default_time {self.default_time!r} is longer than max_time {self.max_time!r}"
            )
        return self


@dataclass(frozen=True)
class Partition:
    """A name --partition may give, with the pools it stands for."""

    name: str
    pools: frozenset[str]
    default_s: float | None = None
    max_s: float | None = None


@dataclass(frozen=True)
class SlurmNames:
    """The parsed mapping, every key lower-cased, the fleet's own names folded in (an
    entry in the file wins over a name the fleet has)."""

    partitions: dict[str, Partition]
    accounts: dict[str, str]
    account_patterns: tuple[tuple[str, str], ...]  # (lower-cased glob, programme), in order
    qos: dict[str, PriorityClass]
    features: dict[str, frozenset[str]]
    gres_types: dict[str, frozenset[str]]
    default_time_s: float
    max_time_s: float
    pool_default_s: dict[str, float] = field(default_factory=dict)  # "site/pool" -> s
    unknown_partition: Policy = "warn"
    unknown_qos: Policy = "warn"
    unknown_feature: Policy = "error"

    def account(self, name: str, programmes: frozenset[str]) -> str | None:
        """The programme an account charges: an entry, else the first glob that matches,
        else the programme of that name; None when none of them."""
        key = name.lower()
        if key in self.accounts:
            return self.accounts[key]
        for pattern, programme in self.account_patterns:
            # fnmatch compiles to a regex without nested repetition (CPython >= 3.9), so
            # a hostile name against many stars is linear, not exponential.
            if fnmatch.fnmatchcase(key, pattern):
                return programme
        return key if key in programmes else None


def _implicit_models() -> dict[str, frozenset[str]]:
    """GPU model and vendor names, lower-cased: features and GRES types every fleet has."""
    names: dict[str, set[str]] = {}
    for spec in GPU_CATALOGUE.values():
        names.setdefault(spec.model.lower(), set()).add(spec.model)
        names.setdefault(spec.vendor.lower(), set()).add(spec.model)
    return {k: frozenset(v) for k, v in names.items()}


def _expand(target: str, pools: Sequence[Pool]) -> frozenset[str]:
    """Pools a partition target names: "site/pool", a site, or a glob over either."""
    if GLOB.search(target):
        return frozenset(
            p.name
            for p in pools
            if fnmatch.fnmatchcase(p.name, target) or fnmatch.fnmatchcase(p.site.name, target)
        )
    return frozenset(p.name for p in pools if target in (p.name, p.site.name))


def _implicit_partitions(
    pools: Sequence[Pool], backend_settings: Mapping[str, object]
) -> dict[str, frozenset[str]]:
    names: dict[str, set[str]] = {}
    for pool in pools:
        short = pool.name.split("/", 1)[1]
        spellings = {pool.name, pool.site.name, short}
        slurm = backend_settings.get(pool.site.name)
        if isinstance(slurm, SlurmSettings):
            spellings.add(slurm.partition_for(short))  # the site's real partition
        for name in spellings:
            names.setdefault(name.lower(), set()).add(pool.name)
    return {k: frozenset(v) for k, v in names.items()}


def _implicit_gres(
    pools: Sequence[Pool], backend_settings: Mapping[str, object]
) -> dict[str, frozenset[str]]:
    names = {k: set(v) for k, v in _implicit_models().items()}
    for pool in pools:
        slurm = backend_settings.get(pool.site.name)
        kind = (
            slurm.gres_types.get(pool.name.split("/", 1)[1])
            if isinstance(slurm, SlurmSettings)
            else None
        )
        if kind:
            names.setdefault(kind.lower(), set()).add(pool.gpu_model)
    return {k: frozenset(v) for k, v in names.items()}


def _model_set(models: list[str]) -> frozenset[str]:
    return ALL_MODELS if ANY_MODEL in models else frozenset(models)


def build_slurm_names(
    spec: SlurmNamesFile,
    pools: Sequence[Pool],
    backend_settings: Mapping[str, object],
    pool_default_s: Mapping[str, float],
    where: str = "slurm_names",
) -> tuple[SlurmNames, list[str]]:
    """The mapping for these pools, and the problems (each naming its key) that make the
    file wrong: a partition target that names no pool, a default longer than a maximum."""
    problems: list[str] = []
    partitions = {
        name: Partition(name, members)
        for name, members in _implicit_partitions(pools, backend_settings).items()
    }
    for name, entry in spec.partitions.items():
        members: set[str] = set()
        for i, target in enumerate(entry.pools):
            found = _expand(target, pools)
            if not found:
                problems.append(
                    f"{where}.partitions.{name}.pools[{i}]: {target!r} names no pool or site"
                )
            members |= found
        partitions[name.lower()] = Partition(
            name,
            frozenset(members),
            parse_duration(entry.default_time) if entry.default_time else None,
            parse_duration(entry.max_time) if entry.max_time else None,
        )
    accounts: dict[str, str] = {}
    patterns: list[tuple[str, str]] = []
    for key, programme in spec.accounts.items():
        if GLOB.search(key):
            patterns.append((key.lower(), programme))
        else:
            accounts[key.lower()] = programme
    qos = {p.name.lower(): p for p in PriorityClass}
    qos.update({k.lower(): PriorityClass.parse(v) for k, v in spec.qos.items()})
    features = _implicit_models()
    features.update({k.lower(): _model_set(v) for k, v in spec.features.items()})
    gres = _implicit_gres(pools, backend_settings)
    gres.update({k.lower(): _model_set(v) for k, v in spec.gres_types.items()})
    names = SlurmNames(
        partitions=partitions,
        accounts=accounts,
        account_patterns=tuple(patterns),
        qos=qos,
        features=features,
        gres_types=gres,
        default_time_s=parse_duration(spec.default_time),
        max_time_s=parse_duration(spec.max_time),
        pool_default_s=dict(pool_default_s),
        unknown_partition=spec.unknown_partition,
        unknown_qos=spec.unknown_qos,
        unknown_feature=spec.unknown_feature,
    )
    for pool in pools:
        default = pool_default_s.get(pool.name)
        limit = pool.site.max_job_duration_s or names.max_time_s
        if default is not None and default > limit:
            problems.append(
                f"sites[{pool.site.name!r}].pools[{pool.name.split('/', 1)[1]!r}].default_time: "
                f"{format_duration(default)} is longer than the site's maximum "
                f"{format_duration(limit)}"
            )
    return names, problems


def default_slurm_names(
    pools: Sequence[Pool], backend_settings: Mapping[str, object]
) -> SlurmNames:
    """What a fleet built without a file (a plan, a test) gets: the fleet's own names."""
    names, _ = build_slurm_names(SlurmNamesFile(), pools, backend_settings, {})
    return names

"""Read a fleet TOML file (or a named preset) into the core's Fleet.

Every problem is reported with the file, the key path and the offending value, and
nothing is half-built: the file is validated whole before a Fleet exists.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from arkwright.core.fleet import Fleet, Pool, Site, Tenant
from arkwright.core.gpus import GPU_CATALOGUE, UnknownGpuModel, gpu_spec
from arkwright.core.policy_data import Classification
from arkwright.fleets.identity import IdentitySettings, backend_settings
from arkwright.fleets.slurm_names import SlurmNamesFile, TimeText, build_slurm_names
from arkwright.fleets.slurm_settings import SlurmSettings
from arkwright.timefmt import parse_duration

PositiveInt = Annotated[int, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class FleetFileError(ValueError):
    pass


def known_gpu_model(value: str) -> str:
    """A Pydantic validator body: the model name, or the catalogue's error for it."""
    try:
        gpu_spec(value)
    except UnknownGpuModel as exc:
        raise ValueError(str(exc)) from None
    return value


GpuModel = Annotated[str, AfterValidator(known_gpu_model)]


def known_accreditations(values: list[str]) -> list[str]:
    for value in values:
        if value.upper().replace("-", "_") in Classification.__members__:
            continue
        if value.upper() == value and value:
            continue  # certifications such as NHS-DSPT, ISO27001, CYBER-ESSENTIALS-PLUS
        raise ValueError(f"accreditation {value!r} should be an upper-case name")
    return values


Accreditations = Annotated[list[str], AfterValidator(known_accreditations)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolFile(_Strict):
    name: str = Field(min_length=1)
    gpu: GpuModel
    gpus_per_node: PositiveInt
    nodes: PositiveInt
    interconnect: str = "unspecified"
    price_gbp_per_gpu_hour: NonNegative
    watts_per_gpu: NonNegative | None = None  # defaults to the model's board power
    # A job's time limit here when it gives none, as Slurm's partition DefaultTime
    # (fleets/slurm_names.py says how it combines with the fleet's default_time).
    default_time: TimeText | None = None


class SiteFile(_Strict):
    name: str = Field(min_length=1)
    region: str
    jurisdiction: str
    operator: str
    accreditations: Accreditations = []
    carbon_g_per_kwh: NonNegative
    carbon_hourly: list[NonNegative] | None = None
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = 1.3
    backend: Literal["simulated", "local", "slurm"] = "simulated"
    slurm: SlurmSettings | None = None
    identity: IdentitySettings | None = None  # who jobs run as: fleets/identity.py
    allowed_tenants: list[str] | None = None
    max_job_hours: Annotated[float, Field(gt=0)] | None = None
    note: str = ""
    pools: list[PoolFile] = Field(min_length=1)

    @model_validator(mode="after")
    def _slurm_table_fits(self) -> SiteFile:
        if self.slurm is None:
            return self
        if self.backend != "slurm":
            raise ValueError(
                f"a [sites.slurm] table needs backend = 'slurm' (got {self.backend!r})"
            )
        pools = {p.name for p in self.pools}
        for key in ("partitions", "gres_types"):
            for pool in getattr(self.slurm, key):
                if pool not in pools:
                    raise ValueError(f"slurm.{key}: {pool!r} is not a pool of this site")
        return self

    @field_validator("carbon_hourly")
    @classmethod
    def _day_profile(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and len(values) != 24:
            raise ValueError(f"carbon_hourly needs 24 values (one per hour), got {len(values)}")
        return values


class TenantFile(_Strict):
    name: str = Field(min_length=1)
    weight: Annotated[float, Field(gt=0)] = 1.0
    description: str = ""
    gpu_hours_allocation: NonNegative | None = None
    allowed_sites: list[str] | None = None


class FleetFile(_Strict):
    name: str
    description: str = ""
    indicative: bool = False
    assumptions: list[str] = []
    sites: list[SiteFile] = Field(min_length=1)
    tenants: list[TenantFile] = []
    throughput: dict[str, dict[str, Annotated[float, Field(gt=0)]]] = {}
    # The site's Slurm-world names and default time limits: fleets/slurm_names.py.
    slurm_names: SlurmNamesFile = SlurmNamesFile()

    @field_validator("throughput")
    @classmethod
    def _known_models(cls, table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for job_type, row in table.items():
            for model in row:
                if model not in GPU_CATALOGUE:
                    raise ValueError(f"{job_type}.{model}: unknown GPU model {model!r}")
        return table


def preset_names() -> list[str]:
    folder = resources.files("arkwright.fleets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read(name_or_path: str | Path) -> tuple[str, dict]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise FleetFileError(f"{source}: cannot read ({exc.strerror})") from None
    else:
        resource = resources.files("arkwright.fleets") / f"{name_or_path}.toml"
        if not resource.is_file():
            raise FleetFileError(
                f"no fleet file or preset named {str(name_or_path)!r} "
                f"(presets: {', '.join(preset_names())})"
            )
        source, text = f"preset {name_or_path}", resource.read_text()
    try:
        return source, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(f"{source}: not valid TOML: {exc}") from None


def _key_path(loc: tuple, raw: dict) -> str:
    """Turn pydantic's location into a TOML-ish path with names: sites[isambard].pools[0]."""
    parts: list[str] = []
    node: object = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            entry = node[item] if item < len(node) else None
            label = entry.get("name") if isinstance(entry, dict) else None
            parts[-1] += f"[{label!r}]" if label else f"[{item}]"
            node = entry
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_fleet(raw: dict, source: str) -> Fleet:
    try:
        spec = FleetFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _key_path(err["loc"], raw)
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            problems.append(f"{source}: {where}: {err['msg']}{shown}")
        raise FleetFileError("\n".join(problems)) from None
    return _build(spec, source)


def build_site(
    name: str,
    region: str,
    jurisdiction: str,
    operator: str,
    accreditations: list[str],
    carbon_g_per_kwh: float,
    pue: float,
    backend: str = "simulated",
    allowed_tenants: list[str] | None = None,
    carbon_hourly: list[float] | None = None,
    max_job_hours: float | None = None,
) -> Site:
    """The core's Site from validated file fields (also used for sites a plan adds)."""
    upper = frozenset(a.upper() for a in accreditations)
    levels = [
        Classification[a.replace("-", "_")]
        for a in upper
        if a.replace("-", "_") in Classification.__members__
    ]
    return Site(
        name=name,
        region=region,
        jurisdiction=jurisdiction.upper(),
        operator=operator,
        accreditations=upper,
        max_classification=max(levels, default=Classification.OFFICIAL),
        carbon_g_per_kwh=carbon_g_per_kwh,
        pue=pue,
        backend=backend,
        allowed_tenants=frozenset(allowed_tenants) if allowed_tenants else None,
        carbon_hourly=tuple(carbon_hourly) if carbon_hourly else None,
        max_job_duration_s=max_job_hours * 3600 if max_job_hours else None,
    )


def _build(spec: FleetFile, source: str) -> Fleet:
    problems: list[str] = []
    seen_sites: set[str] = set()
    sites: list[Site] = []
    pools: list[Pool] = []
    pool_default_s: dict[str, float] = {}
    tenant_names = [t.name for t in spec.tenants]
    for dup in sorted({n for n in tenant_names if tenant_names.count(n) > 1}):
        problems.append(f"{source}: tenants: duplicate tenant {dup!r}")
    for site_spec in spec.sites:
        if site_spec.name in seen_sites:
            problems.append(f"{source}: sites: duplicate site {site_spec.name!r}")
            continue
        seen_sites.add(site_spec.name)
        site = build_site(**site_spec.model_dump(exclude={"pools", "note", "slurm", "identity"}))
        sites.append(site)
        pool_names: set[str] = set()
        for pool_spec in site_spec.pools:
            if pool_spec.name in pool_names:
                problems.append(
                    f"{source}: sites[{site.name!r}].pools: duplicate pool {pool_spec.name!r}"
                )
                continue
            pool_names.add(pool_spec.name)
            if pool_spec.default_time is not None:
                pool_default_s[f"{site.name}/{pool_spec.name}"] = parse_duration(
                    pool_spec.default_time
                )
            pools.append(
                Pool(
                    index=len(pools),
                    name=f"{site.name}/{pool_spec.name}",
                    site=site,
                    gpu_model=pool_spec.gpu,
                    gpus_per_node=pool_spec.gpus_per_node,
                    nodes=pool_spec.nodes,
                    interconnect=pool_spec.interconnect,
                    price_gbp_per_gpu_hour=pool_spec.price_gbp_per_gpu_hour,
                    watts_per_gpu=(
                        pool_spec.watts_per_gpu
                        if pool_spec.watts_per_gpu is not None
                        else GPU_CATALOGUE[pool_spec.gpu].tdp_watts
                    ),
                )
            )
    for tenant in spec.tenants:
        for site_name in tenant.allowed_sites or []:
            if site_name not in seen_sites:
                problems.append(
                    f"{source}: tenants[{tenant.name!r}].allowed_sites: unknown site {site_name!r}"
                )
    settings = backend_settings(spec.sites)
    slurm_names, naming = build_slurm_names(spec.slurm_names, pools, settings, pool_default_s)
    problems += [f"{source}: {problem}" for problem in naming]
    if problems:
        raise FleetFileError("\n".join(problems))
    tenants = tuple(
        Tenant(
            name=t.name,
            weight=t.weight,
            description=t.description,
            gpu_hours_allocation=t.gpu_hours_allocation,
            allowed_sites=frozenset(t.allowed_sites) if t.allowed_sites else None,
        )
        for t in spec.tenants
    )
    assumptions = tuple(spec.assumptions)
    if spec.indicative:
        assumptions = (
            "Indicative: figures beyond public announcements are assumptions.",
            *assumptions,
        )
    return Fleet(
        spec.name,
        spec.description,
        tuple(sites),
        tuple(pools),
        tenants,
        assumptions,
        throughput={jt: dict(row) for jt, row in spec.throughput.items()},
        backend_settings=settings,
        slurm_names=slurm_names,
    )


def load_fleet(name_or_path: str | Path) -> Fleet:
    source, raw = _read(name_or_path)
    return parse_fleet(raw, source)

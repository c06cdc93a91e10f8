"""The menu of additions a plan may buy: GPU model × site (or a new site) × nodes.

A TOML file of `[[options]]`, each a unit that can be bought up to `max_units` times:

    [[options]]
    name = "scotland-gb300"
    site = "coreweave-scotland"        # an existing site; or a new one: [options.new_site]
    gpu = "GB300"
    gpus_per_node = 4
    nodes_per_unit = 250               # one unit = 1,000 GPUs
    max_units = 8
    capex_gbp_per_gpu = 45000          # bought once
    opex_gbp_per_gpu_year = 6000       # staff, maintenance, network (power is counted apart)
    price_gbp_per_gpu_hour = 3.4       # what users are charged (the simulator's cost)
    lead_time_months = 12
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from arkwright.core.fleet import Fleet, Pool, Site
from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.fleets.loader import Accreditations, GpuModel, _key_path, build_site

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
CAPEX_LIFE_YEARS = 5.0  # straight-line: GPUs are written off over five years


class OptionsError(ValueError):
    pass


class NewSite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    region: str
    jurisdiction: str = "UK"
    operator: str = "new"
    accreditations: Accreditations = ["OFFICIAL"]
    carbon_g_per_kwh: NonNegative
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = 1.2


class OptionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    site: str | None = None
    new_site: NewSite | None = None
    gpu: GpuModel
    gpus_per_node: Annotated[int, Field(gt=0)]
    nodes_per_unit: Annotated[int, Field(gt=0)]
    max_units: Annotated[int, Field(gt=0, le=1000)] = 10
    capex_gbp_per_gpu: NonNegative
    opex_gbp_per_gpu_year: NonNegative = 0.0
    price_gbp_per_gpu_hour: NonNegative
    watts_per_gpu: Positive | None = None
    lead_time_months: NonNegative = 0.0


class OptionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    options: list[OptionFile] = Field(min_length=1)


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    site: str
    new_site: Site | None
    gpu: str
    gpus_per_node: int
    nodes_per_unit: int
    max_units: int
    capex_gbp_per_gpu: float
    opex_gbp_per_gpu_year: float
    price_gbp_per_gpu_hour: float
    watts_per_gpu: float
    lead_time_months: float

    @property
    def gpus_per_unit(self) -> int:
        return self.gpus_per_node * self.nodes_per_unit

    @property
    def annual_cost_per_unit(self) -> float:
        """Capex written off over its life, plus opex (power is costed separately)."""
        per_gpu = self.capex_gbp_per_gpu / CAPEX_LIFE_YEARS + self.opex_gbp_per_gpu_year
        return per_gpu * self.gpus_per_unit

    @property
    def capex_per_unit(self) -> float:
        return self.capex_gbp_per_gpu * self.gpus_per_unit


def load_options(path: str | Path, fleet: Fleet) -> list[Option]:
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise OptionsError(f"{source}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionsError(f"{source}: not valid TOML: {exc}") from None
    return parse_options(raw, source, fleet)


def parse_options(raw: dict, source: str, fleet: Fleet) -> list[Option]:
    try:
        spec = OptionsFile.model_validate(raw)
    except ValidationError as exc:
        raise OptionsError(
            "\n".join(f"{source}: {_key_path(e['loc'], raw)}: {e['msg']}" for e in exc.errors())
        ) from None
    problems, options, names = [], [], set()
    for _n, item in enumerate(spec.options):
        where = f"{source}: options[{item.name!r}]"
        if item.name in names:
            problems.append(f"{where}: duplicate option name")
        names.add(item.name)
        if (item.site is None) == (item.new_site is None):
            problems.append(f"{where}: give exactly one of site (existing) or new_site")
            continue
        if item.site is not None and item.site not in fleet.site_by_name:
            problems.append(
                f"{where}.site: unknown site {item.site!r} (sites: {', '.join(fleet.site_by_name)})"
            )
            continue
        new_site = None
        if item.new_site is not None:
            if item.new_site.name in fleet.site_by_name:
                problems.append(f"{where}.new_site.name: {item.new_site.name!r} already exists")
                continue
            new_site = build_site(**item.new_site.model_dump())
        options.append(
            Option(
                name=item.name,
                site=item.site or item.new_site.name,
                new_site=new_site,
                gpu=item.gpu,
                gpus_per_node=item.gpus_per_node,
                nodes_per_unit=item.nodes_per_unit,
                max_units=item.max_units,
                capex_gbp_per_gpu=item.capex_gbp_per_gpu,
                opex_gbp_per_gpu_year=item.opex_gbp_per_gpu_year,
                price_gbp_per_gpu_hour=item.price_gbp_per_gpu_hour,
                watts_per_gpu=item.watts_per_gpu or GPU_CATALOGUE[item.gpu].tdp_watts,
                lead_time_months=item.lead_time_months,
            )
        )
    if problems:
        raise OptionsError("\n".join(problems))
    return options


def with_additions(fleet: Fleet, options: list[Option], units: tuple[int, ...]) -> Fleet:
    """The fleet plus `units[i]` units of option i, each option a pool of its own."""
    sites = list(fleet.sites)
    site_by_name = dict(fleet.site_by_name)
    pools = list(fleet.pools)
    for option, count in zip(options, units, strict=True):
        if not count:
            continue
        site = site_by_name.get(option.site)
        if site is None:
            site = option.new_site
            sites.append(site)
            site_by_name[site.name] = site
        pools.append(
            Pool(
                index=len(pools),
                name=f"{site.name}/plan-{option.name}",
                site=site,
                gpu_model=option.gpu,
                gpus_per_node=option.gpus_per_node,
                nodes=option.nodes_per_unit * count,
                interconnect="planned",
                price_gbp_per_gpu_hour=option.price_gbp_per_gpu_hour,
                watts_per_gpu=option.watts_per_gpu,
            )
        )
    return dataclasses.replace(fleet, sites=tuple(sites), pools=tuple(pools))

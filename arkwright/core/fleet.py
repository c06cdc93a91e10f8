"""The fleet as the core sees it: sites, their pools, and the programmes they serve."""

from __future__ import annotations

from dataclasses import dataclass, field

from arkwright.core.gpus import GpuSpec, gpu_spec
from arkwright.core.pickling import by_constructor
from arkwright.core.policy_data import Classification


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    region: str
    jurisdiction: str
    operator: str
    accreditations: frozenset[str]
    max_classification: Classification
    carbon_g_per_kwh: float
    pue: float
    backend: str = "simulated"
    allowed_tenants: frozenset[str] | None = None  # None: open to every programme
    # Optional hourly grid intensity (gCO2/kWh, UTC) from the start of the clock, repeated
    # when the clock runs past its end: 24 values make a daily profile.
    carbon_hourly: tuple[float, ...] | None = None
    max_job_duration_s: float | None = None

    def carbon_at(self, t_seconds: float) -> float:
        if self.carbon_hourly is None:
            return self.carbon_g_per_kwh
        return self.carbon_hourly[int(t_seconds // 3600) % len(self.carbon_hourly)]

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


@dataclass(frozen=True, slots=True)
class Pool:
    """A homogeneous set of nodes within a site. `index` is its position in the fleet."""

    index: int
    name: str  # unique in the fleet: "site/pool"
    site: Site
    gpu_model: str
    gpus_per_node: int
    nodes: int
    interconnect: str
    price_gbp_per_gpu_hour: float
    watts_per_gpu: float

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def spec(self) -> GpuSpec:
        return gpu_spec(self.gpu_model)

    # The core itself asks `gang.shape_on` / `held_gpus` (which know node shapes); these
    # two stay for the frozen reference core (tests/core/legacy), which must not change.
    def nodes_for(self, gpus: int) -> int:
        """Whole nodes a gang of `gpus` needs here; a job within one node takes part of one."""
        return -(-gpus // self.gpus_per_node)

    def allocated_gpus(self, gpus: int) -> int:
        """GPUs a job holds here: multi-node gangs hold their nodes exclusively."""
        if gpus <= self.gpus_per_node:
            return gpus
        return self.nodes_for(gpus) * self.gpus_per_node

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


@dataclass(frozen=True, slots=True)
class Tenant:
    """A programme the compute is for, with its share weight and optional allocation."""

    name: str
    weight: float = 1.0
    description: str = ""
    gpu_hours_allocation: float | None = None
    allowed_sites: frozenset[str] | None = None

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


@dataclass(frozen=True)
class Fleet:
    name: str
    description: str
    sites: tuple[Site, ...]
    pools: tuple[Pool, ...]
    tenants: tuple[Tenant, ...]
    assumptions: tuple[str, ...] = ()
    # Throughput cells this fleet's operators measured: job type -> GPU model -> speed.
    throughput: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per-site settings for the backend that runs it (e.g. how to reach a Slurm controller);
    # the core never reads them.
    backend_settings: dict[str, object] = field(default_factory=dict)
    # How a site's Slurm-world names (partitions, accounts, QoS, features, GRES types)
    # and default time limits map onto this fleet (`arkwright.fleets.slurm_names`); read
    # at the service's boundary, never by the core.
    slurm_names: object | None = None
    tenant_by_name: dict[str, Tenant] = field(init=False, repr=False)
    site_by_name: dict[str, Site] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenant_by_name", {t.name: t for t in self.tenants})
        object.__setattr__(self, "site_by_name", {s.name: s for s in self.sites})

    @property
    def total_gpus(self) -> int:
        return sum(p.gpus for p in self.pools)

    def pools_at(self, site_name: str) -> list[Pool]:
        return [p for p in self.pools if p.site.name == site_name]

    def tenant(self, name: str) -> Tenant:
        # Work for a programme the fleet file doesn't name still runs, at weight 1.
        return self.tenant_by_name.get(name) or Tenant(name=name)

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)

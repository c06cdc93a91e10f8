"""Eligibility: the set of pools a job may ever run on. A hard rule, never a preference.

Jobs fall into few distinct classes (tenant, data policy, acceptable GPU models), so the
pool set is computed once per class and jobs carry the class number.
"""

from __future__ import annotations

from dataclasses import dataclass

from arkwright.core.fleet import Fleet, Pool, Tenant
from arkwright.core.pickling import by_constructor
from arkwright.core.policy_data import (
    HEALTH_DATA_ACCREDITATION,
    PERSONAL_DATA_JURISDICTIONS,
    DataPolicy,
    PersonalData,
)


def ineligibility_reason(
    pool: Pool,
    tenant: Tenant,
    policy: DataPolicy,
    gpu_types: frozenset[str] | None,
    sites: frozenset[str] | None = None,
    pools: frozenset[str] | None = None,
) -> str | None:
    """Why `pool` may not hold this work, or None when it may."""
    site = pool.site
    if gpu_types is not None and pool.gpu_model not in gpu_types:
        return f"GPU model {pool.gpu_model} not in {sorted(gpu_types)}"
    if pools is not None and pool.name not in pools:
        return f"pool {pool.name} not in the job's pools {sorted(pools)}"
    if sites is not None and site.name not in sites:
        return f"site {site.name} not in the job's sites {sorted(sites)}"
    if policy.residency is not None and site.jurisdiction not in policy.residency:
        return f"site {site.name} is in {site.jurisdiction}, residency {sorted(policy.residency)}"
    if site.max_classification < policy.classification:
        return (
            f"site {site.name} is accredited to {site.max_classification.label}, "
            f"job is {policy.classification.label}"
        )
    if (
        policy.personal_data is not PersonalData.NONE
        and site.jurisdiction not in PERSONAL_DATA_JURISDICTIONS
    ):
        return f"personal data may not go to {site.jurisdiction} (site {site.name})"
    if policy.personal_data is PersonalData.HEALTH and (
        HEALTH_DATA_ACCREDITATION not in site.accreditations or site.jurisdiction != "UK"
    ):
        return f"health data needs a UK {HEALTH_DATA_ACCREDITATION} site; {site.name} is not"
    if site.allowed_tenants is not None and tenant.name not in site.allowed_tenants:
        return f"site {site.name} does not serve programme {tenant.name}"
    if tenant.allowed_sites is not None and site.name not in tenant.allowed_sites:
        return f"programme {tenant.name} may not use site {site.name}"
    return None


def is_eligible(
    pool: Pool,
    tenant: Tenant,
    policy: DataPolicy,
    gpu_types: frozenset[str] | None,
    sites: frozenset[str] | None = None,
    pools: frozenset[str] | None = None,
) -> bool:
    return ineligibility_reason(pool, tenant, policy, gpu_types, sites, pools) is None


ClassKey = tuple[
    str, DataPolicy, frozenset[str] | None, frozenset[str] | None, frozenset[str] | None
]


@dataclass(frozen=True, slots=True)
class EligibilityClass:
    index: int
    key: ClassKey
    pools: tuple[int, ...]  # pool indices, fleet order
    pool_mask: int  # bit i set when pool i is eligible
    max_gang_gpus: int  # the largest gang any eligible pool could ever hold

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)


class EligibilityIndex:
    """Interns job classes and remembers each one's eligible pools."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._by_key: dict[ClassKey, EligibilityClass] = {}
        self.classes: list[EligibilityClass] = []

    def classify(
        self,
        tenant: str,
        policy: DataPolicy,
        gpu_types: frozenset[str] | None,
        sites: frozenset[str] | None = None,
        pools: frozenset[str] | None = None,
    ) -> EligibilityClass:
        key = (tenant, policy, gpu_types, sites, pools)
        found = self._by_key.get(key)
        if found is not None:
            return found
        tenant_spec = self._fleet.tenant(tenant)
        eligible = tuple(
            p.index
            for p in self._fleet.pools
            if is_eligible(p, tenant_spec, policy, gpu_types, sites, pools)
        )
        mask = 0
        for i in eligible:
            mask |= 1 << i
        largest = max((self._fleet.pools[i].gpus for i in eligible), default=0)
        cls = EligibilityClass(len(self.classes), key, eligible, mask, largest)
        self._by_key[key] = cls
        self.classes.append(cls)
        return cls

    def explain_none(
        self,
        tenant: str,
        policy: DataPolicy,
        gpu_types: frozenset[str] | None,
        sites: frozenset[str] | None = None,
        pools: frozenset[str] | None = None,
    ) -> str:
        """A rejection reason listing why each pool was ruled out (first few)."""
        tenant_spec = self._fleet.tenant(tenant)
        reasons = sorted(
            {
                r
                for p in self._fleet.pools
                if (r := ineligibility_reason(p, tenant_spec, policy, gpu_types, sites, pools))
                is not None
            }
        )
        shown = "; ".join(reasons[:4]) + (" …" if len(reasons) > 4 else "")
        return f"no eligible pool: {shown}"

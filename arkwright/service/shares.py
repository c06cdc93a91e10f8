"""Entitled share: one definition that the scheduler and the dashboard both use.

A programme is entitled to the fleet in proportion to its weight among every programme
the scheduler knows (Kueue's nominal quota within a cohort; Slurm's normalised shares).
The scheduler's nominal GPUs are this share times the fleet's GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping

from arkwright.core.shares import entitled_share as entitled_share_of_each

# The core owns the definition; the service re-exports it under its plural name.
entitled_shares = entitled_share_of_each


def entitled_share(weights: Mapping[str, float], tenant: str) -> float:
    """One programme's fraction; 0 for a programme without a weight."""
    return entitled_shares(weights).get(tenant, 0.0)

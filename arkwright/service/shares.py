"""Entitled share: one definition that the scheduler and the dashboard both use.

A programme is entitled to the fleet in proportion to its weight among every programme
the scheduler knows (Kueue's nominal quota within a cohort; Slurm's normalised shares).
The scheduler's nominal GPUs are this share times the fleet's GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping


def entitled_shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Each programme's fraction of the fleet (the fractions sum to 1; empty: {})."""
    total = sum(weights.values()) or 1.0
    return {name: weight / total for name, weight in weights.items()}


def entitled_share(weights: Mapping[str, float], tenant: str) -> float:
    """One programme's fraction; 0 for a programme without a weight."""
    return entitled_shares(weights).get(tenant, 0.0)

"""Entitlements: one definition of a programme's share, for the core and the service.

A programme's entitled share of the fleet is its weight over the sum of the weights of
the programmes the scheduler knows; its entitled GPUs are that share of the fleet's GPUs.
The dashboard and API import these rather than computing their own.
"""

from __future__ import annotations

import math

from arkwright.core.fleet import Pool
from arkwright.core.throughput import ThroughputTable


def entitled_share(weights: dict[str, float]) -> dict[str, float]:
    """Each programme's entitled fraction of the fleet: its weight over all weights."""
    total = sum(weights.values()) or 1.0
    return {name: weight / total for name, weight in weights.items()}


def entitled_gpus(weights: dict[str, float], total_gpus: int) -> dict[str, float]:
    total_weight = sum(weights.values()) or 1.0
    return {name: total_gpus * weight / total_weight for name, weight in weights.items()}


def typical_speeds(throughput: ThroughputTable, pools: tuple[Pool, ...]) -> list[float]:
    """Each pool's geometric-mean speed across the table's job types (1.0 if flat)."""
    job_types = list(throughput.speeds) or ["default"]
    typical = []
    for pool in pools:
        logs = [math.log(throughput.speed(jt, pool.gpu_model)) for jt in job_types]
        typical.append(math.exp(sum(logs) / len(logs)))
    return typical

"""Synthetic national demand: heavy-tailed gangs and run times, diurnal and weekly arrivals,
several programmes with their own work and data-policy mix, at a chosen offered load.

The shapes follow what public cluster traces show (Philly, Helios, Alibaba PAI): most
jobs are small and short, most GPU-hours go to a few large, long jobs; arrivals peak in
working hours and dip at weekends. Offered load is the GPU-seconds asked for (on the
reference GPU) divided by the fleet's GPU-seconds over the trace's span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arkwright.core.eligibility import EligibilityIndex
from arkwright.core.fleet import Fleet
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import Classification, DataPolicy, PersonalData
from arkwright.core.throughput import ThroughputTable
from arkwright.sim.trace_build import build_jobs

DAY = 86_400.0
GANG_SIZES = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048])
GANG_WEIGHTS = np.array([30, 10, 14, 20, 8, 6, 4, 3, 2.2, 1.5, 0.8, 0.5])
JOB_TYPES = ("llm-pretrain", "llm-finetune", "inference", "vision", "science-sim")


@dataclass(frozen=True)
class ProgrammeMix:
    """How one programme's work looks: its job types and data policies."""

    job_types: tuple[float, ...]  # weights over JOB_TYPES
    sensitive: float  # share OFFICIAL-SENSITIVE
    personal: float  # share with personal data
    health: float  # share with health data (a subset needing DSPT sites)
    secret: float = 0.0


DEFAULT_MIX = ProgrammeMix((0.2, 0.3, 0.2, 0.15, 0.15), 0.1, 0.05, 0.0)
MIXES: dict[str, ProgrammeMix] = {
    "research": ProgrammeMix((0.25, 0.2, 0.05, 0.15, 0.35), 0.05, 0.03, 0.04),
    "public-services": ProgrammeMix((0.05, 0.3, 0.45, 0.15, 0.05), 0.5, 0.3, 0.3, 0.002),
    "startups": ProgrammeMix((0.3, 0.4, 0.2, 0.1, 0.0), 0.05, 0.05, 0.0),
    "finance-sandbox": ProgrammeMix((0.0, 0.5, 0.4, 0.0, 0.1), 0.8, 0.7, 0.0),
    "industry": ProgrammeMix((0.2, 0.35, 0.3, 0.1, 0.05), 0.3, 0.2, 0.0),
}
# Median run time (reference GPU, seconds) by job type; log-normal spread around it.
MEDIAN_S = {
    "llm-pretrain": 8 * 3600,
    "llm-finetune": 2 * 3600,
    "inference": 1200,
    "vision": 3 * 3600,
    "science-sim": 4 * 3600,
}
SIGMA = 1.3
MIN_S, MAX_S = 60.0, 14 * DAY


def arrival_weights(hours: int) -> np.ndarray:
    """Relative arrival rate for each hour: a working-day peak and quieter weekends."""
    hour_of_day = np.arange(hours) % 24
    day_of_week = (np.arange(hours) // 24) % 7
    diurnal = 1.0 + 0.6 * np.cos(2 * np.pi * (hour_of_day - 14) / 24)
    weekly = np.where(day_of_week >= 5, 0.55, 1.0)
    return diurnal * weekly


def effective_capacity(
    fleet: Fleet, throughput: ThroughputTable | None, demand_by_type: dict[str, float]
) -> float:
    """Reference-GPU-seconds the fleet delivers per second for this job-type mix."""
    if throughput is None:
        return float(fleet.total_gpus)
    total = sum(demand_by_type.values()) or 1.0
    return sum(
        pool.gpus
        * sum(d / total * throughput.speed(jt, pool.gpu_model) for jt, d in demand_by_type.items())
        for pool in fleet.pools
    )


def synthesize(
    fleet: Fleet,
    jobs: int,
    load: float,
    seed: int,
    throughput: ThroughputTable | None = None,
    span_days: float | None = None,
) -> list[Job]:
    """`jobs` jobs whose demand is `load` times the fleet's capacity over the span.

    With a throughput table, capacity is what the fleet's GPUs deliver for this mix of
    job types (in reference-GPU seconds); without one, every GPU counts as a reference GPU.
    With `span_days`, run times are stretched so the jobs fill that span at that load
    (planning a year with fewer, longer jobs).
    """
    if jobs <= 0:
        raise ValueError(f"jobs must be positive, got {jobs}")
    if not 0 < load <= 5:
        raise ValueError(f"load must be in (0, 5], got {load}")
    rng = np.random.default_rng(seed)
    tenants = list(fleet.tenants) or []
    names = [t.name for t in tenants] or ["default"]
    weights = np.array([t.weight for t in tenants] or [1.0])
    tenant_idx = rng.choice(len(names), size=jobs, p=weights / weights.sum())

    gang = rng.choice(GANG_SIZES, size=jobs, p=GANG_WEIGHTS / GANG_WEIGHTS.sum())
    type_idx = np.empty(jobs, dtype=np.int64)
    for t, name in enumerate(names):
        mask = tenant_idx == t
        mix = MIXES.get(name, DEFAULT_MIX)
        p = np.array(mix.job_types)
        type_idx[mask] = rng.choice(len(JOB_TYPES), size=int(mask.sum()), p=p / p.sum())
    # Big gangs are training; inference is small.
    type_idx[gang >= 256] = 0
    type_idx[(gang > 8) & (type_idx == 2)] = 1
    medians = np.array([MEDIAN_S[JOB_TYPES[i]] for i in range(len(JOB_TYPES))])[type_idx]
    size_factor = 1.0 + np.log2(gang) / 6.0
    duration = np.clip(
        medians * size_factor * rng.lognormal(0.0, SIGMA, size=jobs), MIN_S, MAX_S
    ).round()

    u = rng.random((jobs, 5))
    priority = np.full(jobs, int(PriorityClass.NORMAL))
    priority[u[:, 0] < 0.25] = int(PriorityClass.LOW)
    priority[u[:, 0] > 0.95] = int(PriorityClass.HIGH)
    priority[u[:, 0] > 0.99] = int(PriorityClass.URGENT)
    flexible = (priority <= int(PriorityClass.NORMAL)) & (u[:, 1] < 0.2)
    overestimate = 1.2 + 1.8 * u[:, 2]
    time_limit = np.minimum(np.ceil(duration * overestimate / 900) * 900, MAX_S * 1.5)

    policy_draws = rng.random((jobs, 3))
    policy_code, policies = _data_policies(names, tenant_idx, policy_draws)
    gpus = _fit_gangs(fleet, names, tenant_idx, gang, policy_code, policies)

    # Summed per type in job order (bincount adds in order), as a loop over jobs would.
    demand = np.bincount(type_idx, weights=gpus * duration, minlength=len(JOB_TYPES))
    first_seen = sorted(set(type_idx.tolist()), key=lambda t: int(np.argmax(type_idx == t)))
    demand_by_type = {JOB_TYPES[t]: float(demand[t]) for t in first_seen}
    total_gpu_s = sum(demand_by_type.values())
    capacity = effective_capacity(fleet, throughput, demand_by_type)
    span = total_gpu_s / (load * max(capacity, 1e-9))
    if span_days is not None:
        # A fixed span at the same load: stretch every run (coarser jobs, same demand shape).
        stretch = span_days * DAY / span
        duration = (duration * stretch).round()
        time_limit = np.ceil(time_limit * stretch / 900) * 900
        span = span_days * DAY
    hours = max(int(np.ceil(span / 3600)), 1)
    per_hour = rng.multinomial(jobs, arrival_weights(hours) / arrival_weights(hours).sum())
    submit = np.repeat(np.arange(hours) * 3600.0, per_hour) + rng.random(jobs) * 3600.0
    submit = np.sort(np.minimum(submit, span)).round(1)

    width = len(str(jobs))
    prio = np.array(list(PriorityClass), dtype=object)[priority]
    deadline = np.where(flexible, submit + duration * (2 + 3 * u[:, 3]) + DAY, np.nan)
    checkpoint = (duration > 4 * 3600) & (u[:, 4] < 0.7)
    return build_jobs(
        {
            "job_id": [f"j{i:0{width}d}" for i in range(jobs)],
            "tenant": np.array(names, dtype=object)[tenant_idx].tolist(),
            "gpus": gpus.tolist(),
            "duration_s": duration.tolist(),
            "submit_time": submit.tolist(),
            "time_limit_s": time_limit.tolist(),
            "data_policy": _objects(policies)[policy_code].tolist(),
            "job_type": np.array(JOB_TYPES, dtype=object)[type_idx].tolist(),
            "priority": prio.tolist(),
            "preemptible": ((priority <= int(PriorityClass.NORMAL)) & (u[:, 4] < 0.8)).tolist(),
            "checkpoint_interval_s": _or_none(np.full(jobs, 1800.0), checkpoint),
            "deadline": _or_none(deadline, flexible),
            "flexible": flexible.tolist(),
        },
        jobs,
    )


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: never unpack a frozenset
        out[i] = value
    return out


def _or_none(values: np.ndarray, present: np.ndarray) -> list:
    out = values.astype(object)
    out[~present] = None
    return out.tolist()


def _data_policies(
    names: list[str], tenant_idx: np.ndarray, draws: np.ndarray
) -> tuple[np.ndarray, list[DataPolicy]]:
    """Each job's data policy as a code into a short list (few distinct policies)."""
    mixes = [MIXES.get(name, DEFAULT_MIX) for name in names]
    health = np.array([m.health for m in mixes])[tenant_idx]
    personal_to = np.array([m.health + m.personal for m in mixes])[tenant_idx]
    secret = np.array([m.secret for m in mixes])[tenant_idx]
    sensitive_to = np.array([m.secret + m.sensitive for m in mixes])[tenant_idx]
    personal = np.where(draws[:, 0] < health, 2, np.where(draws[:, 0] < personal_to, 1, 0))
    level = np.where(
        draws[:, 1] < secret,
        int(Classification.SECRET),
        np.where(
            (draws[:, 1] < sensitive_to) | (personal == 2),
            int(Classification.OFFICIAL_SENSITIVE),
            int(Classification.OFFICIAL),
        ),
    )
    uk_only = (level > 0) | (personal > 0) | (draws[:, 2] < 0.5)
    kinds = (PersonalData.NONE, PersonalData.PERSONAL, PersonalData.HEALTH)
    policies = [
        DataPolicy(frozenset({"UK"}) if uk else None, Classification(lv), kinds[pd])
        for uk in (False, True)
        for lv in range(3)
        for pd in range(3)
    ]
    return (uk_only * 9 + level * 3 + personal), policies


def _fit_gangs(
    fleet: Fleet,
    names: list[str],
    tenant_idx: np.ndarray,
    gang: np.ndarray,
    policy_code: np.ndarray,
    policies: list[DataPolicy],
) -> np.ndarray:
    """People do not ask for more than the largest pool their work may use."""
    index = EligibilityIndex(fleet)
    largest = np.zeros((len(names), len(policies)), dtype=np.int64)
    for t, name in enumerate(names):
        for p, policy in enumerate(policies):
            largest[t, p] = index.classify(name, policy, None).max_gang_gpus or 0
    cap = largest[tenant_idx, policy_code]
    fitted = (2 ** np.floor(np.log2(np.maximum(cap, 1)))).astype(np.int64)
    return np.where((cap > 0) & (gang > cap), fitted, gang)

"""Find the cheapest additions that meet every target, by repeated simulation.

Greedy on value for money, then pruned: from the current fleet, try one more unit of each
option (in parallel, one simulation per process), take the unit that closes the most of the
remaining shortfall per pound a year, and repeat until every target is met; then try
removing each unit bought, so nothing unneeded is kept. Every simulation is cached (on
disk when a cache file is given), and every step is recorded to explain the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from arkwright.core.fleet import Fleet
from arkwright.core.job import Job
from arkwright.core.policy import PolicySpec
from arkwright.core.throughput import ThroughputTable
from arkwright.plan.options import Option, with_additions
from arkwright.plan.targets import Target
from arkwright.sim.simulator import Simulator

KEEP = (
    "jobs_submitted",
    "jobs_completed",
    "jobs_rejected",
    "jobs_unfinished",
    "gpu_utilization",
    "mean_wait_s",
    "p50_wait_s",
    "p95_wait_s",
    "p99_wait_s",
    "mean_jct_s",
    "p95_jct_s",
    "p99_jct_s",
    "mean_slowdown",
    "energy_mwh",
    "carbon_tco2e",
    "cost_gbp",
    "offered_window_s",
    "makespan_s",
    "by_tenant",
    "by_pool",
    "by_site",
    "eligibility_violations",
)

Units = tuple[int, ...]


def grow(jobs: list[Job], growth: float, seed: int = 0) -> list[Job]:
    """Demand scaled by `growth` over the same span: each job appears floor(growth) times,
    plus once more with probability frac(growth), copies a few minutes apart."""
    if growth <= 0:
        raise ValueError(f"growth must be positive, got {growth}")
    rng = random.Random(seed)
    whole, frac = int(growth), growth - int(growth)
    out: list[Job] = []
    for job in jobs:
        copies = whole + (1 if rng.random() < frac else 0)
        for n in range(copies):
            copy = job.spec_copy()
            if n:
                copy.job_id = f"{job.job_id}+{n}"
                copy.submit_time = job.submit_time + rng.uniform(0, 600)
            out.append(copy)
    out.sort(key=lambda j: j.submit_time)
    return out


@dataclass
class PlanInputs:
    fleet: Fleet
    options: list[Option]
    jobs: list[Job]
    policy: str
    throughput: ThroughputTable
    tick_s: float = 300.0


_WORKER: PlanInputs | None = None


def _init_worker(inputs: PlanInputs) -> None:
    global _WORKER
    _WORKER = inputs


def simulate_units(units: Units, inputs: PlanInputs | None = None) -> dict:
    inputs = inputs or _WORKER
    fleet = with_additions(inputs.fleet, inputs.options, units)
    simulator = Simulator(
        fleet, PolicySpec.parse(inputs.policy), inputs.throughput, tick_s=inputs.tick_s
    )
    summary = simulator.run([j.spec_copy() for j in inputs.jobs]).summary
    return {k: summary[k] for k in KEEP}


@dataclass
class Step:
    kind: str  # "start", "add", "remove", "stop"
    units: Units
    note: str
    annual_cost_gbp: float
    shortfall: float
    values: dict[str, float]
    tried: list[dict] = field(default_factory=list)


@dataclass
class PlanResult:
    units: Units
    feasible: bool
    reason: str
    steps: list[Step]
    summary: dict
    baseline: dict
    evaluations: int
    cache_hits: int
    evaluated: list[tuple[Units, float, float]]  # (units, annual cost, shortfall)


class Planner:
    def __init__(
        self,
        inputs: PlanInputs,
        targets: list[Target],
        workers: int | None = None,
        cache_path: Path | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if not targets:
            raise ValueError("give at least one target")
        self.inputs = inputs
        self.targets = targets
        self.workers = workers or os.cpu_count() or 1
        self.cache_path = cache_path
        self.progress = progress or (lambda _message: None)
        self.cache: dict[Units, dict] = {}
        self.evaluations = 0
        self.cache_hits = 0
        self._key = self._inputs_key()
        self._load_cache()

    # ------------------------------------------------------------------ caching

    def _inputs_key(self) -> str:
        digest = hashlib.sha256()
        inputs = self.inputs
        digest.update(
            repr(
                (
                    inputs.fleet.name,
                    [(p.name, p.gpus) for p in inputs.fleet.pools],
                    inputs.policy,
                    inputs.tick_s,
                    inputs.options,
                    sorted(inputs.throughput.speeds.items()),
                )
            ).encode()
        )
        for job in inputs.jobs:
            digest.update(
                f"{job.job_id},{job.submit_time},{job.gpus},{job.duration_s},"
                f"{job.tenant},{job.job_type}".encode()
            )
        return digest.hexdigest()

    def _load_cache(self) -> None:
        if not self.cache_path or not self.cache_path.exists():
            return
        try:
            saved = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return
        if saved.get("key") == self._key:
            self.cache = {tuple(json.loads(k)): v for k, v in saved["results"].items()}

    def _save_cache(self) -> None:
        if not self.cache_path:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".partial")
        tmp.write_text(
            json.dumps(
                {
                    "key": self._key,
                    "results": {json.dumps(list(k)): v for k, v in self.cache.items()},
                }
            )
        )
        tmp.replace(self.cache_path)

    # --------------------------------------------------------------- evaluation

    def evaluate(self, candidates: list[Units]) -> list[dict]:
        todo = [u for u in dict.fromkeys(candidates) if u not in self.cache]
        self.cache_hits += len(candidates) - len(todo)
        if todo:
            self.evaluations += len(todo)
            if self.workers > 1 and len(todo) > 1:
                with ProcessPoolExecutor(
                    min(self.workers, len(todo)), initializer=_init_worker, initargs=(self.inputs,)
                ) as pool:
                    results = list(pool.map(simulate_units, todo))
            else:
                results = [simulate_units(u, self.inputs) for u in todo]
            self.cache.update(zip(todo, results, strict=True))
            self._save_cache()
        return [self.cache[u] for u in candidates]

    def shortfall(self, summary: dict) -> float:
        return sum(t.shortfall(summary) for t in self.targets)

    def all_met(self, summary: dict) -> bool:
        return all(t.met(summary) for t in self.targets)

    def annual_cost(self, units: Units) -> float:
        return sum(
            o.annual_cost_per_unit * n for o, n in zip(self.inputs.options, units, strict=True)
        )

    def values(self, summary: dict) -> dict[str, float]:
        return {t.text: t.value(summary) for t in self.targets}

    # ------------------------------------------------------------------- search

    def run(self, max_steps: int = 200) -> PlanResult:
        options = self.inputs.options
        current: Units = tuple(0 for _ in options)
        [summary] = self.evaluate([current])
        baseline = summary
        evaluated = [(current, 0.0, self.shortfall(summary))]
        steps = [
            Step(
                "start",
                current,
                "the fleet as it is",
                0.0,
                self.shortfall(summary),
                self.values(summary),
            )
        ]
        self.progress(f"baseline: {self._describe(summary)}")
        stalls = 0
        while not self.all_met(summary):
            if len(steps) > max_steps:
                return self._result(
                    current,
                    False,
                    f"stopped after {max_steps} steps",
                    steps,
                    summary,
                    baseline,
                    evaluated,
                )
            candidates = []
            for i, option in enumerate(options):
                if current[i] < option.max_units:
                    candidates.append((*current[:i], current[i] + 1, *current[i + 1 :]))
            if not candidates:
                return self._result(
                    current,
                    False,
                    self._why_not(summary, "every option is at its maximum"),
                    steps,
                    summary,
                    baseline,
                    evaluated,
                )
            results = self.evaluate(candidates)
            before = self.shortfall(summary)
            tried = []
            best: tuple[float, float, Units, dict] | None = None
            for units, result in zip(candidates, results, strict=True):
                after = self.shortfall(result)
                cost = self.annual_cost(units) - self.annual_cost(current)
                gain = (before - after) / max(cost, 1.0)
                evaluated.append((units, self.annual_cost(units), after))
                tried.append(
                    {
                        "option": options[self._changed(current, units)].name,
                        "shortfall": after,
                        "gain_per_gbp": gain,
                        "values": self.values(result),
                    }
                )
                key = (gain, -after)
                if best is None or key > best[:2]:
                    best = (gain, -after, units, result)
            gain, _, chosen, result = best
            if gain <= 0:
                stalls += 1
                if stalls >= 3:
                    return self._result(
                        current,
                        False,
                        self._why_not(summary, "three more units in a row did not bring it closer"),
                        steps,
                        summary,
                        baseline,
                        evaluated,
                    )
            else:
                stalls = 0
            option = options[self._changed(current, chosen)]
            current, summary = chosen, result
            steps.append(
                Step(
                    "add",
                    current,
                    f"+1 {option.name} ({option.gpus_per_unit:,} {option.gpu} at {option.site})",
                    self.annual_cost(current),
                    self.shortfall(summary),
                    self.values(summary),
                    tried,
                )
            )
            self.progress(f"+1 {option.name}: {self._describe(summary)}")
        current, summary = self._prune(current, summary, steps, evaluated)
        return self._result(current, True, "every target met", steps, summary, baseline, evaluated)

    def _prune(
        self, current: Units, summary: dict, steps: list[Step], evaluated: list
    ) -> tuple[Units, dict]:
        """Drop any unit the targets do not need, most expensive first."""
        while True:
            candidates = [
                (*current[:i], n - 1, *current[i + 1 :]) for i, n in enumerate(current) if n > 0
            ]
            if not candidates:
                return current, summary
            results = self.evaluate(candidates)
            fits = [
                (self.annual_cost(u), u, r)
                for u, r in zip(candidates, results, strict=True)
                if self.all_met(r)
            ]
            for u, r in zip(candidates, results, strict=True):
                evaluated.append((u, self.annual_cost(u), self.shortfall(r)))
            if not fits:
                return current, summary
            _, units, result = min(fits, key=lambda f: f[0])
            option = self.inputs.options[self._changed(units, current)]
            steps.append(
                Step(
                    "remove",
                    units,
                    f"-1 {option.name}: not needed",
                    self.annual_cost(units),
                    self.shortfall(result),
                    self.values(result),
                )
            )
            self.progress(f"-1 {option.name}: still meets every target")
            current, summary = units, result

    @staticmethod
    def _changed(a: Units, b: Units) -> int:
        return next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)

    def _why_not(self, summary: dict, because: str) -> str:
        missed = [t for t in self.targets if not t.met(summary)]
        parts = [
            f"{t.text} is not met (best reached {self._fmt(t, t.value(summary))})" for t in missed
        ]
        return f"infeasible: {'; '.join(parts)}: {because}"

    @staticmethod
    def _fmt(target: Target, value: float) -> str:
        if target.metric.endswith(("wait", "jct")):
            return f"{value / 3600:,.2f} h"
        return f"{value:,.3f}"

    def _describe(self, summary: dict) -> str:
        return ", ".join(
            f"{t.text}: {self._fmt(t, t.value(summary))}{'' if t.met(summary) else ' (missed)'}"
            for t in self.targets
        )

    def _drop_useless(
        self, units: Units, summary: dict, steps: list[Step], evaluated: list
    ) -> tuple[Units, dict]:
        """When targets cannot be met, keep only the units that brought them closer."""
        changed = True
        while changed and any(units):
            changed = False
            for i, n in enumerate(units):
                if not n:
                    continue
                fewer = (*units[:i], n - 1, *units[i + 1 :])
                [result] = self.evaluate([fewer])
                evaluated.append((fewer, self.annual_cost(fewer), self.shortfall(result)))
                if self.shortfall(result) <= self.shortfall(summary) + 1e-9:
                    steps.append(
                        Step(
                            "remove",
                            fewer,
                            f"-1 {self.inputs.options[i].name}: did not help",
                            self.annual_cost(fewer),
                            self.shortfall(result),
                            self.values(result),
                        )
                    )
                    units, summary, changed = fewer, result, True
                    break
        return units, summary

    def _result(
        self,
        units: Units,
        feasible: bool,
        reason: str,
        steps: list[Step],
        summary: dict,
        baseline: dict,
        evaluated: list,
    ) -> PlanResult:
        if not feasible:
            units, summary = self._drop_useless(units, summary, steps, evaluated)
            steps.append(
                Step(
                    "stop",
                    units,
                    reason,
                    self.annual_cost(units),
                    self.shortfall(summary),
                    self.values(summary),
                )
            )
        return PlanResult(
            units,
            feasible,
            reason,
            steps,
            summary,
            baseline,
            self.evaluations,
            self.cache_hits,
            evaluated,
        )

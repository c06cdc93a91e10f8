"""Same-run A/B of the scheduler core: the frozen pre-redesign core (tests/core/legacy)
against the pipeline, on one trace, in CPU seconds, with preemption waste and fairness.

    python bench/core_ab.py out/run/trace.csv backfill,fairshare

Fairness is each programme's attained share minus min(entitled, demand), in points:
issue 11 asks every programme with demand to be within 2 points.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.core.legacy

from arkwright.core.decisions import Preempt
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler
from arkwright.fleets import load_fleet
from arkwright.sim.simulator import Simulator
from arkwright.sim.trace import read_trace
from tests.core.legacy.scheduler_v1 import Scheduler as FrozenScheduler


def measure(fleet, jobs, policy: str, factory) -> dict:
    victims: set[str] = set()

    def observe(decision, scheduler):
        if isinstance(decision, Preempt):
            victims.add(decision.job.job_id)

    started = time.process_time()
    simulator = Simulator(fleet, PolicySpec.parse(policy), observer=observe)
    simulator.scheduler_factory = factory
    summary = simulator.run([j.spec_copy() for j in jobs]).summary
    cpu = time.process_time() - started
    total_h = sum(row["gpu_hours"] for row in summary["by_tenant"].values()) or 1.0
    return {
        "cpu_s": round(cpu, 1),
        "preemptions": summary["preemptions"],
        "jobs_preempted_pct": round(100 * len(victims) / max(len(jobs), 1), 2),
        "gpu_hours_lost_pct": round(100 * summary["work_lost_gpu_hours"] / total_h, 3),
        "share_points": {
            name: round(
                100 * (row["attained_share"] - min(row["entitled_share"], row["demand_share"])),
                2,
            )
            for name, row in summary["by_tenant"].items()
        },
    }


def main() -> None:
    trace = sys.argv[1] if len(sys.argv) > 1 else "out/run/trace.csv"
    policies = (sys.argv[2] if len(sys.argv) > 2 else "backfill,fairshare").split(",")
    fleet = load_fleet("uk-2026")
    jobs = read_trace(trace).jobs
    for policy in policies:
        frozen = measure(fleet, jobs, policy, FrozenScheduler)
        pipeline = measure(fleet, jobs, policy, Scheduler)
        ratio = pipeline["cpu_s"] / frozen["cpu_s"] if frozen["cpu_s"] else float("nan")
        print(
            json.dumps(
                {
                    "policy": policy,
                    "frozen": frozen,
                    "pipeline": pipeline,
                    "cpu_ratio": round(ratio, 2),
                }
            )
        )


if __name__ == "__main__":
    main()

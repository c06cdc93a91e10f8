"""Benchmark: policies side by side on a mixed-GPU national workload at 80% and 95% load.

    python bench/compare.py                # 40,000 jobs per load
    python bench/compare.py --jobs 100000

Prints mean JCT, p95 wait, utilisation, tCO2e and £ per policy, with ratios to
`backfill` measured in the same run, and checks them against the aims in issue 3:
fairshare+hetero at least 1.3x better mean JCT than backfill at high load, and carbon
at least 15% less tCO2e for at most 10% worse mean JCT.
"""

from __future__ import annotations

import argparse
import time

from arkwright.fleets import load_fleet
from arkwright.sim.compare import run_policies
from arkwright.sim.synth import synthesize
from arkwright.sim.throughput_file import table_for

POLICIES = ["backfill", "fifo", "fairshare", "fairshare+hetero", "carbon"]
METRICS = [
    ("mean_jct_s", "mean JCT h", 1 / 3600),
    ("p95_wait_s", "p95 wait h", 1 / 3600),
    ("gpu_utilization", "util %", 100),
    ("carbon_tco2e", "tCO2e", 1),
    ("cost_gbp", "£M", 1e-6),
]


def ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40_000)
    parser.add_argument("--loads", default="0.8,0.95")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    fleet = load_fleet("uk-2026")
    table = table_for(fleet)
    for load in (float(x) for x in args.loads.split(",")):
        jobs = synthesize(fleet, args.jobs, load, args.seed, table)
        started = time.perf_counter()
        results = run_policies("uk-2026", POLICIES, jobs, f"synthetic load {load}")
        wall = time.perf_counter() - started
        base = results["backfill"].summary
        print(
            f"\nuk-2026, {args.jobs:,} jobs at {load:.0%} offered load "
            f"({wall:.0f} s for {len(POLICIES)} policies on 2 cores); ratio = policy / backfill"
        )
        print(f"{'policy':<18}" + "".join(f"{label:>12}{'ratio':>7}" for _, label, _ in METRICS))
        for name, result in results.items():
            s = result.summary
            cells = "".join(
                f"{s[key] * scale:>12,.2f}{ratio(s[key], base[key]):>7.2f}"
                for key, _, scale in METRICS
            )
            print(f"{name:<18}{cells}")
        hetero = results["fairshare+hetero"].summary
        carbon = results["carbon"].summary
        jct_gain = base["mean_jct_s"] / hetero["mean_jct_s"]
        carbon_cut = 1 - carbon["carbon_tco2e"] / base["carbon_tco2e"]
        jct_cost = carbon["mean_jct_s"] / base["mean_jct_s"] - 1
        print(
            f"aim 1: fairshare+hetero mean JCT {jct_gain:.2f}x better than backfill "
            f"(aim >= 1.3x): {'met' if jct_gain >= 1.3 else 'missed'}"
        )
        print(
            f"aim 2: carbon {carbon_cut:.0%} less tCO2e for {jct_cost:+.0%} mean JCT "
            f"(aim >= 15% less for <= +10%): "
            f"{'met' if carbon_cut >= 0.15 and jct_cost <= 0.10 else 'missed'}"
        )


if __name__ == "__main__":
    main()

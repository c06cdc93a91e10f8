"""Benchmark: how long a capacity plan over uk-2026 takes, and how it scales with options.

    python bench/plan.py                  # a year of demand as 5,000 jobs, growth 1.5
    python bench/plan.py --jobs 30000

Plans with the first 2, 4 and 8 options of examples/uk-2026-options.toml for a year of
synthetic demand (run times stretched to fill 365 days at 80% load), growth 1.5, targets
mean_wait<=6h fleet-wide and p95_wait<=24h for research. Prints simulations run, seconds,
seconds per simulation, and time as a ratio to the 2-option plan. Uses every core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from arkwright.fleets import load_fleet
from arkwright.plan.options import load_options
from arkwright.plan.search import PlanInputs, Planner, grow
from arkwright.plan.targets import Target
from arkwright.sim.synth import synthesize
from arkwright.sim.throughput_file import table_for

MENU = Path(__file__).parent.parent / "examples" / "uk-2026-options.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--growth", type=float, default=1.5)
    parser.add_argument("--counts", default="2,4,8")
    args = parser.parse_args()
    fleet = load_fleet("uk-2026")
    table = table_for(fleet)
    demand = grow(synthesize(fleet, args.jobs, 0.8, 3, table, span_days=365), args.growth)
    menu = load_options(MENU, fleet)
    targets = [Target.parse("mean_wait<=6h"), Target.parse("p95_wait<=24h", "research")]
    print(
        f"uk-2026, a year of demand as {args.jobs:,} jobs x growth {args.growth:g} "
        f"({len(demand):,} jobs); targets: {', '.join(t.text for t in targets)}"
    )
    print(f"{'options':>8}{'simulations':>13}{'seconds':>9}{'s/sim':>7}{'ratio':>7}  result")
    base = None
    for count in (int(c) for c in args.counts.split(",")):
        planner = Planner(
            PlanInputs(fleet, menu[:count], demand, "fairshare+backfill", table), targets
        )
        started = time.perf_counter()
        result = planner.run()
        seconds = time.perf_counter() - started
        base = base or seconds
        bought = (
            ", ".join(f"{n}x {o.name}" for o, n in zip(menu, result.units, strict=False) if n)
            or "nothing"
        )
        print(
            f"{count:>8}{result.evaluations:>13}{seconds:>9.1f}"
            f"{seconds / max(result.evaluations, 1):>7.1f}{seconds / base:>7.2f}  "
            f"{'met' if result.feasible else 'not met'}: {bought}"
        )


if __name__ == "__main__":
    main()

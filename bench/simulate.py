"""Benchmark: the digital twin at national scale, and how a scheduling pass grows with the queue.

    python bench/simulate.py                 # 1,000,000 jobs, backfill and fairshare
    python bench/simulate.py --jobs 200000   # quicker

Part 1 simulates synthetic demand on uk-2026 at 80% offered load, each policy in its own
process so peak RSS is that policy's alone, and prints jobs/s, events/s and peak RSS,
with each policy's time as a ratio to the first. Every GPU runs at reference speed here
(a flat throughput table), so the offered load is the same for every policy.

Part 2 times one full scheduling pass with 1k, 10k and 100k jobs queued on a fleet that
is nearly full and fragmented (the costly case: most queued jobs must be looked at and
found not to fit), and prints each pass's cost as a ratio to the 1k pass. Linear growth
means the 100k ratio is near 100; better than linear is below that.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from arkwright.core.job import JobState
from arkwright.core.policy import PolicySpec
from arkwright.core.policy_data import DataPolicy
from arkwright.core.scheduler import Scheduler
from arkwright.core.throughput import ThroughputTable
from arkwright.fleets import load_fleet
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize


def one_policy(policy: str, jobs: int, seed: int) -> dict:
    fleet = load_fleet("uk-2026")
    # Every GPU counts as the reference GPU here, so "80% offered load" means exactly that
    # for every policy; bench/compare.py measures heterogeneity.
    table = ThroughputTable.flat()
    started = time.perf_counter()
    trace = synthesize(fleet, jobs, 0.8, seed, table)
    synth_s = time.perf_counter() - started
    result = Simulator(fleet, PolicySpec.parse(policy), table).run(trace)
    summary = result.summary
    return {
        "policy": policy,
        "jobs": jobs,
        "synth_s": synth_s,
        "sim_s": summary["wall_time_s"],
        "events": summary["events"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "utilization": summary["gpu_utilization"],
        "mean_wait_s": summary["mean_wait_s"],
        "completed": summary["jobs_completed"],
        "violations": summary["eligibility_violations"],
    }


def pass_cost(policy: str, queued: int, repeats: int = 3) -> float:
    """Seconds for one full pass with `queued` jobs waiting on a fragmented, busy fleet."""
    fleet = load_fleet("uk-2026")
    best = float("inf")
    demand = synthesize(fleet, queued + fleet.total_gpus + 1_000, 0.8, 11)
    for _ in range(repeats):
        for job in demand:
            job.state, job.seq, job.work_done_s, job.attempts = JobState.PENDING, -1, 0.0, 0
            job.first_started_at = -1.0
        scheduler = Scheduler(fleet, PolicySpec.parse(policy))
        # Fill the fleet with long single-GPU work, then free one GPU on every tenth node:
        # GPUs are free, but almost no queued gang fits.
        fillers = iter(demand[queued:])
        for pool_index, state in enumerate(scheduler.pool_states):
            while state.free_gpus:
                job = next(fillers)
                job.gpus, job.duration_s, job.time_limit_s = 1, 1.5e5, 1.5e5  # within 48 h
                job.data_policy, job.gpu_types = DataPolicy(), None  # may go anywhere
                scheduler.submit(job, 0.0)
                scheduler.schedule(0.0)
            holes = list(scheduler.running_by_end[pool_index])[:: 10 * state.gpus_per_node]
            for job in holes:
                scheduler.finish(job.job_id, 0.0)
        for job in demand[:queued]:
            job.gpus = max(job.gpus, 2)
            scheduler.submit(job, 1.0)
        t0 = time.perf_counter()
        scheduler.schedule(2.0, full=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--policies", default="backfill,fairshare")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--skip-passes", action="store_true")
    parser.add_argument("--passes-only", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_policy(args.one, args.jobs, args.seed)))
        return

    if args.passes_only:
        print_pass_costs(args.policies.split(","))
        return
    print(f"Simulating {args.jobs:,} synthetic jobs on uk-2026 at 80% offered load")
    print(
        f"{'policy':<22}{'sim s':>8}{'ratio':>7}{'jobs/s':>10}{'events/s':>11}"
        f"{'peak RSS MB':>13}{'util':>7}{'viol.':>6}"
    )
    first = None
    for policy in args.policies.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                policy,
                "--jobs",
                str(args.jobs),
                "--seed",
                str(args.seed),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(out)
        first = first or row["sim_s"]
        print(
            f"{policy:<22}{row['sim_s']:>8.1f}{row['sim_s'] / first:>7.2f}"
            f"{row['jobs'] / row['sim_s']:>10,.0f}{row['events'] / row['sim_s']:>11,.0f}"
            f"{row['peak_rss_mb']:>13,.0f}{row['utilization']:>7.1%}{row['violations']:>6}"
        )
    if not args.skip_passes:
        print_pass_costs(args.policies.split(","))


def print_pass_costs(policies: list[str]) -> None:
    print("\nOne full scheduling pass on a busy, fragmented uk-2026 (best of 3)")
    print(f"{'policy':<22}{'queued':>9}{'pass ms':>10}{'ratio to 1k':>13}{'µs/queued job':>15}")
    for policy in policies:
        base = None
        for queued in (1_000, 10_000, 100_000):
            seconds = pass_cost(policy, queued)
            base = base or seconds
            print(
                f"{policy:<22}{queued:>9,}{seconds * 1000:>10.1f}{seconds / base:>13.1f}"
                f"{seconds / queued * 1e6:>15.2f}"
            )


if __name__ == "__main__":
    main()

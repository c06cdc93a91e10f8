"""Benchmark: what Arkwright's Slurm backend costs over plain sbatch, on a live cluster.

    eval "$(bash scripts/test-slurm.sh)"; python bench/slurm.py [--jobs 200]

Baseline: a shell loop's worth of `sbatch --wrap true` calls, the cheapest way a user can
put N jobs into this Slurm. Then the same N jobs through the backend (batch script, work
directory, every sbatch option Arkwright sets), by commands and through slurmrestd, and
one poll of N tracked jobs (one squeue call, or one GET /jobs). Ratios are to the
baseline; the cluster is drained between runs so each starts from an empty queue.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time

from arkwright.backends.base import RunRequest
from arkwright.backends.slurm import SlurmBackend
from arkwright.core.job import Job
from arkwright.fleets.loader import parse_fleet

CONF = os.environ.get("ARKWRIGHT_TEST_SLURM_CONF")
REST_URL = os.environ.get("ARKWRIGHT_TEST_SLURM_REST_URL")
REST_TOKEN = os.environ.get("ARKWRIGHT_TEST_SLURM_REST_TOKEN_FILE")
ENV = {**os.environ, "SLURM_CONF": CONF or ""}


def fleet_with(access: dict, work_dir: str):
    site = {
        "name": "hpc",
        "region": "local",
        "jurisdiction": "UK",
        "operator": "bench",
        "carbon_g_per_kwh": 100,
        "backend": "slurm",
        "slurm": {**access, "work_dir": work_dir, "partitions": {"big": "gpu"}},
        "pools": [
            {
                "name": "big",
                "gpu": "H100",
                "gpus_per_node": 8,
                "nodes": 1,
                "price_gbp_per_gpu_hour": 1.0,
            }
        ],
    }
    return parse_fleet({"name": "bench", "sites": [site]}, "bench")


def drain() -> None:
    subprocess.run(["scancel", "-u", "root"], env=ENV, check=False)
    time.sleep(1.0)


def hold_partition(hold: bool) -> None:
    """Queue without running, so the benchmark measures submission, not the node."""
    state = "DOWN" if hold else "UP"
    subprocess.run(
        ["scontrol", "update", "partitionname=gpu", f"state={state}"], env=ENV, check=True
    )


def baseline(jobs: int) -> float:
    started = time.perf_counter()
    for _ in range(jobs):
        subprocess.run(
            ["sbatch", "--parsable", "-p", "gpu", "--gres=gpu:1", "--wrap", "true"],
            env=ENV,
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - started


def through_backend(access: dict, jobs: int, work_dir: str) -> tuple[float, float]:
    fleet = fleet_with(access, work_dir)
    backend = SlurmBackend(fleet, "hpc", fleet.backend_settings["hpc"], work_dir)
    requests = [
        RunRequest(
            Job(job_id=f"b{n}", tenant="research", gpus=1, duration_s=60, submit_time=0),
            fleet.pools[0],
            ((0, 1),),
            1,
            ["true"],
            {},
        )
        for n in range(jobs)
    ]
    started = time.perf_counter()
    for request in requests:
        backend.start(request)
    submit_s = time.perf_counter() - started
    started = time.perf_counter()
    backend.poll(time.time())
    return submit_s, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    if not CONF:
        raise SystemExit('no Slurm: run `eval "$(bash scripts/test-slurm.sh)"` first')
    n = args.jobs
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        hold_partition(True)
        try:
            drain()
            base = baseline(n)
            rows.append(("plain sbatch --wrap (baseline)", base, None))
            drain()
            submit_s, poll_s = through_backend({"slurm_conf": CONF}, n, f"{tmp}/cli")
            rows.append(("Arkwright, commands", submit_s, poll_s))
            if REST_URL:
                drain()
                access = {"rest_url": REST_URL, "rest_user": "root", "rest_token_file": REST_TOKEN}
                submit_s, poll_s = through_backend(access, n, f"{tmp}/rest")
                rows.append(("Arkwright, slurmrestd", submit_s, poll_s))
        finally:
            drain()
            hold_partition(False)
    print(f"\nSubmitting {n} jobs to a one-node Slurm 22.05 on this machine")
    print(f"{'way in':34} {'jobs/s':>8} {'ms/job':>8} {'ratio':>7} {'poll all, ms':>13}")
    for name, seconds, poll in rows:
        ratio = seconds / base
        poll_text = f"{poll * 1000:13.0f}" if poll is not None else f"{'-':>13}"
        print(f"{name:34} {n / seconds:8.1f} {seconds / n * 1000:8.1f} {ratio:7.2f} {poll_text}")


if __name__ == "__main__":
    main()

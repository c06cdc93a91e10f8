"""Benchmark: the live API under concurrent clients, on SQLite and on PostgreSQL.

    python bench/api.py                       # SQLite; PostgreSQL too if ARKWRIGHT_TEST_PG_URL
    python bench/api.py --client python       # Python clients instead of wrk
    python bench/api.py --baseline DIR        # also the `arkwright` package in DIR, same run

For each database: starts `arkwright serve` (one process, uvicorn) on loopback and drives
it with concurrent keep-alive clients that submit jobs, listing jobs on every tenth
request, over real HTTP. The load comes from wrk (a C load generator, Debian's `wrk`) when
it is installed, since Python clients on this 2-core machine spend more CPU per request
than the server does and would measure themselves; otherwise from Python threads.
Submissions/s counts the jobs the database holds afterwards. Then it times one
control-plane step with 10,000 jobs queued on uk-2026: the core's pass alone, and the
pass with its decisions committed to the database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from arkwright.fleets import load_fleet
from arkwright.service.db import make_engine
from arkwright.service.harness import free_port, start_server, wipe_database
from arkwright.service.schema import JobSubmit
from arkwright.service.server import ServiceConfig, bootstrap_admin, build_control


def wipe_if_postgres(url: str) -> str:
    return wipe_database(url) if url.startswith("postgresql") else url


def count_jobs(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    engine.dispose()
    return count


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bootstrap_in_subprocess(url: str) -> str:
    """The admin token, made by the `arkwright` the server will import (PYTHONPATH), so a
    baseline's schema is its own."""
    out = subprocess.run(
        [sys.executable, "-m", "arkwright", "admin", "bootstrap", "--db", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def load_wrk(url: str, clients: int, seconds: float, workers: int = 1) -> dict:
    data = Path(tempfile.mkdtemp(prefix="arkwright-bench-"))
    token = bootstrap_in_subprocess(wipe_if_postgres(url))
    port = free_port()
    extra = ("--workers", str(workers)) if workers > 1 else ()
    server = start_server(url, data, port, "--fleet", "uk-2026", *extra)
    script = Path(__file__).with_name("api_load.lua")
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{clients}",
                f"-d{seconds:g}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "ARKWRIGHT_TOKEN": token},
        ).stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    latency = {
        int(p): _ms(v, u)
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    submitted = count_jobs(url)
    return {
        "submissions": submitted,
        "per_s": submitted / seconds,
        "requests_s": requests,
        "p50_ms": latency[50],
        "p99_ms": latency[99],
        "list_p50_ms": float("nan"),
        "list_p99_ms": float("nan"),
        "errors": int(bad.group(1)) if bad else 0,
        "first_error": "",
    }


def load(url: str, clients: int, jobs: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix="arkwright-bench-"))
    token = bootstrap_admin(wipe_if_postgres(url))
    port = free_port()
    server = start_server(url, data, port, "--fleet", "uk-2026")
    headers = {"Authorization": f"Bearer {token}"}
    submit_ms: list[float] = []
    list_ms: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = jobs // clients

    def client(n: int) -> None:
        mine_submit, mine_list = [], []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            for i in range(per_client):
                body = {
                    "tenant": ("research", "public-services", "startups")[i % 3],
                    "gpus": (1, 8, 64)[i % 3],
                    "time": "4h",
                    "job_type": "llm-finetune",
                }
                started = time.perf_counter()
                response = http.post("/v1/jobs", json=body)
                mine_submit.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    errors.append(f"{response.status_code} {response.text[:80]}")
                if i % 10 == 9:
                    started = time.perf_counter()
                    http.get("/v1/jobs", params={"limit": 50})
                    mine_list.append((time.perf_counter() - started) * 1000)
        with lock:
            submit_ms.extend(mine_submit)
            list_ms.extend(mine_list)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]

    return {
        "submissions": len(submit_ms),
        "wall_s": wall,
        "per_s": len(submit_ms) / wall,
        "p50_ms": pct(submit_ms, 50),
        "p99_ms": pct(submit_ms, 99),
        "list_p50_ms": pct(list_ms, 50),
        "list_p99_ms": pct(list_ms, 99),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def pass_with_queue(url: str, queued: int) -> tuple[float, float, int]:
    """(core pass s, step with persistence s, jobs started) with `queued` jobs waiting."""
    data = Path(tempfile.mkdtemp(prefix="arkwright-bench-"))
    bootstrap_admin(wipe_if_postgres(url))  # user 1 submits
    config = ServiceConfig(load_fleet("uk-2026"), data, url)
    control = build_control(config)
    specs = [
        JobSubmit(gpus=(1, 8, 64, 512)[i % 4], time="4h", job_type="llm-pretrain")
        for i in range(queued)
    ]
    for i, spec in enumerate(specs):
        control.submit(spec, ("research", "startups")[i % 2], 1, "bench")
    timings: dict[str, float] = {}

    def timed_pass(seconds: float) -> None:
        timings["core"] = seconds

    control.on_pass = timed_pass
    control._last_full = 0.0  # the next step is a full pass
    started = time.perf_counter()
    control.step()
    step_s = time.perf_counter() - started
    return timings["core"], step_s, control.scheduler.running


@contextlib.contextmanager
def _package_from(path: Path | None):
    """Servers started inside import `arkwright` from `path` (PYTHONPATH comes before the
    editable install), or from this checkout when `path` is None."""
    saved = os.environ.get("PYTHONPATH")
    if path is not None:
        os.environ["PYTHONPATH"] = str(path.resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--seconds", type=float, default=15.0, help="wrk run length")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="A directory holding another version's `arkwright` package (e.g. from "
        "`git archive`): its server is measured too, alternating with this one's.",
    )
    parser.add_argument("--rounds", type=int, default=1, help="Alternations with --baseline.")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="API process counts to measure this code with (`serve --workers N`), "
        "comma-separated; the baseline runs with one.",
    )
    parser.add_argument("--skip-step", action="store_true", help="Skip the control-plane step.")
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    # Each run gets an empty database: a new SQLite file, or the PostgreSQL one wiped.
    databases = [("SQLite", lambda: f"sqlite:///{tempfile.mkdtemp()}/bench.db")]
    if os.environ.get("ARKWRIGHT_TEST_PG_URL"):
        databases.append(("PostgreSQL", lambda: os.environ["ARKWRIGHT_TEST_PG_URL"]))
    else:
        print("PostgreSQL: skipped (set ARKWRIGHT_TEST_PG_URL; `make bench` does)")
    if use_wrk:
        print(
            f"wrk: {args.clients} connections for {args.seconds:g} s, a list every 10th "
            "request; 2-core machine (wrk shares it); wN = `serve --workers N`"
        )
        print(
            f"{'database':<12}{'code':<10}{'subs/s':>9}{'req/s':>9}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'non-2xx':>9}"
        )
        counts = [int(n) for n in args.workers.split(",")]
        versions = [(f"this w{n}", None, n) for n in counts]
        if args.baseline:
            versions.append(("base w1", args.baseline, 1))
        for _ in range(args.rounds):
            for name, url in databases:
                for version, path, workers in versions:
                    with _package_from(path):
                        r = load_wrk(url(), args.clients, args.seconds, workers)
                    print(
                        f"{name:<12}{version:<10}{r['per_s']:>9,.0f}{r['requests_s']:>9,.0f}"
                        f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>9}"
                    )
    else:
        print(
            f"{args.clients} Python client threads, {args.jobs:,} submissions, a list every "
            "10th request; one uvicorn process; 2-core machine"
        )
        print(
            f"{'database':<12}{'subs/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'list p50':>10}"
            f"{'list p99':>10}{'errors':>8}"
        )
        for name, url in databases:
            r = load(url(), args.clients, args.jobs)
            print(
                f"{name:<12}{r['per_s']:>9,.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                f"{r['list_p50_ms']:>10.1f}{r['list_p99_ms']:>10.1f}{r['errors']:>8}"
                + (f"  e.g. {r['first_error']}" if r["errors"] else "")
            )
    if args.skip_step:
        return
    print(f"\nOne control-plane step with {args.queued:,} jobs queued on uk-2026")
    for name, url in databases:
        core_s, step_s, started = pass_with_queue(url(), args.queued)
        print(
            f"{name:<12} core pass {core_s * 1000:,.0f} ms; with decisions committed "
            f"{step_s * 1000:,.0f} ms; {started:,} jobs started"
        )


if __name__ == "__main__":
    main()

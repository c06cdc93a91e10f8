"""The virtual clock: replays a trace through the scheduler core, as fast as it can.

Events at one instant are applied in a fixed order (finishes, then submissions), then
the core makes one pass. A periodic tick gives the core a full pass (fair-share reclaim,
carbon re-evaluation) while work is waiting. Everything is deterministic.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from arkwright.core.decisions import Cancelled, Decision, Preempt, Reject, Start
from arkwright.core.dependencies import Ended
from arkwright.core.eligibility import is_eligible
from arkwright.core.fleet import Fleet
from arkwright.core.job import Job
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler, SchedulerConfig
from arkwright.core.throughput import ThroughputTable
from arkwright.sim.collector import long_lived_heap
from arkwright.sim.metrics import summarize
from arkwright.sim.recorder import Recorder
from arkwright.sim.throughput_file import table_for

ProgressFn = Callable[[int, int], None]
# The core the loop drives: `Scheduler`, or a stand-in with its calls (tests swap in the
# frozen reference core). `Any`, not `Scheduler`, so that the compiled loop accepts both.
SchedulerLike = Any
ObserverFn = Callable[[Decision, SchedulerLike], None]


@dataclass
class SimulationResult:
    summary: dict
    timeline: np.ndarray  # hourly busy GPUs, shape (hours, pools)
    timeline_start: float
    waits_by_tenant: dict[str, list[float]] = field(default_factory=dict)
    # Busy GPUs per programme, sampled on the same hours as `timeline`.
    tenant_timeline: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Simulator:
    fleet: Fleet
    policy: PolicySpec
    throughput: ThroughputTable | None = None  # None: the default table, fleet overrides
    config: SchedulerConfig | None = None
    tick_s: float = 300.0
    horizon_s: float | None = None  # stop the clock here; later work counts as unfinished
    audit: bool = False  # check the core's invariants after every instant (tests)
    progress: ProgressFn | None = None
    observer: ObserverFn | None = None  # sees every decision as it is carried out (tests)
    # Builds the core; tests swap in a frozen reference implementation to compare against.
    scheduler_factory: Callable[..., SchedulerLike] = Scheduler

    def run(self, jobs: list[Job], trace_name: str = "") -> SimulationResult:
        wall_start = time.perf_counter()
        with long_lived_heap():  # the trace's jobs live as long as the run: sim/collector.py
            return self._run(jobs, trace_name, wall_start)

    def _run(self, jobs: list[Job], trace_name: str, wall_start: float) -> SimulationResult:
        fleet = self.fleet
        throughput = self.throughput or table_for(fleet)
        scheduler = self.scheduler_factory(fleet, self.policy, throughput, self.config)
        recorder = Recorder(fleet)
        pools = fleet.pools
        finishes: list[tuple[float, int, int, Job]] = []
        jobs = sorted(jobs, key=lambda j: j.submit_time)
        total = len(jobs)
        if jobs:
            recorder.window = (jobs[0].submit_time, jobs[-1].submit_time)
        # Jobs some dependency names: how they ended, for a dependent that arrives after
        # the core has forgotten them (it remembers only recent endings).
        named = {parent for j in jobs if j.dependency for _, parent in j.dependency.clauses}
        ended_as: dict[str, Ended] = {}
        next_job = 0
        next_tick = math.inf
        events = 0
        tick_s = self.tick_s
        horizon = self.horizon_s if self.horizon_s is not None else math.inf
        report_every = max(total // 200, 1000)
        idle_since: float | None = None
        give_up_after = scheduler.config.carbon_lookahead_s + 2 * tick_s
        pass_seconds: list[float] = []  # wall time of every schedule() call
        perf_counter = time.perf_counter

        while (
            next_job < total
            or finishes
            or ((scheduler.pending or getattr(scheduler, "held", 0)) and next_tick < math.inf)
        ):
            t_submit = jobs[next_job].submit_time if next_job < total else math.inf
            t_finish = finishes[0][0] if finishes else math.inf
            # Compared, not min(): the builtin parses its arguments at every event.
            now = t_submit if t_submit < t_finish else t_finish
            if next_tick < now:
                now = next_tick
            if now > horizon:
                break
            recorder.advance(now)
            while finishes and finishes[0][0] <= now:
                end, _, attempt, job = heapq.heappop(finishes)
                if attempt != job.attempts or job.state != "running":
                    continue  # a stale event: the run it belonged to was preempted
                pool = pools[job.pool_index]
                gpus = job.allocated_gpus
                timed_out = job.requested_s < job.duration_s
                scheduler.finish(job.job_id, end)
                if job.job_id in named:
                    ended_as[job.job_id] = Ended.OK
                recorder.finished(job, pool, gpus, end, timed_out)
                events += 1
            while next_job < total and jobs[next_job].submit_time <= now:
                job = jobs[next_job]
                next_job += 1
                events += 1
                recorder.submitted_job(job)
                arrived = (
                    scheduler.submit(job, now, ended_as)
                    if job.dependency
                    else scheduler.submit(job, now)
                )
                for decision in arrived:
                    if isinstance(decision, Reject):
                        recorder.rejected_job(decision.job, decision.reason)
                        if decision.job.job_id in named:
                            ended_as[decision.job.job_id] = Ended.FAILED
                    if self.observer:
                        self.observer(decision, scheduler)
                if self.progress and next_job % report_every == 0:
                    self.progress(next_job, total)
            full = now >= next_tick
            if full:
                events += 1
            pass_started = perf_counter()
            decisions = scheduler.schedule(now, full=full)
            pass_seconds.append(perf_counter() - pass_started)
            for decision in decisions:
                job = decision.job
                if self.observer:
                    self.observer(decision, scheduler)
                if isinstance(decision, Start):
                    pool = pools[decision.pool]
                    eligible = is_eligible(
                        pool,
                        fleet.tenant(job.tenant),
                        job.data_policy,
                        job.gpu_types,
                        job.sites,
                        job.pools,
                    )
                    recorder.started(job, pool, eligible)
                    run_left = min(job.remaining_s, job.remaining_request_s)
                    end = now + run_left / job.speed
                    heapq.heappush(finishes, (end, job.seq, job.attempts, job))
                elif isinstance(decision, Reject):
                    recorder.rejected_job(job, decision.reason)
                    if job.job_id in named:
                        ended_as[job.job_id] = (
                            Ended.CANCELLED if isinstance(decision, Cancelled) else Ended.FAILED
                        )
                elif isinstance(decision, Preempt):
                    recorder.preempted(
                        job,
                        pools[decision.pool],
                        decision.gpus,
                        decision.ran_from,
                        now,
                        decision.work_lost_s,
                    )
            if self.audit:
                scheduler.check_invariants()
            if scheduler.pending or getattr(scheduler, "held", 0):
                if full or next_tick == math.inf:
                    next_tick = (now // tick_s + 1) * tick_s
                # Nothing runs, nothing arrives, and a pass starts nothing: stuck for good.
                if not finishes and next_job >= total and not decisions:
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since > give_up_after:
                        break
                else:
                    idle_since = None
            else:
                next_tick = math.inf
        if self.progress:
            self.progress(total, total)

        unfinished = scheduler.pending + getattr(scheduler, "held", 0) + scheduler.running
        stop = min(horizon, recorder.last_event if not unfinished else horizon)
        if unfinished and math.isfinite(stop):
            for pool_index, running in enumerate(scheduler.running_by_end):
                for job in running:  # account the work done up to the horizon
                    recorder.run_segment(
                        pools[pool_index], job.allocated_gpus, job.started_at, stop
                    )
        summary = summarize(
            recorder,
            unfinished=unfinished,
            wall_time_s=time.perf_counter() - wall_start,
            events=events,
            policy=self.policy.name,
            trace=trace_name,
        )
        summary["passes"] = pass_summary(scheduler, pass_seconds)
        summary["throughput_table_fallbacks"] = sorted(
            f"{jt}/{model}" for jt, model in scheduler.throughput.fallbacks
        )
        timeline = np.array(recorder.timeline) if recorder.timeline else np.zeros((0, len(pools)))
        waits = {name: tally.waits for name, tally in recorder.tenants.items()}
        tenants = sorted({name for sample in recorder.tenant_timeline for name in sample})
        by_tenant = {
            name: np.array([sample.get(name, 0.0) for sample in recorder.tenant_timeline])
            for name in tenants
        }
        return SimulationResult(summary, timeline, recorder.timeline_start, waits, by_tenant)


def pass_summary(scheduler: SchedulerLike, pass_seconds: list[float]) -> dict:
    """Scheduling passes: how many, how many jobs each examined, how long each took.

    Calls that had nothing to look at (no queue, nothing changed) return at once and are
    counted in `calls` but not in `passes`; times are over every call."""
    stats = getattr(scheduler, "stats", None)  # the frozen reference core has none
    times_us = np.array(pass_seconds) * 1e6 if pass_seconds else np.zeros(1)
    out = {
        "calls": len(pass_seconds),
        "time_us_mean": float(times_us.mean()),
        "time_us_p50": float(np.percentile(times_us, 50)),
        "time_us_p95": float(np.percentile(times_us, 95)),
        "time_us_p99": float(np.percentile(times_us, 99)),
        "time_us_max": float(times_us.max()),
    }
    if stats is not None:
        examined = np.array(stats.examined_per_pass) if stats.examined_per_pass else np.zeros(1)
        out.update(
            passes=stats.passes,
            examined_mean=float(examined.mean()),
            examined_p99=float(np.percentile(examined, 99)),
            examined_max=int(stats.examined_max),
            bound_hits=stats.bound_hits,
            lists_skipped=stats.lists_skipped,
            passed_over=stats.passed_over,
        )
    return out

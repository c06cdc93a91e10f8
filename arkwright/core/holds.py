"""Holds: accepted jobs that wait outside the queue, and what lets them in.

A job waits here while its dependency (core/dependencies.py) is unmet, while its
array's throttle (core/arrays.py) is full, or while carbon deferral (core/carbon.py) has
it wait for a cleaner hour, until the time that answer can next change. Holding them
outside the queue keeps a pass's work independent of how many such jobs there are: they
are touched only when a job they name starts or ends, a task of their array ends, or
their carbon wait is up.

What the driver should show (Slurm's reason names) comes back as `Held` decisions with
the next pass; a job the core ends itself (--kill-on-invalid-dep) as `Cancelled`.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from arkwright.core.arrays import ArrayThrottle
from arkwright.core.decisions import Cancelled, Decision, Held
from arkwright.core.dependencies import (
    NEVER,
    SATISFIED,
    Dependency,
    DependencyBook,
    DepKind,
    Ended,
)
from arkwright.core.job import Job, JobState

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler

DEPENDENCY = "Dependency"
NEVER_SATISFIED = "DependencyNeverSatisfied"
ARRAY_LIMIT = "JobArrayTaskLimit"
BEGIN_TIME = "BeginTime"  # deferred by the driver (a retry's backoff), as Slurm's --begin
CARBON = "CarbonDeferral"  # waiting for a cleaner hour (not a Slurm reason: Arkwright's own)


class Holds:
    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        self.dependencies = DependencyBook()
        self.arrays = ArrayThrottle()
        self.count = 0
        self._notices: list[Decision] = []
        self._after_pass: list[tuple[str, str]] = []  # settled by starts, due after the pass
        self._live_by_owner_name: dict[str, dict[str, Job]] = {}  # for `singleton`
        self._recent_endings: OrderedDict[str, Ended] = OrderedDict()
        # Carbon waits: (when to look again, seq, job); a cancelled job's entry is dropped
        # when it comes up. `_carbon_said`: jobs whose wait the driver was told of, told
        # again only when the wait ends without a start (a start clears the reason).
        self._carbon_waits: list[tuple[float, int, Job]] = []
        self._carbon_said: set[str] = set()

    def take_notices(self) -> list[Decision]:
        notices, self._notices = self._notices, []
        return notices

    # ------------------------------------------------------------------ events

    def arrived(self, job: Job, now: float, ended: Mapping[str, Ended] | None) -> list[Decision]:
        """An accepted job (already in the scheduler's `jobs`): queue it, or hold it."""
        dependency = self._with_singleton(job)
        if job.owner_name is not None:
            self._live_by_owner_name.setdefault(job.owner_name, {})[job.job_id] = job
        if dependency is None:
            return self._ready(job, now, quiet=True)
        verdict = self.dependencies.add(
            job.job_id, dependency, lambda parent: self._parent_state(job, parent, ended)
        )
        if verdict is SATISFIED:
            return self._ready(job, now, quiet=True)
        if verdict is NEVER:
            return self._never(job, now)
        return [self._hold(job, DEPENDENCY, now)]

    def adopted(self, job: Job) -> None:
        """A job found running after a restart: it holds its array slot."""
        self.arrays.adopt(job)
        if job.owner_name is not None:
            self._live_by_owner_name.setdefault(job.owner_name, {})[job.job_id] = job

    def started(self, job: Job) -> None:
        """A job started (always inside a pass): jobs waiting on its start (`after:`) are
        settled once the pass is over, so the pass's queue cursors stay valid."""
        self._carbon_said.discard(job.job_id)
        if self.dependencies.dependents(job.job_id):
            self._after_pass += self.dependencies.parent_moved(job.job_id, True, None)

    def carbon_wait(self, job: Job, until: float, now: float) -> None:
        """A queued job (the caller took it out of the queue) waits for a cleaner hour."""
        first = job.job_id not in self._carbon_said
        held = self._hold(job, CARBON, now)
        heapq.heappush(self._carbon_waits, (until, job.seq, job))
        if first:
            self._carbon_said.add(job.job_id)
            self._notices.append(held)

    def carbon_due(self, now: float) -> None:
        """Jobs whose carbon wait is up are asked again: they wait on, or go back into
        the queue (told, so that the driver stops showing the reason)."""
        waits = self._carbon_waits
        s = self._s
        carbon = s.carbon
        while waits and waits[0][0] <= now:
            job = heapq.heappop(waits)[2]
            if job.held != CARBON:
                continue  # cancelled while it waited
            cls = s.eligibility.classes[job.eligibility_class]
            until = carbon.defer_until(job, cls, s.speeds(job.job_type), now) if carbon else None
            if until is not None:
                heapq.heappush(waits, (until, job.seq, job))
                continue
            job.held = ""
            self.count -= 1
            self.carbon_over(job, now)
            s._enqueue(job)

    def carbon_over(self, job: Job, now: float) -> None:
        """A job that waited for a cleaner hour no longer does (it may still not fit)."""
        if job.job_id in self._carbon_said:
            self._carbon_said.discard(job.job_id)
            self._notices.append(Held(job, "", now))

    def pass_over(self, now: float) -> None:
        if self._after_pass:
            decided, self._after_pass = self._after_pass, []
            self._settle(decided, now)

    def release(self, job: Job) -> None:
        """A held job is leaving (cancelled): drop it from whatever holds it."""
        if job.held == ARRAY_LIMIT:
            self.arrays.remove(job)
        elif job.held == CARBON:
            self._carbon_said.discard(job.job_id)  # its wait entry is dropped when due
        elif job.held != BEGIN_TIME:
            self.dependencies.remove(job.job_id)
        job.held = ""
        self.count -= 1

    def defer(self, job: Job, now: float) -> None:
        """Out of the queue until the driver resumes it; still live for its dependents
        and still holding its array slot (it has not ended)."""
        self._hold(job, BEGIN_TIME, now)

    def resume(self, job: Job) -> None:
        job.held = ""
        self.count -= 1
        self._s._enqueue(job)

    def ended(self, job: Job, how: Ended, now: float, was_active: bool) -> None:
        """A job left for good: free its array slot (if it held one, `was_active`), and
        settle the jobs that wait on it."""
        if job.owner_name is not None:
            same = self._live_by_owner_name.get(job.owner_name)
            if same is not None:
                same.pop(job.job_id, None)
                if not same:
                    del self._live_by_owner_name[job.owner_name]
        if was_active:
            following = self.arrays.ended(job)
            if following is not None:
                self._notices += self._ready(following, now, counted=True)
        endings = self._recent_endings
        endings[job.job_id] = how
        if len(endings) > self._s.config.remembered_endings:
            endings.popitem(last=False)
        if self.dependencies.dependents(job.job_id):
            started = job.first_started_at >= 0
            self._settle(self.dependencies.parent_moved(job.job_id, started, how), now)

    # --------------------------------------------------------------- internals

    def _with_singleton(self, job: Job) -> Dependency | None:
        """The job's dependency, with `singleton` made concrete: afterany on every earlier
        job of the same user and name that has not ended."""
        dependency = job.dependency
        if dependency is None or not dependency.singleton:
            return dependency
        earlier = self._live_by_owner_name.get(job.owner_name or "", {})
        clauses = dependency.clauses + tuple(
            (DepKind.AFTER_ANY, other) for other in earlier if other != job.job_id
        )
        return Dependency(clauses, dependency.any_of, False, dependency.kill_on_invalid)

    def _parent_state(
        self, job: Job, parent: str, ended: Mapping[str, Ended] | None
    ) -> tuple[bool, Ended | None] | None:
        if parent == job.job_id:
            return None  # a job cannot wait on itself
        live = self._s.jobs.get(parent)
        if live is not None:
            return live.state is JobState.RUNNING or live.first_started_at >= 0, None
        how = (ended or {}).get(parent) or self._recent_endings.get(parent)
        return None if how is None else (True, how)

    def _hold(self, job: Job, reason: str, now: float) -> Held:
        if not job.held:
            self.count += 1
        job.held = reason
        return Held(job, reason, now)

    def _ready(
        self, job: Job, now: float, quiet: bool = False, counted: bool = False
    ) -> list[Decision]:
        """Its dependencies are met: into the queue, unless its array's throttle is full.
        `counted`: it already has its array slot (handed on by a task that ended)."""
        was_held = bool(job.held)
        if not counted and not self.arrays.admit(job):
            return [self._hold(job, ARRAY_LIMIT, now)]
        if was_held:
            job.held = ""
            self.count -= 1
        self._s._enqueue(job)
        return [] if quiet and not was_held else [Held(job, "", now)]

    def _never(self, job: Job, now: float) -> list[Decision]:
        dependency = job.dependency
        if dependency is not None and dependency.kill_on_invalid:
            if job.held:
                job.held = ""
                self.count -= 1
            del self._s.jobs[job.job_id]
            job.state = JobState.CANCELLED
            self.ended(job, Ended.CANCELLED, now, was_active=False)
            return [Cancelled(job, f"{NEVER_SATISFIED} ({dependency})", now)]
        return [self._hold(job, NEVER_SATISFIED, now)]

    def _settle(self, decided: list[tuple[str, str]], now: float) -> None:
        for child_id, verdict in decided:
            child = self._s.jobs.get(child_id)
            if child is None:
                continue
            if verdict is SATISFIED:
                self._notices += self._ready(child, now)
            else:
                self._notices += self._never(child, now)

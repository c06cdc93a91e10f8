"""The scheduler core: events in, decisions out. Pure and deterministic.

The driver feeds it `submit`, `finish`, `cancel` and `requeue` events, then calls
`schedule(now)` once per instant to get the decisions to carry out. The core applies its
own decisions to its state (GPUs are taken when it says Start), so the driver only has to
execute them and report back.

The pass is a pipeline of stages that each own their state (docs/core.md):
ordering (`ordering`), placement strategy (`placement`), the backfill reservation book
(`reservations`), preemption (`preemption`), budgets (`budget`), carbon deferral
(`carbon`), and the gang arithmetic they share (`gang`). This module orchestrates them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from arkwright.core.admission import Admission
from arkwright.core.audit import check_invariants
from arkwright.core.budget import BudgetLedger, OverBudget
from arkwright.core.carbon import CarbonDeferral
from arkwright.core.config import SchedulerConfig
from arkwright.core.decisions import Decision, Reject, Start
from arkwright.core.dependencies import Ended
from arkwright.core.eligibility import EligibilityClass, EligibilityIndex
from arkwright.core.estimate import earliest_start
from arkwright.core.fleet import Fleet, Pool
from arkwright.core.gang import shape_on
from arkwright.core.holds import BEGIN_TIME, CARBON, Holds
from arkwright.core.job import Job, JobState
from arkwright.core.ordering import (
    NO_LIMIT,
    SKIP_LIST,
    FairShareOrder,
    ListFilter,
    PriorityOrder,
    in_order,
)
from arkwright.core.pass_state import PassState, PassStats
from arkwright.core.placement import placement_for
from arkwright.core.policy import PolicySpec
from arkwright.core.pool_choice import choose_pool
from arkwright.core.pool_state import Allocation, PoolState
from arkwright.core.preemption import Preemptor, checkpointed
from arkwright.core.queue import JobQueue
from arkwright.core.reservations import ReservationBook
from arkwright.core.running import RunningSet
from arkwright.core.shares import entitled_gpus, typical_speeds
from arkwright.core.throughput import ThroughputTable

# Re-exported for callers that imported it from here.
__all__ = ["Scheduler", "SchedulerConfig", "SubmissionError"]


class SubmissionError(ValueError):
    """A job the core refuses to accept at all (malformed, duplicate)."""


class Scheduler:
    def __init__(
        self,
        fleet: Fleet,
        policy: PolicySpec,
        throughput: ThroughputTable | None = None,
        config: SchedulerConfig | None = None,
    ) -> None:
        self.fleet = fleet
        self.policy = policy
        self.throughput = throughput or ThroughputTable.flat()
        self.config = config = config or SchedulerConfig()
        self.pool_states = [PoolState(p.nodes, p.gpus_per_node) for p in fleet.pools]
        self.eligibility = EligibilityIndex(fleet)
        self.queue = JobQueue()
        self.jobs: dict[str, Job] = {}  # pending and running
        self.runs = RunningSet(len(fleet.pools))
        self.usage_gpus = self.runs.usage_gpus
        self.weights: dict[str, float] = {t.name: t.weight for t in fleet.tenants}
        self.nominal_gpus: dict[str, float] = {}
        self.nominal_shares: dict[str, float] = {}
        self.cordoned_mask = 0
        self.ledger = BudgetLedger(dict(config.budgets)) if config.budgets else None
        self.stats = PassStats()
        self._all_mask = (1 << len(fleet.pools)) - 1
        self._dirty_mask = 0  # pools that gained free GPUs since the last pass
        self._new_mask = 0  # pools eligible for jobs that arrived since the last pass
        self._new_jobs: list[Job] = []
        self._seq = 0
        self._speed_rows: dict[str, list[float]] = {}
        # The stages, each chosen once from the policy.
        self.order = (
            FairShareOrder(self.usage_gpus, self.weights) if policy.fairshare else PriorityOrder()
        )
        self.placement = placement_for(
            policy.carbon,
            policy.hetero,
            typical_speeds(self.throughput, fleet.pools),
            config.hetero_min_speed_fraction,
        )
        self.reservations = ReservationBook(fleet, self.pool_states, self.runs, self.order.key)
        self.preemptor = Preemptor(self) if policy.preemption else None
        self.carbon = (
            CarbonDeferral(fleet, config.carbon_min_saving, config.carbon_lookahead_s)
            if policy.carbon
            else None
        )
        self.admission = Admission(self)
        # Jobs held outside the queue: waiting on other jobs, or on their array's throttle.
        self.holds = Holds(self)
        self._recompute_nominal()

    # ----------------------------------------------------------------- queries

    @property
    def pending(self) -> int:
        return len(self.queue)

    @property
    def running(self) -> int:
        return len(self.runs)

    @property
    def held(self) -> int:
        """Accepted jobs waiting outside the queue (dependencies, array throttles)."""
        return self.holds.count

    @property
    def running_by_end(self) -> list[list[Job]]:
        return self.runs.by_end

    def busy_gpus(self, pool: int) -> int:
        state = self.pool_states[pool]
        return state.total_gpus - state.free_gpus

    def speed_on(self, job: Job, pool: Pool) -> float:
        return self.speeds(job.job_type)[pool.index]

    def speeds(self, job_type: str) -> list[float]:
        """This job type's speed on each pool, by pool index (cached per type)."""
        row = self._speed_rows.get(job_type)
        if row is None:
            row = [self.throughput.speed(job_type, p.gpu_model) for p in self.fleet.pools]
            self._speed_rows[job_type] = row
        return row

    # ------------------------------------------------------------------ events

    def submit(
        self, job: Job, now: float, ended: Mapping[str, Ended] | None = None
    ) -> list[Decision]:
        """Accept a job into the queue (or hold it, waiting on other jobs or its array's
        throttle), or reject it with a reason. Starts nothing. `ended`: how jobs its
        dependency names ended, for those the core may no longer remember."""
        if job.job_id in self.jobs:
            raise SubmissionError(f"job {job.job_id!r} is already queued or running")
        if job.gpus <= 0:
            raise SubmissionError(f"job {job.job_id!r}: gpus must be positive, got {job.gpus}")
        if not job.duration_s > 0:
            raise SubmissionError(
                f"job {job.job_id!r}: duration must be positive, got {job.duration_s}"
            )
        cls = self._classify(job)
        job.eligibility_class = cls.index
        job.pool_mask = self.admission.usable_mask(job, cls)
        reason = self.admission.refusal(job, cls)
        if reason is not None:
            job.state = JobState.REJECTED
            return [Reject(job, reason, now)]
        self._know_tenant(job.tenant)
        job.seq = self._seq
        self._seq += 1
        job.state = JobState.PENDING
        self.jobs[job.job_id] = job
        return self.holds.arrived(job, now, ended)

    def admission_error(self, job: Job) -> str | None:
        """Why `submit` would reject this job, without changing anything (None: it would
        be accepted). The service asks first so that a refused job is never stored."""
        if job.job_id in self.jobs:
            return f"job {job.job_id!r} is already queued or running"
        cls = self._classify(job)
        probe = job.spec_copy()
        probe.pool_mask = self.admission.usable_mask(probe, cls)
        return self.admission.refusal(probe, cls)

    def estimate_start(self, job: Job, now: float) -> tuple[float | None, int | None]:
        """(earliest time, pool) the job could start: see `estimate.earliest_start`."""
        return earliest_start(self, job, now)

    def adopt(self, job: Job, pool_index: int, allocation: Allocation, started_at: float) -> None:
        """Take back a job that is already running (found again after a restart) on the
        exact nodes it holds. Refuses anything that would break eligibility or capacity."""
        if job.job_id in self.jobs:
            raise SubmissionError(f"job {job.job_id!r} is already known")
        cls = self._classify(job)
        if not cls.pool_mask >> pool_index & 1:
            raise SubmissionError(f"job {job.job_id!r} is not eligible for its recorded pool")
        self.pool_states[pool_index].take(allocation)
        job.eligibility_class = cls.index
        job.pool_mask = self.admission.usable_mask(job, cls)
        self._know_tenant(job.tenant)
        job.seq = self._seq
        self._seq += 1
        self.jobs[job.job_id] = job
        self.holds.adopted(job)
        self._mark_running(job, pool_index, allocation, started_at)

    def finish(self, job_id: str, now: float, succeeded: bool = True) -> Job:
        """A running job ended (completed, or failed / timed out when not `succeeded`):
        free its GPUs, and settle the jobs that wait on it."""
        job = self.jobs.pop(job_id)
        if job.state is not JobState.RUNNING:
            self.jobs[job_id] = job
            raise KeyError(f"job {job_id!r} is not running")
        self._release(job, now)
        job.work_done_s = job.duration_s
        job.state = JobState.COMPLETED
        self.holds.ended(job, Ended.OK if succeeded else Ended.FAILED, now, was_active=True)
        return job

    def cancel(self, job_id: str, now: float) -> Job:
        job = self.jobs.pop(job_id)
        # A job that was in the queue holds its array slot, even while it waits outside
        # it (a retry's backoff, a carbon wait); one held by its dependency or its array's
        # throttle never took one.
        was_active = job.held in ("", BEGIN_TIME, CARBON)
        if job.state is JobState.RUNNING:
            self._release(job, now)
        elif job.held:
            self.holds.release(job)
        else:
            self.queue.remove(job)
            self.reservations.drop(job)
        job.state = JobState.CANCELLED
        self.holds.ended(job, Ended.CANCELLED, now, was_active)
        return job

    def requeue(self, job_id: str, now: float) -> Job:
        """A running job was lost through no fault of its own: back to the queue.

        Work since its last checkpoint is lost; it keeps its place (submission order).
        """
        job = self.jobs[job_id]
        if job.state is not JobState.RUNNING:
            raise KeyError(f"job {job_id!r} is not running")
        self.stop_run(job, now)
        self._enqueue(job)
        return job

    def defer(self, job_id: str, now: float) -> Job:
        """Take a queued job out of the queue until `resume` (a driver's retry backoff).
        Unlike `cancel` it has not ended: jobs that wait on it go on waiting."""
        job = self.jobs[job_id]
        if job.state is not JobState.PENDING or job.held:
            raise KeyError(f"job {job_id!r} is not queued")
        self.queue.remove(job)
        self.reservations.drop(job)
        self.holds.defer(job, now)
        return job

    def resume(self, job_id: str) -> Job:
        job = self.jobs[job_id]
        if job.held != BEGIN_TIME:
            raise KeyError(f"job {job_id!r} is not deferred")
        self.holds.resume(job)
        return job

    def set_cordoned(self, pool: int, cordoned: bool) -> None:
        """A cordoned pool keeps its running jobs but starts nothing new."""
        bit = 1 << pool
        self.cordoned_mask = self.cordoned_mask | bit if cordoned else self.cordoned_mask & ~bit
        if not cordoned:
            self._dirty_mask |= bit

    def set_weight(self, tenant: str, weight: float) -> None:
        """A programme's share weight changed (or a programme was created): effective from
        the next pass."""
        if not weight > 0 or not math.isfinite(weight):
            raise ValueError(f"weight for {tenant!r} must be a positive number, got {weight}")
        self.weights[tenant] = weight
        self._recompute_nominal()
        self._dirty_mask = self._all_mask

    # --------------------------------------------------------------- the pass

    def schedule(self, now: float, full: bool = False) -> list[Decision]:
        """One scheduling pass. `full` reconsiders every queued job (the periodic tick);
        otherwise only jobs that new arrivals or freed GPUs could affect."""
        # 1. What changed since the last pass decides what this pass looks at.
        dirty = self._all_mask if full else self._dirty_mask
        trigger = dirty | self._new_mask
        if self.carbon is not None:
            self.holds.carbon_due(now)  # their wait is up: they come back as arrivals
        new_jobs = self._new_jobs
        self._dirty_mask = self._new_mask = 0
        self._new_jobs = []
        notices = self.holds.take_notices()
        if not self.queue.size or not trigger:
            return notices
        # 2. The pass's state: open pools, preemption budget.
        p = self._begin_pass(now, full, new_jobs)
        # 3. The candidates, in policy order.
        consider = ListFilter(self._all_mask if p.strict else trigger)
        if not p.may_preempt:
            consider.mask &= p.open_mask
        if dirty or p.strict:
            # Before the heap only where the skip can fire from the start: no preemption
            # can open pools, and no backfill claim is open (none is made yet).
            early = not (self.policy.backfill or p.strict or p.may_preempt)
            candidates = in_order(
                self.queue,
                self.order,
                self.eligibility.classes,
                consider,
                self._list_room(p),
                skip_before_heap=early,
            )
        else:
            # Nothing freed: only the arrivals can start (the rest did not fit before).
            candidates = iter(
                sorted((j for j in new_jobs if j.state is JobState.PENDING), key=self.order.key)
            )
        config = self.config
        per_tenant = config.max_jobs_per_tenant_per_pass
        classes = self.eligibility.classes
        for job in candidates:
            # 4. Bounds: stop the pass, or pass over a programme that had its turn.
            if p.examined >= config.max_jobs_per_pass:
                p.bound_hit = True
                break
            seen = p.examined_by_tenant.get(job.tenant, 0)
            if seen >= per_tenant:
                continue
            p.examined_by_tenant[job.tenant] = seen + 1
            p.examined += 1
            cls = classes[job.eligibility_class]
            # 5. Start it if it fits somewhere it may go.
            started = self._try_to_start(p, job, cls)
            if started is None:
                continue  # rejected over budget, or held
            if started:
                continue
            # 6. Strict order: a blocked job blocks its pools for everyone behind it.
            if p.strict:
                p.blocked_mask |= cls.pool_mask
                if p.blocked_mask & p.open_mask == p.open_mask:
                    break
                consider.mask &= ~p.blocked_mask
                continue
            # 7. Preempt for it, if the policy and the rules allow.
            if self.preemptor is not None and self.preemptor.preempt_in_pass(p, job, cls, consider):
                continue
            # 8. Backfill: the first blocked job per pool holds a reservation.
            if self.policy.backfill:
                held = self.reservations.pool_of.get(job.job_id)
                if held is not None:
                    p.claimed_mask |= 1 << held
                elif job.pool_mask & ~(p.claimed_mask | p.held_ahead_mask | self.cordoned_mask):
                    pool, held_ahead = self.reservations.reserve(
                        job, cls, p.claimed_mask | p.held_ahead_mask | self.cordoned_mask, now
                    )
                    p.held_ahead_mask |= held_ahead
                    if pool is not None:
                        p.claimed_mask |= 1 << pool
        # 9. Victims rejoin the queue only now, so the pass's list cursors stay valid.
        for victim in p.requeued:
            self._enqueue(victim)
        self.holds.pass_over(now)  # jobs that waited for a start (`after:`) join now
        notices += self.holds.take_notices()
        if p.bound_hit:
            self._dirty_mask |= trigger  # continue in the next pass
        self.stats.record(p)
        return notices + p.decisions if notices else p.decisions

    def _begin_pass(self, now: float, full: bool, new_jobs: list[Job]) -> PassState:
        open_mask = 0
        for i, state in enumerate(self.pool_states):
            if state.free_gpus:
                open_mask |= 1 << i
        p = PassState(now, full, open_mask & ~self.cordoned_mask, self.policy.strict)
        p.keys_dynamic = self.order.dynamic
        if self.preemptor is not None:
            attempts = self.config.max_preemption_attempts_per_pass
            p.preemption_attempts_left = attempts
            # Reclaim is retried on the periodic tick and tried for new arrivals; a pass
            # after a finish only hands out the GPUs that were freed.
            p.new_jobs = set(new_jobs) if attempts and not full else set()
            p.may_preempt = (
                attempts > 0 and (full or bool(p.new_jobs)) and self.runs.anyone_preemptible()
            )
        return p

    def _list_room(self, p: PassState):
        """What of a (programme, class) list could act in this pass (`ordering.in_order`
        asks when the list's head comes up). Nothing, when its programme has had its turn
        (the per-programme bound) or its smallest gang is larger than anything that fits
        on its class's open pools; otherwise, when no job of it could claim a reservation,
        preempt or be rejected, only jobs that fit in that room; else any job."""
        may_idle = not p.strict and not (
            self.ledger is not None and self.config.over_budget is OverBudget.REJECT
        )
        classes = self.eligibility.classes
        queue = self.queue
        backfill = self.policy.backfill
        stats = self.stats
        per_tenant = self.config.max_jobs_per_tenant_per_pass
        examined_by_tenant = p.examined_by_tenant
        cordoned = self.cordoned_mask

        def room(jobs: list[Job]) -> int:
            head = jobs[0]  # every job of a list has its programme and class
            if examined_by_tenant.get(head.tenant, 0) >= per_tenant:
                return SKIP_LIST
            if not may_idle or (p.may_preempt and p.preemption_attempts_left):
                return NO_LIMIT
            cls = classes[head.eligibility_class]
            if backfill and cls.pool_mask & ~(p.claimed_mask | p.held_ahead_mask | cordoned):
                return NO_LIMIT  # a job of it may still claim a reservation
            usable = cls.pool_mask & p.open_mask
            fit = self._fit(p, cls, usable) if usable else 0
            if queue.smallest_gang((head.tenant, head.eligibility_class)) <= fit:
                return fit
            stats.lists_skipped += 1
            return SKIP_LIST

        return room

    def _fit(self, p: PassState, cls: EligibilityClass, usable: int) -> int:
        fit = p.fit_by_mask.get(usable)
        if fit is None:
            fit = 0
            states = self.pool_states
            for i in cls.pools:
                if usable >> i & 1:
                    fit = max(fit, states[i].max_fit())
            p.fit_by_mask[usable] = fit
        return fit

    def _try_to_start(self, p: PassState, job: Job, cls: EligibilityClass) -> bool | None:
        """True: started. False: could not. None: rejected over budget, held for budget,
        or waiting for a cleaner hour."""
        usable = job.pool_mask & p.open_mask & ~p.blocked_mask
        if not usable:
            return False
        fit = self._fit(p, cls, usable)
        if self.ledger is not None and not self.ledger.ever_affordable(
            job,
            [self.fleet.pools[i] for i in cls.pools if job.pool_mask >> i & 1],
            self.speeds(job.job_type),
        ):
            if self.config.over_budget is OverBudget.REJECT:
                p.decisions.append(self._reject_queued(job, cls, p.now))
            return None
        if self.carbon is not None and job.flexible:
            # Waiting for a cleaner hour is the job's own begin time: it leaves the queue
            # until the answer can change, so it holds no reservation, preempts no one
            # and blocks no one (fifo) meanwhile, and costs later passes nothing.
            until = self.carbon.defer_until(job, cls, self.speeds(job.job_type), p.now)
            if until is not None:
                self.queue.remove(job)
                self.reservations.drop(job)
                self.holds.carbon_wait(job, until, p.now)
                return None
            self.holds.carbon_over(job, p.now)
        if job.fit_size > fit:
            return False
        pool_index = choose_pool(self, job, cls, usable, p.now)
        if pool_index is None:
            return False
        p.decisions.append(self.start_on(job, pool_index, p.now))
        if not self.pool_states[pool_index].free_gpus:
            p.open_mask &= ~(1 << pool_index)
        p.gpus_moved()
        return True

    def _reject_queued(self, job: Job, cls: EligibilityClass, now: float) -> Reject:
        reason = self.admission.never_affordable_reason(job, cls) or "over budget"
        self.queue.remove(job)
        self.reservations.drop(job)
        del self.jobs[job.job_id]
        job.state = JobState.REJECTED
        self.holds.ended(job, Ended.FAILED, now, was_active=True)
        return Reject(job, reason, now)

    def _enqueue(self, job: Job) -> None:
        self.queue.add(job)
        self._new_jobs.append(job)
        self._new_mask |= self.eligibility.classes[job.eligibility_class].pool_mask

    # --------------------------------------------------------------- placement

    def start_on(self, job: Job, pool_index: int, now: float) -> Start:
        """Start a queued job on this pool now (it fits: the caller checked)."""
        pool = self.fleet.pools[pool_index]
        if not (self.eligibility.classes[job.eligibility_class].pool_mask >> pool_index & 1):
            raise AssertionError(f"job {job.job_id} is not eligible for pool {pool.name}")
        state = self.pool_states[pool_index]
        allocation = state.allocate_gang(shape_on(job, state.gpus_per_node))
        if allocation is None:
            raise AssertionError(f"job {job.job_id} does not fit pool {pool.name}")
        self.reservations.job_started(job, pool_index, self.speed_on(job, pool), now)
        self.queue.remove(job)
        job.attempts += 1
        self._mark_running(job, pool_index, allocation, now)
        self.holds.started(job)
        return Start(job, pool_index, allocation, now)

    def _mark_running(
        self, job: Job, pool_index: int, allocation: Allocation, started_at: float
    ) -> None:
        pool = self.fleet.pools[pool_index]
        if self.preemptor is not None:
            self.preemptor.history.advance(started_at, self.usage_gpus)
        self.runs.mark_running(job, pool_index, allocation, self.speed_on(job, pool), started_at)
        self.reservations.job_running(job)
        if self.ledger is not None:
            self.ledger.started(job, pool)

    def _release(self, job: Job, now: float) -> None:
        pool_index = job.pool_index
        if self.preemptor is not None:
            self.preemptor.history.advance(now, self.usage_gpus)
        if self.ledger is not None:
            self.ledger.stopped(job, self.fleet.pools[pool_index], now - job.started_at)
        self.pool_states[pool_index].release(job.allocation)
        self.reservations.gpus_freed(job)
        self.runs.release(job)
        self._dirty_mask |= 1 << pool_index

    def stop_run(self, job: Job, now: float) -> float:
        """Stop a running job, keep its checkpointed work, and mark it pending again.
        The caller puts it back in the queue. Returns the work lost."""
        done = (now - job.started_at) * job.speed
        saved = checkpointed(job, done)
        self._release(job, now)
        job.work_done_s = min(job.work_done_s + saved, job.duration_s)
        job.state = JobState.PENDING
        job.pool_index = -1
        return done - saved

    # ---------------------------------------------------------------- tenants

    def _classify(self, job: Job) -> EligibilityClass:
        return self.eligibility.classify(
            job.tenant, job.data_policy, job.gpu_types, job.sites, job.pools
        )

    def _know_tenant(self, tenant: str) -> None:
        if tenant not in self.weights:
            self.weights[tenant] = self.fleet.tenant(tenant).weight
            self._recompute_nominal()

    def _recompute_nominal(self) -> None:
        """Each programme's entitled GPUs: the fleet split by weight (shares.py holds the one
        definition, which the service's views use too)."""
        total = self.fleet.total_gpus  # a sum over pools: not per query
        self.nominal_gpus = entitled_gpus(self.weights, total)
        # Entitled fraction of the fleet, asked by every reclaim check.
        self.nominal_shares = {name: gpus / total for name, gpus in self.nominal_gpus.items()}

    def check_invariants(self) -> None:
        """Full audit of GPU accounting and eligibility (tests; O(fleet + jobs))."""
        check_invariants(self)

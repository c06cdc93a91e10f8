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
from arkwright.core.budget import BudgetLedger
from arkwright.core.carbon import CarbonDeferral
from arkwright.core.config import SchedulerConfig
from arkwright.core.decisions import Decision, Reject, Start
from arkwright.core.dependencies import Ended
from arkwright.core.eligibility import EligibilityClass, EligibilityIndex
from arkwright.core.errors import SubmissionError
from arkwright.core.estimate import earliest_start
from arkwright.core.fleet import Fleet, Pool
from arkwright.core.gang import shape_on
from arkwright.core.holds import BEGIN_TIME, CARBON, Holds
from arkwright.core.job import Job, JobState
from arkwright.core.ordering import FairShareOrder, PriorityOrder, QueueOrder
from arkwright.core.pass_run import run_pass
from arkwright.core.pass_state import PassStats
from arkwright.core.placement import placement_for
from arkwright.core.policy import PolicySpec
from arkwright.core.pool_state import Allocation, PoolState
from arkwright.core.preemption import Preemptor, checkpointed
from arkwright.core.queue import JobQueue
from arkwright.core.reservations import ReservationBook
from arkwright.core.running import RunningSet
from arkwright.core.shares import entitled_gpus, typical_speeds
from arkwright.core.throughput import ThroughputTable

# Re-exported for callers that imported it from here.
__all__ = ["Scheduler", "SchedulerConfig", "SubmissionError"]


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
        # The policy's two flags a pass reads at every job it examines, copied here: the
        # compiled core reads its own attributes natively, `PolicySpec`'s (interpreted:
        # core/policy.py) through Python's attribute lookup.
        self.backfill = policy.backfill
        self.strict = policy.strict
        self.all_pools_mask = (1 << len(fleet.pools)) - 1
        self._dirty_mask = 0  # pools that gained free GPUs since the last pass
        self._new_mask = 0  # pools eligible for jobs that arrived since the last pass
        self._new_jobs: list[Job] = []
        self._seq = 0
        self._speed_rows: dict[str, list[float]] = {}
        self._fastest = [1e-9] * len(fleet.pools)  # `fastest_on`: never zero, it divides
        # The stages, each chosen once from the policy.
        self.order: QueueOrder = (
            FairShareOrder(self.usage_gpus, self.weights) if policy.fairshare else PriorityOrder()
        )
        self.placement = placement_for(
            policy.carbon,
            policy.hetero,
            typical_speeds(self.throughput, fleet.pools),
            config.hetero_min_speed_fraction,
        )
        self.reservations = ReservationBook(fleet, self.pool_states, self.runs, self.order)
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
            self._fastest = [max(a, b) for a, b in zip(self._fastest, row, strict=True)]
        return row

    def fastest_on(self, pool_index: int) -> float:
        """The best speed on this pool of any job type seen (every queued job's is: `submit`
        asks for its row): a bound on how soon a waiting job could end there."""
        return self._fastest[pool_index]

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
        self.speeds(job.job_type)  # known before it can wait: `fastest_on`
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
        self.speeds(job.job_type)  # a requeued job waits: `fastest_on`
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
        self._dirty_mask = self.all_pools_mask

    # --------------------------------------------------------------- the pass

    def take_changes(self, full: bool) -> tuple[int, int, list[Job]]:
        """What changed since the last pass, forgotten as it is handed over: (pools that
        gained free GPUs, every pool on a full pass; pools the arrivals may use; the
        arrivals, re-queued victims and released holds among them)."""
        dirty = self.all_pools_mask if full else self._dirty_mask
        changes = (dirty, self._new_mask, self._new_jobs)
        self._dirty_mask = self._new_mask = 0
        self._new_jobs = []
        return changes

    def carry_over(self, pools_mask: int) -> None:
        """A pass stopped at its bound: the next one looks at these pools again."""
        self._dirty_mask |= pools_mask

    def schedule(self, now: float, full: bool = False) -> list[Decision]:
        """One scheduling pass (`pass_run.run_pass`, in numbered steps). `full`
        reconsiders every queued job (the periodic tick); otherwise only jobs that new
        arrivals or freed GPUs could affect."""
        return run_pass(self, now, full)

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
            self.preemptor.history.advance(started_at, job.tenant)
        self.runs.mark_running(job, pool_index, allocation, self.speed_on(job, pool), started_at)
        self.reservations.job_running(job)
        if self.ledger is not None:
            self.ledger.started(job, pool)

    def _release(self, job: Job, now: float) -> None:
        pool_index = job.pool_index
        if self.preemptor is not None:
            self.preemptor.history.advance(now, job.tenant)
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

"""The scheduler core: events in, decisions out. Pure and deterministic.

The driver feeds it `submit`, `finish`, `cancel` and `requeue` events, then calls
`schedule(now)` once per instant to get the decisions to carry out. The core applies its
own decisions to its state (GPUs are taken when it says Start), so the driver only has to
execute them and report back.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass, field

from arkwright.core.budget import Budget, BudgetLedger, OverBudget
from arkwright.core.decisions import Decision, Preempt, Reject, Start
from arkwright.core.eligibility import EligibilityClass, EligibilityIndex
from arkwright.core.fleet import Fleet, Pool
from arkwright.core.job import Job, JobState, PriorityClass
from arkwright.core.placement import carbon_score, hetero_score, pack_score
from arkwright.core.policy import PolicySpec
from arkwright.core.pool_state import Allocation, PoolState
from arkwright.core.queue import JobQueue
from arkwright.core.throughput import ThroughputTable


class SubmissionError(ValueError):
    """A job the core refuses to accept at all (malformed, duplicate)."""


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    # Preemption searches are the costly part of a pass; bound them per pass.
    max_preemption_attempts_per_pass: int = 4
    # Carbon policy: defer a flexible job while waiting could cut its site's intensity by
    # at least this fraction within its slack.
    carbon_min_saving: float = 0.15
    carbon_lookahead_s: float = 24 * 3600.0
    # Hetero: don't start on a pool slower than this fraction of the job's best eligible
    # speed, unless the job has already waited as long as it would run on the best one.
    hetero_min_speed_fraction: float = 0.5
    budgets: dict[str, Budget] = field(default_factory=dict)
    over_budget: OverBudget = OverBudget.HOLD


@dataclass(slots=True)
class Reservation:
    """EASY backfill: the pool is promised to `holder` from `shadow_time` on."""

    holder: Job
    pool: int
    shadow_time: float
    spare_nodes: int  # nodes suitable for the holder at shadow time that it won't need
    stale: bool = False


def _end_key(job: Job) -> tuple[float, int]:
    return (job.expected_end, job.seq)


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
        self.config = config or SchedulerConfig()
        self.pool_states = [PoolState(p.nodes, p.gpus_per_node) for p in fleet.pools]
        self.eligibility = EligibilityIndex(fleet)
        self.queue = JobQueue()
        self.jobs: dict[str, Job] = {}  # pending and running
        self.running_by_end: list[list[Job]] = [[] for _ in fleet.pools]
        self.usage_gpus: dict[str, int] = {}
        self.weights: dict[str, float] = {t.name: t.weight for t in fleet.tenants}
        self.nominal_gpus: dict[str, float] = {}
        self.reservations: dict[int, Reservation] = {}
        self.reserved_pool_of: dict[str, int] = {}
        self.preemptible_running_by_priority = [0] * len(PriorityClass)
        self.cordoned_mask = 0
        self._all_mask = (1 << len(fleet.pools)) - 1
        self._dirty_mask = 0  # pools that gained free GPUs since the last pass
        self._new_mask = 0  # pools eligible for jobs that arrived since the last pass
        self._new_jobs: list[Job] = []
        self._seq = 0
        self._speed_rows: dict[str, list[float]] = {}
        self._carbon_memo: dict[tuple[int, int], bool] = {}
        self._carbon_memo_hour = -1
        self._duration_limits = [p.site.max_job_duration_s for p in fleet.pools]
        self.ledger = BudgetLedger(dict(self.config.budgets)) if self.config.budgets else None
        self._typical_speed = self._typical_speeds()
        self._limited_mask = sum(
            1 << i for i, limit in enumerate(self._duration_limits) if limit is not None
        )
        self._recompute_nominal()

    # ----------------------------------------------------------------- queries

    @property
    def pending(self) -> int:
        return len(self.queue)

    @property
    def running(self) -> int:
        return sum(len(r) for r in self.running_by_end)

    def busy_gpus(self, pool: int) -> int:
        state = self.pool_states[pool]
        return state.total_gpus - state.free_gpus

    def speed_on(self, job: Job, pool: Pool) -> float:
        return self._speeds(job.job_type)[pool.index]

    def _speeds(self, job_type: str) -> list[float]:
        """This job type's speed on each pool, by pool index (cached per type)."""
        row = self._speed_rows.get(job_type)
        if row is None:
            row = [self.throughput.speed(job_type, p.gpu_model) for p in self.fleet.pools]
            self._speed_rows[job_type] = row
        return row

    # ------------------------------------------------------------------ events

    def submit(self, job: Job, now: float) -> list[Decision]:
        """Accept a job into the queue, or reject it with a reason. Starts nothing."""
        if job.job_id in self.jobs:
            raise SubmissionError(f"job {job.job_id!r} is already queued or running")
        if job.gpus <= 0:
            raise SubmissionError(f"job {job.job_id!r}: gpus must be positive, got {job.gpus}")
        if not job.duration_s > 0:
            raise SubmissionError(
                f"job {job.job_id!r}: duration must be positive, got {job.duration_s}"
            )
        cls = self.eligibility.classify(job.tenant, job.data_policy, job.gpu_types, job.sites)
        job.eligibility_class = cls.index
        job.pool_mask = self._usable_mask(job, cls)
        reason = self._never_fits_reason(job, cls) or self._never_affordable_reason(job, cls)
        if reason is not None:
            job.state = JobState.REJECTED
            return [Reject(job, reason, now)]
        if job.tenant not in self.weights:
            self.weights[job.tenant] = self.fleet.tenant(job.tenant).weight
            self._recompute_nominal()
        job.seq = self._seq
        self._seq += 1
        job.state = JobState.PENDING
        self.jobs[job.job_id] = job
        self._enqueue(job)
        return []

    def admission_error(self, job: Job) -> str | None:
        """Why `submit` would reject this job, without changing anything (None: it would
        be accepted). The service asks first so that a refused job is never stored."""
        if job.job_id in self.jobs:
            return f"job {job.job_id!r} is already queued or running"
        cls = self.eligibility.classify(job.tenant, job.data_policy, job.gpu_types, job.sites)
        probe = job.spec_copy()
        probe.pool_mask = self._usable_mask(probe, cls)
        return self._never_fits_reason(probe, cls) or self._never_affordable_reason(probe, cls)

    def adopt(self, job: Job, pool_index: int, allocation: Allocation, started_at: float) -> None:
        """Take back a job that is already running (found again after a restart) on the
        exact nodes it holds. Refuses anything that would break eligibility or capacity."""
        if job.job_id in self.jobs:
            raise SubmissionError(f"job {job.job_id!r} is already known")
        cls = self.eligibility.classify(job.tenant, job.data_policy, job.gpu_types, job.sites)
        if not cls.pool_mask >> pool_index & 1:
            raise SubmissionError(f"job {job.job_id!r} is not eligible for its recorded pool")
        self.pool_states[pool_index].take(allocation)
        job.eligibility_class = cls.index
        job.pool_mask = self._usable_mask(job, cls)
        if job.tenant not in self.weights:
            self.weights[job.tenant] = self.fleet.tenant(job.tenant).weight
            self._recompute_nominal()
        job.seq = self._seq
        self._seq += 1
        self.jobs[job.job_id] = job
        self._mark_running(job, pool_index, allocation, started_at)

    def finish(self, job_id: str, now: float) -> Job:
        """A running job ended (completed, failed or timed out): free its GPUs."""
        job = self.jobs.pop(job_id)
        if job.state is not JobState.RUNNING:
            self.jobs[job_id] = job
            raise KeyError(f"job {job_id!r} is not running")
        self._release(job, now)
        job.work_done_s = job.duration_s
        job.state = JobState.COMPLETED
        return job

    def cancel(self, job_id: str, now: float) -> Job:
        job = self.jobs.pop(job_id)
        if job.state is JobState.RUNNING:
            self._release(job, now)
        else:
            self.queue.remove(job)
            self._drop_reservation(job)
        job.state = JobState.CANCELLED
        return job

    def requeue(self, job_id: str, now: float) -> Job:
        """A running job was lost through no fault of its own: back to the queue.

        Work since its last checkpoint is lost; it keeps its place (submission order).
        """
        job = self.jobs[job_id]
        if job.state is not JobState.RUNNING:
            raise KeyError(f"job {job_id!r} is not running")
        self._stop(job, now)
        self._enqueue(job)
        return job

    def set_cordoned(self, pool: int, cordoned: bool) -> None:
        """A cordoned pool keeps its running jobs but starts nothing new."""
        bit = 1 << pool
        self.cordoned_mask = self.cordoned_mask | bit if cordoned else self.cordoned_mask & ~bit
        if not cordoned:
            self._dirty_mask |= bit

    # --------------------------------------------------------------- the pass

    def schedule(self, now: float, full: bool = False) -> list[Decision]:
        """One scheduling pass. `full` reconsiders every queued job (the periodic tick);
        otherwise only jobs that new arrivals or freed GPUs could affect."""
        decisions: list[Decision] = []
        dirty = self._all_mask if full else self._dirty_mask
        trigger = dirty | self._new_mask
        new_jobs = self._new_jobs
        self._dirty_mask = 0
        self._new_mask = 0
        self._new_jobs = []
        if not self.queue.size or not trigger:
            return decisions
        policy = self.policy
        open_mask = 0
        for i, state in enumerate(self.pool_states):
            if state.free_gpus:
                open_mask |= 1 << i
        open_mask &= ~self.cordoned_mask
        attempts_left = self.config.max_preemption_attempts_per_pass if policy.preemption else 0
        # Reclaim is retried on the periodic tick and tried for new arrivals; a pass
        # after a finish only hands out the GPUs that were freed.
        new_set = set(new_jobs) if attempts_left and not full else set()
        may_preempt = attempts_left > 0 and (full or bool(new_set)) and self._anyone_preemptible()
        failed_searches: dict[tuple[int, int], int] = {}
        blocked_mask = 0
        claimed_mask = 0  # pools whose reservation belongs to a job already seen this pass
        classes = self.eligibility.classes
        class_fit: dict[int, int] = {}
        requeued: list[Job] = []
        # Strict FIFO must see every job in order to know what is blocked. Otherwise, when
        # no GPUs were freed, only the new arrivals can start: the rest did not fit before.
        list_filter = [self._all_mask if policy.strict else trigger]
        if not may_preempt:
            list_filter[0] &= open_mask
        if dirty or policy.strict:
            ordered: Iterator[Job] | list[Job] = self._in_order(list_filter)
        else:
            ordered = sorted(
                (j for j in new_jobs if j.state is JobState.PENDING), key=self._order_key
            )

        for job in ordered:
            cls = classes[job.eligibility_class]
            usable = job.pool_mask & open_mask & ~blocked_mask
            started = False
            if usable:
                fit = class_fit.get(usable)
                if fit is None:
                    fit = self._max_fit(cls, usable)
                    class_fit[usable] = fit
                if self.ledger is not None and not self.ledger.ever_affordable(
                    job,
                    [self.fleet.pools[i] for i in cls.pools if job.pool_mask >> i & 1],
                    self._speeds(job.job_type),
                ):
                    if self.config.over_budget is OverBudget.REJECT:
                        decisions.append(self._reject_queued(job, cls, now))
                    continue
                if job.gpus <= fit and not (
                    policy.carbon and job.flexible and self._defer_for_carbon(job, cls, now)
                ):
                    start = self._try_start(job, cls, usable, now)
                    if start is not None:
                        decisions.append(start)
                        started = True
                        if not self.pool_states[start.pool].free_gpus:
                            open_mask &= ~(1 << start.pool)
                        class_fit.clear()
            if started:
                continue
            if policy.strict:
                blocked_mask |= cls.pool_mask
                if blocked_mask & open_mask == open_mask:
                    break
                list_filter[0] &= ~blocked_mask
                continue
            if (
                may_preempt
                and attempts_left
                and (full or job in new_set)
                and self._may_preempt_for(job, failed_searches)
            ):
                attempts_left -= 1
                if not attempts_left:
                    list_filter[0] &= open_mask
                preempted = self._preempt_for(job, cls, now, requeued)
                if not preempted:
                    failed_searches[(cls.index, job.priority)] = min(
                        job.gpus, failed_searches.get((cls.index, job.priority), job.gpus)
                    )
                if preempted:
                    decisions.extend(preempted)
                    start = self._start(job, preempted[0].pool, now)
                    decisions.append(start)
                    for i in cls.pools:
                        if self.pool_states[i].free_gpus:
                            open_mask |= 1 << i
                    class_fit.clear()
                    continue
            if policy.backfill:
                held = self.reserved_pool_of.get(job.job_id)
                if held is not None:
                    claimed_mask |= 1 << held
                elif job.pool_mask & ~claimed_mask:
                    pool = self._reserve(job, cls, claimed_mask, now)
                    if pool is not None:
                        claimed_mask |= 1 << pool
        # Victims rejoin the queue only now, so the pass's list cursors stay valid.
        for victim in requeued:
            self._enqueue(victim)
        return decisions

    def _reject_queued(self, job: Job, cls: EligibilityClass, now: float) -> Reject:
        reason = self._never_affordable_reason(job, cls) or "over budget"
        self.queue.remove(job)
        self._drop_reservation(job)
        del self.jobs[job.job_id]
        job.state = JobState.REJECTED
        return Reject(job, reason, now)

    def _enqueue(self, job: Job) -> None:
        self.queue.add(job)
        self._new_jobs.append(job)
        self._new_mask |= self.eligibility.classes[job.eligibility_class].pool_mask

    def _in_order(self, list_filter: list[int]) -> Iterator[Job]:
        """Queued jobs in policy order, skipping whole lists whose pools aren't considered.

        Fair share orders programmes by current GPUs per unit of weight; a programme's
        key only grows during a pass (it only starts jobs), so stale heap keys are
        refreshed lazily when popped.
        """
        fairshare = self.policy.fairshare
        usage, weights = self.usage_gpus, self.weights
        classes = self.eligibility.classes
        heap: list[tuple[tuple, int, list[Job], int]] = []
        consider_mask = list_filter[0]
        for n, ((tenant, cls_index), jobs) in enumerate(self.queue.lists.items()):
            if jobs and classes[cls_index].pool_mask & consider_mask:
                share = usage.get(tenant, 0) / weights[tenant] if fairshare else 0.0
                head = jobs[0]
                heap.append(((-head.priority, share, head.submit_time, head.seq), n, jobs, 0))
        heapq.heapify(heap)
        while heap:
            key, n, jobs, i = heapq.heappop(heap)
            if i >= len(jobs):
                continue
            job = jobs[i]
            if not classes[job.eligibility_class].pool_mask & list_filter[0]:
                continue
            if fairshare:
                share = usage.get(job.tenant, 0) / weights[job.tenant]
                fresh = (-job.priority, share, job.submit_time, job.seq)
                if fresh > key:
                    heapq.heappush(heap, (fresh, n, jobs, i))
                    continue
            yield job
            # A started job has left its list, so the same index now holds the next one.
            nxt = i if job.state is not JobState.PENDING else i + 1
            if nxt < len(jobs):
                head = jobs[nxt]
                share = usage.get(head.tenant, 0) / weights[head.tenant] if fairshare else 0.0
                heapq.heappush(
                    heap, ((-head.priority, share, head.submit_time, head.seq), n, jobs, nxt)
                )

    # --------------------------------------------------------------- placement

    def _max_fit(self, cls: EligibilityClass, usable: int) -> int:
        best = 0
        for i in cls.pools:
            if usable >> i & 1:
                best = max(best, self.pool_states[i].max_fit())
        return best

    def _try_start(self, job: Job, cls: EligibilityClass, usable: int, now: float) -> Start | None:
        pool_index = self._choose_pool(job, cls, usable, now)
        if pool_index is None:
            return None
        return self._start(job, pool_index, now)

    def _choose_pool(self, job: Job, cls: EligibilityClass, usable: int, now: float) -> int | None:
        """The eligible pool to start on now, or None. Eligibility is re-checked here."""
        best: tuple | None = None
        best_pool: int | None = None
        pools = self.fleet.pools
        policy = self.policy
        speeds = self._speeds(job.job_type)
        reservations = self.reservations
        ledger = self.ledger
        slowest_allowed = 0.0
        if policy.hetero:
            best_speed = max(speeds[i] for i in cls.pools if job.pool_mask >> i & 1)
            waited = now - job.submit_time
            if waited < (job.requested_s - job.work_done_s) / best_speed:
                slowest_allowed = best_speed * self.config.hetero_min_speed_fraction
        for i in cls.pools:
            if not usable >> i & 1:
                continue
            state = self.pool_states[i]
            if not state.fits(job.gpus):
                continue
            pool = pools[i]
            speed = speeds[i]
            if speed < slowest_allowed:
                continue
            reservation = reservations.get(i) if reservations else None
            if (
                reservation is not None
                and reservation.holder is not job
                and not self._backfill_allowed(job, reservation, pool, speed, now)
            ):
                continue
            if ledger is not None and not ledger.affordable_now(job, pool, speed):
                continue
            if policy.carbon:
                score = carbon_score(pool, speed, now)
            elif policy.hetero:
                score = hetero_score(pool, state, speed, self._typical_speed[i], job.gpus)
            else:
                score = pack_score(pool, state)
            if best is None or score < best:
                best, best_pool = score, i
        return best_pool

    def _start(self, job: Job, pool_index: int, now: float) -> Start:
        pool = self.fleet.pools[pool_index]
        if not (self.eligibility.classes[job.eligibility_class].pool_mask >> pool_index & 1):
            raise AssertionError(f"job {job.job_id} is not eligible for pool {pool.name}")
        allocation = self.pool_states[pool_index].allocate(job.gpus)
        if allocation is None:
            raise AssertionError(f"job {job.job_id} does not fit pool {pool.name}")
        self._consume_reservation(job, pool_index, now)
        self.queue.remove(job)
        job.attempts += 1
        self._mark_running(job, pool_index, allocation, now)
        return Start(job, pool_index, allocation, now)

    def _mark_running(
        self, job: Job, pool_index: int, allocation: Allocation, started_at: float
    ) -> None:
        """Book a job as running on GPUs already taken for it."""
        pool = self.fleet.pools[pool_index]
        job.state = JobState.RUNNING
        job.pool_index = pool_index
        job.allocation = allocation
        job.allocated_gpus = sum(g for _, g in allocation)
        job.speed = self.speed_on(job, pool)
        job.started_at = started_at
        if job.first_started_at < 0:
            job.first_started_at = started_at
        job.expected_end = started_at + max(job.requested_s - job.work_done_s, 0.0) / job.speed
        insort(self.running_by_end[pool_index], job, key=_end_key)
        self.usage_gpus[job.tenant] = self.usage_gpus.get(job.tenant, 0) + job.allocated_gpus
        if job.preemptible:
            self.preemptible_running_by_priority[job.priority] += 1
        if self.ledger is not None:
            self.ledger.started(job, pool)

    def _release(self, job: Job, now: float) -> None:
        pool_index = job.pool_index
        if self.ledger is not None:
            self.ledger.stopped(job, self.fleet.pools[pool_index], now - job.started_at)
        self.pool_states[pool_index].release(job.allocation)
        running = self.running_by_end[pool_index]
        i = bisect_left(running, _end_key(job), key=_end_key)
        if i >= len(running) or running[i] is not job:
            raise AssertionError(f"job {job.job_id} missing from pool {pool_index} run list")
        del running[i]
        self.usage_gpus[job.tenant] -= job.allocated_gpus
        if job.preemptible:
            self.preemptible_running_by_priority[job.priority] -= 1
        job.allocation = ()
        job.allocated_gpus = 0
        self._dirty_mask |= 1 << pool_index
        reservation = self.reservations.get(pool_index)
        if reservation is not None:
            reservation.stale = True

    def _never_fits_reason(self, job: Job, cls: EligibilityClass) -> str | None:
        if not cls.pools:
            return self.eligibility.explain_none(
                job.tenant, job.data_policy, job.gpu_types, job.sites
            )
        pools = [self.fleet.pools[i] for i in cls.pools]
        if not any(p.allocated_gpus(job.gpus) <= p.gpus for p in pools):
            largest = max(pools, key=lambda p: p.gpus)
            return (
                f"asks for {job.gpus} GPUs; the largest eligible pool ({largest.name}) "
                f"has {largest.gpus}"
            )
        if not job.pool_mask:
            return f"asks for {job.requested_s:.0f} s; every eligible site's limit is shorter"
        return None

    def _never_affordable_reason(self, job: Job, cls: EligibilityClass) -> str | None:
        ledger = self.ledger
        if ledger is None or self.config.over_budget is not OverBudget.REJECT:
            return None
        pools = [self.fleet.pools[i] for i in cls.pools if job.pool_mask >> i & 1]
        if ledger.ever_affordable(job, pools, self._speeds(job.job_type)):
            return None
        budget = ledger.budgets[job.tenant]
        cheapest = min(
            ledger.most_it_could_cost(job, p, self._speeds(job.job_type)[p.index]) for p in pools
        )
        return (
            f"over budget: programme {job.tenant} has "
            f"{budget.label(budget.limit - ledger.spent[job.tenant])} left of "
            f"{budget.label(budget.limit)}; this job needs up to {budget.label(cheapest)}"
        )

    def _typical_speeds(self) -> list[float]:
        """Each pool's geometric-mean speed across the table's job types (1.0 if flat)."""
        job_types = list(self.throughput.speeds) or ["default"]
        typical = []
        for pool in self.fleet.pools:
            logs = [math.log(self.throughput.speed(jt, pool.gpu_model)) for jt in job_types]
            typical.append(math.exp(sum(logs) / len(logs)))
        return typical

    def _usable_mask(self, job: Job, cls: EligibilityClass) -> int:
        """The class's pools less those whose site wall-time limit is below the request."""
        mask = cls.pool_mask
        if not self._limited_mask & mask:
            return mask
        speeds = self._speeds(job.job_type)
        for i in cls.pools:
            limit = self._duration_limits[i]
            if limit is not None and job.requested_s / speeds[i] > limit:
                mask &= ~(1 << i)
        return mask

    # ------------------------------------------------------------------ backfill

    def _backfill_allowed(
        self, job: Job, reservation: Reservation, pool: Pool, speed: float, now: float
    ) -> bool:
        holder = reservation.holder
        if self._order_key(job) < self._order_key(holder):
            return True  # the reservation belongs to a job behind this one
        if reservation.stale:
            self._refresh(reservation, now)
        end = now + max(job.requested_s - job.work_done_s, 0.0) / speed
        if end <= reservation.shadow_time:
            return True
        return self._nodes_consumed(job, pool) <= reservation.spare_nodes

    def _nodes_consumed(self, job: Job, pool: Pool) -> int:
        # Conservative: a single-node job may land on a node the holder counts on.
        return pool.nodes_for(job.gpus)

    def _consume_reservation(self, job: Job, pool_index: int, now: float) -> None:
        self._drop_reservation(job)
        reservation = self.reservations.get(pool_index)
        if reservation is None:
            return
        pool = self.fleet.pools[pool_index]
        end = now + max(job.requested_s - job.work_done_s, 0.0) / self.speed_on(job, pool)
        if self._order_key(job) < self._order_key(reservation.holder):
            reservation.stale = True  # a job ahead of the holder took GPUs: replan
        elif end > reservation.shadow_time:
            reservation.spare_nodes -= self._nodes_consumed(job, pool)

    def _drop_reservation(self, job: Job) -> None:
        pool_index = self.reserved_pool_of.pop(job.job_id, None)
        if pool_index is not None:
            del self.reservations[pool_index]

    def _reserve(
        self, job: Job, cls: EligibilityClass, claimed_mask: int, now: float
    ) -> int | None:
        """Give a blocked job the earliest reservation among pools it may claim."""
        best: Reservation | None = None
        key = self._order_key(job)
        for i in cls.pools:
            if (claimed_mask | self.cordoned_mask) >> i & 1 or not job.pool_mask >> i & 1:
                continue
            pool = self.fleet.pools[i]
            if pool.allocated_gpus(job.gpus) > pool.gpus:
                continue
            current = self.reservations.get(i)
            if current is not None and self._order_key(current.holder) < key:
                continue
            candidate = self._plan_reservation(job, i, now)
            if best is None or candidate.shadow_time < best.shadow_time:
                best = candidate
        if best is None:
            return None
        displaced = self.reservations.get(best.pool)
        if displaced is not None:
            self.reserved_pool_of.pop(displaced.holder.job_id, None)
        self.reservations[best.pool] = best
        self.reserved_pool_of[job.job_id] = best.pool
        return best.pool

    def _refresh(self, reservation: Reservation, now: float) -> None:
        fresh = self._plan_reservation(reservation.holder, reservation.pool, now)
        reservation.shadow_time = fresh.shadow_time
        reservation.spare_nodes = fresh.spare_nodes
        reservation.stale = False

    def _plan_reservation(self, job: Job, pool_index: int, now: float) -> Reservation:
        """When could `job` start on this pool if running jobs end at their time limits?"""
        state = self.pool_states[pool_index]
        gpn = state.gpus_per_node
        if job.gpus <= gpn:
            threshold, need = job.gpus, 1
            suitable = sum(len(state.nodes_by_free[k]) for k in range(threshold, gpn + 1))
        else:
            threshold, need = gpn, -(-job.gpus // gpn)
            suitable = len(state.nodes_by_free[gpn])
        shadow = now
        if suitable < need:
            shadow = math.inf
            freed: dict[int, int] = {}
            node_free = state.node_free
            for running in self.running_by_end[pool_index]:
                for node, gpus in running.allocation:
                    before = freed.get(node, node_free[node])
                    freed[node] = before + gpus
                    if before < threshold <= before + gpus:
                        suitable += 1
                if suitable >= need:
                    shadow = max(running.expected_end, now)
                    break
        return Reservation(job, pool_index, shadow, max(suitable - need, 0))

    # ---------------------------------------------------------------- fair share

    def _recompute_nominal(self) -> None:
        total_weight = sum(self.weights.values()) or 1.0
        total_gpus = self.fleet.total_gpus
        self.nominal_gpus = {
            name: total_gpus * weight / total_weight for name, weight in self.weights.items()
        }

    def _order_key(self, job: Job) -> tuple:
        share = (
            self.usage_gpus.get(job.tenant, 0) / self.weights[job.tenant]
            if self.policy.fairshare
            else 0.0
        )
        return (-job.priority, share, job.submit_time, job.seq)

    def _anyone_preemptible(self) -> bool:
        return any(self.preemptible_running_by_priority)

    def _entitled(self, job: Job) -> bool:
        use = self.usage_gpus.get(job.tenant, 0)
        return use + job.gpus <= self.nominal_gpus[job.tenant]

    def _may_preempt_for(self, job: Job, failed: dict[tuple[int, int], int]) -> bool:
        smallest_failure = failed.get((job.eligibility_class, job.priority))
        if smallest_failure is not None and job.gpus >= smallest_failure:
            return False  # a search for no more GPUs of this class already came up empty
        if any(self.preemptible_running_by_priority[: job.priority]):
            return True
        if not self._entitled(job):
            return False
        nominal = self.nominal_gpus
        return any(
            use > nominal[name] for name, use in self.usage_gpus.items() if name != job.tenant
        )

    def _is_victim(self, victim: Job, job: Job, entitled: bool) -> bool:
        if not victim.preemptible:
            return False
        if victim.priority < job.priority:
            return True
        # Reclaim: only capacity a programme borrows beyond its entitlement.
        return (
            entitled
            and victim.priority <= job.priority
            and victim.tenant != job.tenant
            and self.usage_gpus.get(victim.tenant, 0) > self.nominal_gpus[victim.tenant]
        )

    def _preempt_for(
        self, job: Job, cls: EligibilityClass, now: float, requeued: list[Job]
    ) -> list[Preempt]:
        """Free room for `job` on one eligible pool at least cost, or change nothing.
        The caller starts `job` on the pool named by the returned decisions."""
        entitled = self._entitled(job)
        best: tuple[float, int, list[Job]] | None = None
        key = self._order_key(job)
        for i in cls.pools:
            if self.cordoned_mask >> i & 1:
                continue
            pool = self.fleet.pools[i]
            if pool.allocated_gpus(job.gpus) > pool.gpus:
                continue
            if not job.pool_mask >> i & 1:
                continue
            if self.ledger is not None and not self.ledger.affordable_now(
                job, pool, self.speed_on(job, pool)
            ):
                continue  # a budget is a hard rule: making room must not break it
            held = self.reservations.get(i)
            if held is not None and held.holder is not job and self._order_key(held.holder) < key:
                continue  # room made here would belong to the job ahead
            victims = [v for v in self.running_by_end[i] if self._is_victim(v, job, entitled)]
            if not victims:
                continue
            # Cheapest first: lowest priority, then the work that would be lost.
            victims.sort(key=lambda v: (v.priority, self._loss_if_preempted(v, now), v.seq))
            chosen = self._victims_that_make_room(job, i, victims)
            if chosen is None:
                continue
            cost = sum(self._loss_if_preempted(v, now) * v.allocated_gpus for v in chosen)
            if best is None or cost < best[0]:
                best = (cost, i, chosen)
        if best is None:
            return []
        _, pool_index, chosen = best
        decisions: list[Preempt] = []
        reason = (
            f"preempted for {job.job_id} ({job.tenant}, "
            f"{'priority ' + job.priority.name.lower() if not entitled else 'reclaim'})"
        )
        for victim in chosen:
            held, ran_from = victim.allocated_gpus, victim.started_at
            lost = self._stop(victim, now)
            requeued.append(victim)
            victim.preemptions += 1
            decisions.append(Preempt(victim, pool_index, reason, now, lost, held, ran_from))
        return decisions

    def _victims_that_make_room(
        self, job: Job, pool_index: int, victims: list[Job]
    ) -> list[Job] | None:
        state = self.pool_states[pool_index]
        gpn = state.gpus_per_node
        single = job.gpus <= gpn
        need = 1 if single else -(-job.gpus // gpn)
        threshold = job.gpus if single else gpn
        freed: dict[int, int] = {}
        chosen: list[Job] = []
        suitable = sum(len(state.nodes_by_free[k]) for k in range(threshold, gpn + 1))
        for victim in victims:
            chosen.append(victim)
            for node, gpus in victim.allocation:
                before = freed.get(node, state.node_free[node])
                freed[node] = before + gpus
                if before < threshold <= before + gpus:
                    suitable += 1
            if suitable >= need:
                return chosen
        return None

    def _loss_if_preempted(self, job: Job, now: float) -> float:
        done = (now - job.started_at) * job.speed
        return done - self._checkpointed(job, done)

    @staticmethod
    def _checkpointed(job: Job, done_since_start: float) -> float:
        interval = job.checkpoint_interval_s
        if not interval or interval <= 0:
            return 0.0
        return math.floor(done_since_start / interval) * interval

    def _stop(self, job: Job, now: float) -> float:
        """Stop a running job, keep its checkpointed work, and mark it pending again.
        The caller puts it back in the queue. Returns the work lost."""
        done = (now - job.started_at) * job.speed
        saved = self._checkpointed(job, done)
        self._release(job, now)
        job.work_done_s = min(job.work_done_s + saved, job.duration_s)
        job.state = JobState.PENDING
        job.pool_index = -1
        return done - saved

    # ------------------------------------------------------------------- carbon

    def _defer_for_carbon(self, job: Job, cls: EligibilityClass, now: float) -> bool:
        """True when waiting (within the job's slack) would find a clearly cleaner hour
        on an eligible site. Never defers past the point where the deadline is at risk:
        the slack is measured on the slowest pool the job could end up on."""
        speeds = self._speeds(job.job_type)
        slowest = min(speeds[i] for i in cls.pools if job.pool_mask >> i & 1)
        run_s = (job.requested_s - job.work_done_s) / slowest
        horizon = self.config.carbon_lookahead_s
        if job.deadline is not None:
            horizon = min(horizon, job.deadline - now - run_s * 1.1)
        if horizon < 3600:
            return False
        # The answer depends only on the hour, the class and whole hours of slack.
        hour = int(now // 3600)
        if hour != self._carbon_memo_hour:
            self._carbon_memo.clear()
            self._carbon_memo_hour = hour
        key = (cls.index, int((now + horizon) // 3600))
        found = self._carbon_memo.get(key)
        if found is not None:
            return found
        pools = self.fleet.pools
        best_now = min(pools[i].site.carbon_at(now) for i in cls.pools)
        best_later = best_now
        t = now + 3600 - (now % 3600)
        while t <= now + horizon:
            best_later = min(best_later, min(pools[i].site.carbon_at(t) for i in cls.pools))
            t += 3600
        defer = best_later < best_now * (1 - self.config.carbon_min_saving)
        self._carbon_memo[key] = defer
        return defer

    # ------------------------------------------------------------------- audits

    def check_invariants(self) -> None:
        """Full audit of GPU accounting and eligibility (tests; O(fleet + jobs))."""
        classes = self.eligibility.classes
        for i, state in enumerate(self.pool_states):
            state.check()
            held = sum(j.allocated_gpus for j in self.running_by_end[i])
            if held != state.total_gpus - state.free_gpus:
                raise AssertionError(f"pool {i}: jobs hold {held} GPUs, pool says otherwise")
            for job in self.running_by_end[i]:
                if not classes[job.eligibility_class].pool_mask >> i & 1:
                    raise AssertionError(f"job {job.job_id} runs on ineligible pool {i}")
        queued = sum(1 for _ in self.queue)
        if queued != self.queue.size:
            raise AssertionError("queue size out of step with its lists")

    def set_weight(self, tenant: str, weight: float) -> None:
        self.weights[tenant] = weight
        self._recompute_nominal()

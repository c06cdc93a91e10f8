"""Preemption: making room for a job by stopping others, at least cost, and rarely.

Two reasons to preempt: a higher priority class (from `preemptor_min_priority` up: by
default high and urgent, as a Slurm QOS's Preempt list names the classes it may take
from) takes from lower preemptible work; and
a programme within its entitlement reclaims capacity another programme borrows beyond
its own (fair share). Reclaim is what churns clusters (the complaint users of Kueue,
Armada and KAI file most), so it is held back by four rules:

1. A job that has run less than `preempt_exempt_s` in its current run is no victim,
   except for urgent work (Slurm's PreemptExemptTime): fresh work is not thrown away.
2. Hysteresis: the borrower must be above its entitlement by more than
   `reclaim_hysteresis` of it, the claimant below its own by as much, and the claimant
   must have waited `reclaim_after_s`. Over the recent past too (`UsageHistory`, decayed
   with `usage_half_life_s`): the claimant's share of recent use is below its entitled
   share by `reclaim_history_margin`, the borrower's above its own.
3. Never preempt for a job that could start within `preempt_start_horizon_s` anyway
   (running jobs' time limits say when room comes); urgent work does not wait.
4. Victims are ordered by the standalone comparator `victim_order`: least work lost
   since their last checkpoint, then lowest priority, then most borrowed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from arkwright.core.decisions import Preempt
from arkwright.core.eligibility import EligibilityClass
from arkwright.core.gang import (
    GangShape,
    can_ever_hold,
    shape_on,
    suitable_nodes,
    walk_until_fits,
)
from arkwright.core.job import Job, PriorityClass
from arkwright.core.ordering import ListFilter
from arkwright.core.pass_state import PassState
from arkwright.core.pool_state import PoolState
from arkwright.core.queue import JobList
from arkwright.core.usage_history import UsageHistory

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


def work_lost_if_preempted(job: Job, now: float) -> float:
    """Reference-GPU seconds a running job would lose: work since its last checkpoint."""
    done = (now - job.started_at) * job.speed
    return done - checkpointed(job, done)


def checkpointed(job: Job, done_since_start: float) -> float:
    interval = job.checkpoint_interval_s
    if not interval or interval <= 0:
        return 0.0
    return math.floor(done_since_start / interval) * interval


def victim_order(
    victim: Job, now: float, usage_gpus: dict[str, int], nominal_gpus: dict[str, float]
) -> tuple:
    """Cheapest victim first: (1) least work lost, (2) lowest priority, (3) most borrowed
    (GPUs in use over entitlement, as a fraction of the entitlement), (4) newest."""
    nominal = nominal_gpus.get(victim.tenant, 0.0) or 1e-9
    borrowed = (usage_gpus.get(victim.tenant, 0) - nominal) / nominal
    loss = work_lost_if_preempted(victim, now) * victim.allocated_gpus
    return (loss, victim.priority, -borrowed, -victim.seq)


def fill_back(state: PoolState, shape: GangShape, chosen: list[Job]) -> list[Job]:
    """Keep only the victims the gang needs (Kueue's fill-back): the walk in victim order
    stops at the first victim whose release makes the gang fit, but victims walked on the
    way may sit on nodes the gang will not use. Try sparing each, dearest first (the
    list is cheapest first); a victim stays only if the gang no longer fits without it.
    Every victim left then frees GPUs on a node the gang takes.

    Free GPUs per node and the count of suitable nodes are kept as victims are spared,
    so this costs O(nodes the victims hold), not a re-count per victim (a reclaim for a
    large gang can walk hundreds of small jobs)."""
    threshold = shape.threshold
    node_free = state.node_free
    freed: dict[int, int] = {}
    for victim in chosen:
        for node, gpus in victim.allocation:
            freed[node] = freed.get(node, node_free[node]) + gpus
    suitable = suitable_nodes(state, shape) + sum(
        1 for node, free in freed.items() if free >= threshold > node_free[node]
    )
    spared: set[int] = set()
    for index in range(len(chosen) - 2, -1, -1):  # the last one is what made it fit
        victim = chosen[index]
        lost = 0
        for node, gpus in victim.allocation:
            before = freed[node]
            freed[node] = before - gpus
            if before >= threshold > before - gpus:
                lost += 1
        if suitable - lost >= shape.need:
            suitable -= lost
            spared.add(index)
        else:
            for node, gpus in victim.allocation:
                freed[node] += gpus
    return [v for i, v in enumerate(chosen) if i not in spared]


class Preemptor:
    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        config = scheduler.config
        self.exempt_s = config.preempt_exempt_s
        self.hysteresis = config.reclaim_hysteresis
        self.reclaim_after_s = config.reclaim_after_s
        self.start_horizon_s = config.preempt_start_horizon_s
        self.min_priority = config.preemptor_min_priority
        self.history_margin = config.reclaim_history_margin
        self.history = UsageHistory(config.usage_half_life_s, scheduler.usage_gpus)

    def entitled(self, job: Job) -> bool:
        s = self._s
        return s.usage_gpus.get(job.tenant, 0) + job.gpus <= s.nominal_gpus[job.tenant]

    def _entitled_share(self, tenant: str) -> float:
        return self._s.nominal_shares[tenant]

    def _borrowing(self, tenant: str) -> bool:
        """Above its entitlement now by more than the hysteresis, and over the recent past."""
        s = self._s
        nominal = s.nominal_gpus[tenant]
        if s.usage_gpus.get(tenant, 0) <= nominal * (1 + self.hysteresis):
            return False
        recent = self.history.share(tenant)
        return recent is None or recent > self._entitled_share(tenant)

    def _behind(self, tenant: str) -> bool:
        """Below its entitlement over the recent past by more than the margin."""
        recent = self.history.share(tenant)
        return recent is None or recent < self._entitled_share(tenant) - self.history_margin

    def worth_trying(self, job: Job, failed: dict[tuple[int, int], int], now: float) -> bool:
        smallest_failure = failed.get((job.eligibility_class, job.priority))
        if smallest_failure is not None and job.gpus >= smallest_failure:
            return False  # a search for no more GPUs of this class already came up empty
        if job.priority >= self.min_priority and any(
            self._s.runs.preemptible_by_priority[: job.priority]
        ):
            return True
        return self._may_reclaim(job, now) and any(
            self._borrowing(name) for name in self._s.usage_gpus if name != job.tenant
        )

    def may_search_for(self, queued: JobList, i: int, failed: dict[tuple[int, int], int]) -> bool:
        """Whether `worth_trying` could say yes to `queued.jobs[i]` or a job behind it:
        what it asks of a job, asked of those jobs at once, erring towards yes (the pass
        examines a list only when one of its jobs could act). A priority class for which
        this pass's search already failed with no more GPUs than the list's smallest
        gang needs is not worth trying for any job of the list."""
        s = self._s
        top_priority = -queued.keys[i][0]  # a list is sorted by priority first
        cls = queued.class_index
        smallest = queued.smallest  # a job's GPUs are at least its fit size
        reclaim: bool | None = None  # the programme's side of `_may_reclaim`, when asked
        for priority in range(top_priority, -1, -1):
            failure = failed.get((cls, priority))
            if failure is not None and failure <= smallest:
                continue  # a search for no more GPUs than any of these need came up empty
            if priority >= self.min_priority and any(s.runs.preemptible_by_priority[:priority]):
                return True
            if reclaim is None:
                reclaim = self._list_may_reclaim(queued)
            if reclaim:
                return True
        return False

    def _list_may_reclaim(self, queued: JobList) -> bool:
        """`_may_reclaim` for the list's smallest gang, then a borrower to take from."""
        s = self._s
        tenant = queued.tenant
        use = s.usage_gpus.get(tenant, 0)
        nominal = s.nominal_gpus[tenant]
        return (
            use + queued.smallest <= nominal
            and use <= nominal * (1 - self.hysteresis)
            and self._behind(tenant)
            and any(self._borrowing(name) for name in s.usage_gpus if name != tenant)
        )

    def _may_reclaim(self, job: Job, now: float) -> bool:
        """Within its entitlement with room to spare (the claimant side of hysteresis),
        and waited long enough."""
        s = self._s
        use = s.usage_gpus.get(job.tenant, 0)
        return (  # the wait first: it rules out every fresh arrival at once
            now - job.submit_time >= self.reclaim_after_s
            and self.entitled(job)
            and use <= s.nominal_gpus[job.tenant] * (1 - self.hysteresis)
            and self._behind(job.tenant)
        )

    def _is_victim(self, victim: Job, job: Job, reclaim: bool, now: float) -> bool:
        if not victim.preemptible:
            return False
        # Only urgent work may take a job inside its exempt time.
        if now - victim.started_at < self.exempt_s and job.priority < PriorityClass.URGENT:
            return False
        if victim.priority < job.priority and job.priority >= self.min_priority:
            return True
        # Reclaim: only capacity a programme borrows beyond its entitlement.
        return (
            reclaim
            and victim.priority <= job.priority
            and victim.tenant != job.tenant
            and self._borrowing(victim.tenant)
        )

    def _victim_gpus_at_most(self, pool_index: int, job: Job, reclaim: bool) -> int:
        """The GPUs on this pool held by jobs `_is_victim` might pick for `job`, before
        the exempt time is asked: by priority, those of any programme in a lower class;
        by reclaim, those of another programme that borrows, in the job's class or
        below. Most reclaim searches are for gangs larger than all of that (15k of the
        17k pools searched in 60k jobs at 80% load under fairshare), and each had walked
        every preemptible job of the pool to find so."""
        by_priority = job.priority >= self.min_priority
        top = job.priority
        total = 0
        for tenant, held in self._s.runs.preemptible_gpus_on[pool_index].items():
            if reclaim and tenant != job.tenant and self._borrowing(tenant):
                classes = top + 1
            elif by_priority:
                classes = top
            else:
                continue
            for priority in range(classes):
                total += held[priority]
        return total

    def _starts_soon_anyway(self, job: Job, cls: EligibilityClass, now: float) -> bool:
        """Whether the job fits, on some pool it may use, once the jobs due to end within
        the horizon (at their time limits) have ended: the walk that backfill's shadow
        index keeps incrementally, over those jobs alone. A search is rare next to the
        starts and finishes that would keep the index, which fair share alone never
        needs otherwise."""
        if self.start_horizon_s <= 0:
            return False
        s = self._s
        soon = now + self.start_horizon_s
        for i in cls.pools:
            if not job.pool_mask >> i & 1 or s.cordoned_mask >> i & 1:
                continue
            state = s.pool_states[i]
            shape = shape_on(job, state.gpus_per_node)
            suitable = suitable_nodes(state, shape)
            if suitable >= shape.need:
                return True
            index, _ = walk_until_fits(state, shape, s.runs.ending_by(i, soon), suitable)
            if index >= 0:
                return True
        return False

    def find_room(
        self, job: Job, cls: EligibilityClass, now: float
    ) -> tuple[int, list[Job], bool] | None:
        """(pool, victims, entitled) freeing room for `job` at least cost, or None."""
        s = self._s
        entitled = self.entitled(job)
        reclaim = self._may_reclaim(job, now)
        if job.priority < PriorityClass.URGENT and self._starts_soon_anyway(job, cls, now):
            return None
        order = s.order
        usage, nominal = s.usage_gpus, s.nominal_gpus
        best: tuple[float, int, list[Job]] | None = None
        for i in cls.pools:
            if s.cordoned_mask >> i & 1 or not job.pool_mask >> i & 1:
                continue
            if not s.runs.preemptible_on[i]:
                continue  # no victim here, whatever the rules
            if s.pool_states[i].free_gpus + self._victim_gpus_at_most(i, job, reclaim) < job.gpus:
                continue  # every victim the rules could allow would not free enough
            pool = s.fleet.pools[i]
            if not can_ever_hold(job, pool):
                continue
            if s.ledger is not None and not s.ledger.affordable_now(
                job, pool, s.speed_on(job, pool)
            ):
                continue  # a budget is a hard rule: making room must not break it
            held = s.reservations.get(i)
            if held is not None and held.holder is not job and order.before(held.holder, job):
                continue  # room made here would belong to the job ahead
            candidates = s.runs.preemptible_on[i].values()
            victims = [v for v in candidates if self._is_victim(v, job, reclaim, now)]
            if not victims:
                continue
            # victim_order ends in the job's seq: a total order, whatever order the
            # candidates came in.
            victims.sort(key=lambda v: victim_order(v, now, usage, nominal))
            state = s.pool_states[i]
            shape = shape_on(job, state.gpus_per_node)
            index, _ = walk_until_fits(state, shape, victims, suitable_nodes(state, shape))
            if index < 0:
                continue
            chosen = fill_back(state, shape, victims[: index + 1])
            cost = sum(work_lost_if_preempted(v, now) * v.allocated_gpus for v in chosen)
            if best is None or cost < best[0]:
                best = (cost, i, chosen)
        if best is None:
            return None
        return best[1], best[2], entitled

    def preempt_in_pass(
        self, p: PassState, job: Job, cls: EligibilityClass, consider: ListFilter
    ) -> bool:
        """Pass step: make room for a job that could not start, and start it there."""
        s = self._s
        if (
            not p.may_preempt
            or not p.preemption_attempts_left
            or not (p.full or job in p.new_jobs)
            or not self.worth_trying(job, p.failed_searches, p.now)
        ):
            return False
        p.preemption_attempts_left -= 1
        if not p.preemption_attempts_left:
            consider.mask &= p.open_mask
        found = self.find_room(job, cls, p.now)
        if found is None:
            key = (cls.index, job.priority)
            p.failed_searches[key] = min(job.gpus, p.failed_searches.get(key, job.gpus))
            return False
        pool_index, victims, entitled = found
        # Name urgency even in a reclaim: only urgent work may take a job in its exempt time.
        urgent = "urgent " if job.priority >= PriorityClass.URGENT else ""
        reason = (
            f"preempted for {job.job_id} ({job.tenant}, "
            f"{'priority ' + job.priority.name.lower() if not entitled else urgent + 'reclaim'})"
        )
        for victim in victims:
            held, ran_from, nodes = victim.allocated_gpus, victim.started_at, victim.allocation
            lost = s.stop_run(victim, p.now)
            p.requeued.append(victim)
            victim.preemptions += 1
            p.decisions.append(
                Preempt(victim, pool_index, reason, p.now, lost, held, ran_from, nodes)
            )
        p.decisions.append(s.start_on(job, pool_index, p.now))
        for i in cls.pools:
            if s.pool_states[i].free_gpus and not s.cordoned_mask >> i & 1:
                p.open_mask |= 1 << i
        p.gpus_moved()
        return True

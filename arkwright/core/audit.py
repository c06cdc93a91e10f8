"""A full audit of the core's accounting (tests; O(fleet + jobs))."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arkwright.core.scheduler import Scheduler


def check_invariants(scheduler: Scheduler) -> None:
    """GPU accounting per pool and node, run lists in order, reservation holders by list,
    eligibility of every running job, queue size."""
    classes = scheduler.eligibility.classes
    scheduler.runs.check()
    scheduler.reservations.check()
    for i, state in enumerate(scheduler.pool_states):
        state.check()
        held = sum(j.allocated_gpus for j in scheduler.runs.by_end[i])
        if held != state.total_gpus - state.free_gpus:
            raise AssertionError(f"pool {i}: jobs hold {held} GPUs, pool says otherwise")
        for job in scheduler.runs.by_end[i]:
            if not classes[job.eligibility_class].pool_mask >> i & 1:
                raise AssertionError(f"job {job.job_id} runs on ineligible pool {i}")
    queued = sum(1 for _ in scheduler.queue)
    if queued != scheduler.queue.size:
        raise AssertionError("queue size out of step with its lists")

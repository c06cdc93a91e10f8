"""What one scheduling pass knows while it runs, in one place (no masks in cells)."""

from __future__ import annotations

from dataclasses import dataclass, field

from arkwright.core.decisions import Decision
from arkwright.core.job import Job


@dataclass(slots=True)
class PassState:
    now: float
    full: bool  # the periodic pass: every queued job may be reconsidered
    open_mask: int  # pools with free GPUs that are not cordoned
    strict: bool  # head-of-line blocking (plain FIFO)
    may_preempt: bool = False
    preemption_attempts_left: int = 0
    new_jobs: set[Job] = field(default_factory=set)  # arrivals since the last pass
    blocked_mask: int = 0  # strict order: pools a blocked job waits for
    claimed_mask: int = 0  # backfill: pools whose reservation went to a job seen this pass
    # Backfill: pools whose reservation is held by a job ahead of every job still to come
    # this pass (found when a reserve() skipped them). Valid while keys keep their order:
    # cleared when GPUs move under an ordering whose keys change with use (fair share).
    held_ahead_mask: int = 0
    keys_dynamic: bool = False
    # The largest gang that fits now, by usable pool mask (cleared whenever GPUs move).
    fit_by_mask: dict[int, int] = field(default_factory=dict)
    # (class, priority) -> the smallest gang a preemption search failed for.
    failed_searches: dict[tuple[int, int], int] = field(default_factory=dict)
    requeued: list[Job] = field(default_factory=list)  # victims, re-queued after the pass
    decisions: list[Decision] = field(default_factory=list)
    max_examined: int = 0  # this pass's bound on `examined`
    examined: int = 0  # jobs looked at, those passed over in a tight loop included
    passed_over: int = 0  # of which passed over as too large for the room left
    examined_by_tenant: dict[str, int] = field(default_factory=dict)
    bound_hit: bool = False

    def gpus_moved(self) -> None:
        """A job started or was preempted: what fits changed, and under fair share so did
        the order of the jobs still to come."""
        self.fit_by_mask.clear()
        if self.keys_dynamic:
            self.held_ahead_mask = 0


@dataclass(slots=True)
class PassStats:
    """Counters across passes, for summary.json (the driver times passes; the core has no
    clock)."""

    passes: int = 0
    examined_total: int = 0
    examined_max: int = 0
    bound_hits: int = 0
    lists_skipped: int = 0
    passed_over: int = 0
    examined_per_pass: list[int] = field(default_factory=list)

    def record(self, state: PassState) -> None:
        self.passes += 1
        self.examined_total += state.examined
        self.examined_max = max(self.examined_max, state.examined)
        self.bound_hits += state.bound_hit
        self.passed_over += state.passed_over
        self.examined_per_pass.append(state.examined)

"""What one scheduling pass knows while it runs, in one place (no masks in cells)."""

from __future__ import annotations

from dataclasses import dataclass, field

from arkwright.core.decisions import Decision
from arkwright.core.job import Job


class PassState:
    """Made afresh for every pass. A plain class, not a dataclass: a dataclass's generated
    `__init__` stays interpreted in the compiled core, and a pass is made per event."""

    __slots__ = (
        "blocked_mask",
        "bound_hit",
        "claimed_mask",
        "decisions",
        "examined",
        "examined_by_tenant",
        "failed_searches",
        "fit_by_mask",
        "full",
        "held_ahead_mask",
        "keys_dynamic",
        "max_examined",
        "may_preempt",
        "new_jobs",
        "now",
        "open_mask",
        "passed_over",
        "preemption_attempts_left",
        "requeued",
        "strict",
    )

    def __init__(self, now: float, full: bool, open_mask: int, strict: bool) -> None:
        self.now = now
        self.full = full  # the periodic pass: every queued job may be reconsidered
        self.open_mask = open_mask  # pools with free GPUs that are not cordoned
        self.strict = strict  # head-of-line blocking (plain FIFO)
        self.may_preempt = False
        self.preemption_attempts_left = 0
        self.new_jobs: set[Job] = set()  # arrivals since the last pass
        self.blocked_mask = 0  # strict order: pools a blocked job waits for
        self.claimed_mask = 0  # backfill: pools whose reservation went to a job seen this pass
        # Backfill: pools whose reservation is held by a job ahead of every job still to
        # come this pass (found when a reserve() skipped them). Valid while keys keep their
        # order: cleared when GPUs move under an ordering whose keys change with use.
        self.held_ahead_mask = 0
        self.keys_dynamic = False
        # The largest gang that fits now, by usable pool mask (cleared whenever GPUs move).
        self.fit_by_mask: dict[int, int] = {}
        # (class, priority) -> the smallest gang a preemption search failed for.
        self.failed_searches: dict[tuple[int, int], int] = {}
        self.requeued: list[Job] = []  # victims, re-queued after the pass
        self.decisions: list[Decision] = []
        self.max_examined = 0  # this pass's bound on `examined`
        self.examined = 0  # jobs looked at, those passed over included (not lists skipped)
        self.passed_over = 0  # jobs passed over as too large for the room left
        self.examined_by_tenant: dict[str, int] = {}
        self.bound_hit = False

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

"""Job states as the service stores them: the core's JobState plus one of its own.

The core knows pending and running; between them the service records 'starting' (the
start is committed, the backend has not answered yet), so that a crash there is
recognised on restart. Every value but STARTING is the core's, imported from it: one
definition, no bare strings.
"""

from __future__ import annotations

from enum import StrEnum

from arkwright.core.job import JobState


class RunState(StrEnum):
    PENDING = JobState.PENDING.value
    STARTING = "starting"  # recorded; the backend has not confirmed the run yet
    RUNNING = JobState.RUNNING.value
    COMPLETED = JobState.COMPLETED.value
    REJECTED = JobState.REJECTED.value
    CANCELLED = JobState.CANCELLED.value
    FAILED = JobState.FAILED.value


# States in which a job still holds a place in the queue or GPUs on a pool.
ACTIVE: frozenset[RunState] = frozenset({RunState.PENDING, RunState.STARTING, RunState.RUNNING})
# The subset that holds GPUs: the core must adopt them on a rebuild.
PLACED: frozenset[RunState] = frozenset({RunState.STARTING, RunState.RUNNING})

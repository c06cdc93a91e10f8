"""Array throttles (sbatch --array=...%N): at most N tasks of one array at a time.

A task counts from the moment it enters the queue until it ends, so at most N are ever
queued or running together and at most N run. Tasks beyond that wait here, outside the
queue, in the order they became ready (their dependencies satisfied), and the next one
is let in as each active task ends: a pass never looks at a throttled task.
"""

from __future__ import annotations

import re
from collections import deque

from arkwright.core.job import Job

MAX_ARRAY_TASKS = 10_000  # tasks one submission may make (Slurm's MaxArraySize is 1001)
_ITEM = re.compile(r"^(\d{1,9})(?:-(\d{1,9})(?::(\d{1,9}))?)?$")


def parse_array_spec(text: str) -> tuple[list[int], int]:
    """Slurm's --array: "0-15", "1,3,5", "0-15:4", each with an optional "%N" throttle.
    Returns (task ids, in order, without repeats; throttle, 0 for none); ValueError
    naming the part that is wrong."""
    spec, percent, limit_text = text.strip().partition("%")
    limit = 0
    if percent:
        if not limit_text.isdigit() or int(limit_text) <= 0:
            raise ValueError(f"array: throttle {limit_text!r} must be a positive number")
        limit = int(limit_text)
    tasks: dict[int, None] = {}
    for part in spec.split(","):
        match = _ITEM.match(part.strip())
        if not match:
            raise ValueError(f"array: cannot read {part!r} (use e.g. 0-15, 1,3,5, 0-15:4, %N)")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if last < first or step <= 0:
            raise ValueError(f"array: {part!r} is an empty range")
        if (last - first) // step + 1 + len(tasks) > MAX_ARRAY_TASKS:
            raise ValueError(f"array: more than {MAX_ARRAY_TASKS} tasks")
        for task in range(first, last + 1, step):
            tasks[task] = None
    return list(tasks), limit


class ArrayThrottle:
    def __init__(self) -> None:
        self._active: dict[str, int] = {}  # array id -> tasks queued or running
        self._waiting: dict[str, deque[Job]] = {}

    def __len__(self) -> int:
        return sum(len(d) for d in self._waiting.values())

    def admit(self, job: Job) -> bool:
        """True: the task may enter the queue now (counted). False: it waits here."""
        array, limit = job.array_id, job.array_limit
        if array is None or limit <= 0:
            return True
        active = self._active.get(array, 0)
        if active < limit:
            self._active[array] = active + 1
            return True
        self._waiting.setdefault(array, deque()).append(job)
        return False

    def adopt(self, job: Job) -> None:
        """A task found already running (after a restart) counts against its array."""
        if job.array_id is not None and job.array_limit > 0:
            self._active[job.array_id] = self._active.get(job.array_id, 0) + 1

    def ended(self, job: Job) -> Job | None:
        """An active task ended: the next waiting task of its array, now counted, if any."""
        array = job.array_id
        if array is None or job.array_limit <= 0:
            return None
        waiting = self._waiting.get(array)
        while waiting:
            task = waiting.popleft()
            if task.held:  # still ours (a cancelled task was dropped by `remove`)
                if not waiting:
                    del self._waiting[array]
                return task  # the slot passes to it: the count stays
        self._waiting.pop(array, None)
        left = self._active.get(array, 0) - 1
        if left > 0:
            self._active[array] = left
        else:
            self._active.pop(array, None)
        return None

    def remove(self, job: Job) -> None:
        """A waiting task was cancelled."""
        array = job.array_id or ""
        waiting = self._waiting.get(array)
        if waiting is not None:
            try:
                waiting.remove(job)
            except ValueError:
                return
            if not waiting:
                del self._waiting[array]

    def active(self, array: str) -> int:
        return self._active.get(array, 0)

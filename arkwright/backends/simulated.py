"""A site whose jobs run in scaled virtual time: a demo fleet that behaves realistically.

A run lasts its job time divided by `speedup` seconds of wall clock (speedup 3600: an
hour-long job takes a second). The handle records when it started and when it will end,
so a restarted control plane knows at once what became of it.
"""

from __future__ import annotations

import threading

from arkwright.backends.base import Ending, Outcome, RunHandle, RunRequest, check_boundary
from arkwright.core.fleet import Fleet


class SimulatedBackend:
    def __init__(self, fleet: Fleet, speedup: float = 3600.0) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be positive, got {speedup}")
        self.name = "simulated"
        self.fleet = fleet
        self.speedup = speedup
        self.time_scale = speedup  # a wall second here is `speedup` seconds of job time
        self._ends: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self, request: RunRequest) -> RunHandle:
        check_boundary(self.fleet, request)
        import time

        now = time.time()
        end = now + request.runtime_s / self.speedup
        with self._lock:
            self._ends[request.job.job_id] = end
        return {"backend": self.name, "started": now, "ends": end, "attempt": request.attempt}

    def poll(self, now: float) -> list[Outcome]:
        with self._lock:
            done = [job_id for job_id, end in self._ends.items() if end <= now]
            outcomes = [Outcome(j, Ending.COMPLETED, self._ends.pop(j), 0) for j in done]
        return outcomes

    def cancel(self, job_id: str, handle: RunHandle) -> None:
        with self._lock:
            self._ends.pop(job_id, None)

    def recover(
        self, job_id: str, handle: RunHandle | None, attempt: int, now: float
    ) -> Outcome | RunHandle | None:
        if not handle or handle.get("attempt") != attempt:
            return None
        with self._lock:
            self._ends[job_id] = float(handle["ends"])
        return handle

    def log_path(self, job_id: str, handle: RunHandle, stream: str) -> str | None:
        return None

"""Dispatch: starts and stops carried out on the backends, never under the control lock.

A start was committed ('starting') before it gets here, and a stop was committed to the
run_stops outbox in the transaction that decided it; so a crash in between loses
nothing (recovery finds the run or requeues the start; the next leader replays stops).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from arkwright.backends.base import Backend, BackendUnavailable, RunRequest
from arkwright.core.decisions import Start
from arkwright.service.store import Store

log = logging.getLogger("arkwright.dispatch")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retries per job, with exponential backoff between them."""

    max_lost_runs: int = 3  # the run that is lost for the Nth time fails the job
    max_refused_starts: int = 3  # the Nth start refused in a row fails the job
    backoff_s: float = 1.0  # wait before the first retry; doubles each time
    backoff_max_s: float = 300.0

    def delay(self, retry: int) -> float:
        return min(self.backoff_s * 2 ** max(retry - 1, 0), self.backoff_max_s)


def launch_all(
    backends: dict[str, Backend],
    launches: list[tuple[Start, RunRequest]],
    resting: Callable[[int], bool],
) -> list[tuple[Start, RunRequest, dict | Exception]]:
    """Ask the backends to run the starts (slow: sbatch to a busy controller). A site
    that is unreachable gets no more starts in this pass."""
    results: list[tuple[Start, RunRequest, dict | Exception]] = []
    unreachable: set[str] = set()
    for start, request in launches:
        site = request.pool.site.name
        try:
            if site in unreachable or resting(request.pool.index):
                raise BackendUnavailable("resting after a failed start there")
            results.append((start, request, backends[site].start(request)))
        except BackendUnavailable as exc:
            unreachable.add(site)
            results.append((start, request, exc))
        except Exception as exc:  # the start's own failure; the caller gives its GPUs back
            results.append((start, request, exc))
    return results


class Stopper:
    """Carries out the backend cancels the outbox owes, on worker threads: a cancel that
    blocks (a 30 s scancel) holds up only itself. Each is tried a bounded number of times;
    one that still fails stays in the outbox for the next leader to replay."""

    def __init__(
        self, store: Store, backends: dict[str, Backend], workers: int = 4, tries: int = 3
    ) -> None:
        self.store = store
        self.backends = backends
        self.tries = tries
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()

    def send(self, stops: list[tuple[int, str, str, dict | None]]) -> None:
        """(stop id, job id, site, handle) for each stop now committed."""
        for stop in stops:
            with self._lock:
                if stop[0] in self._in_flight:
                    continue
                self._in_flight.add(stop[0])
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, "arkwright-stop")
                pool = self._pool
            pool.submit(self._carry_out, *stop)

    def replay(self) -> None:
        """A new leader: stops the previous one committed but did not finish."""
        self.send([(r.id, r.job_id, r.site, r.handle) for r in self.store.pending_stops()])

    def _carry_out(self, stop_id: int, job_id: str, site: str, handle: dict | None) -> None:
        try:
            backend = self.backends.get(site)
            for attempt in range(1, self.tries + 1):
                try:
                    if backend is not None:
                        backend.cancel(job_id, handle or {})
                    self.store.stop_done(stop_id)
                    return
                except Exception:
                    log.exception("stop of %s on %s failed (try %d)", job_id, site, attempt)
                    time.sleep(min(0.5 * 2**attempt, 5.0))
        finally:
            with self._lock:
                self._in_flight.discard(stop_id)

    def shutdown(self) -> None:
        """Stops under way finish on their own threads; a later send starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=False)

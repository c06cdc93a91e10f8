"""API worker processes: `arkwright serve --workers N`.

One Python process spends a core at most (the GIL), and the API's CPU per request is
most of a submission's cost. So the first process binds the port and forks N-1 more
that share its listening socket (the kernel hands each new connection to one of them).
Every process serves the whole API; only the first may lead (run the loop and the
backends). The others are API workers (`leader.NeverLead`): a submission is stored by
whichever process took it and the leader reads it from the database by number, as it
reads submissions from a standby replica.

Forking happens before any thread or database connection exists, so each worker starts
clean and opens its own. A worker exits when its parent goes (a pipe it inherits closes),
so no orphan keeps taking submissions that nobody schedules.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("arkwright.workers")
STOP_WAIT_S = 10.0  # how long a worker has to finish its requests before it is killed


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every process serves from (bound once, here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class Workers:
    pids: list[int] = field(default_factory=list)
    _lifeline: int | None = None  # the parent's end of the pipe the workers watch

    def stop(self) -> None:
        """Ask every worker to finish (SIGTERM), then kill those still there after a
        bounded wait."""
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        waiting = set(self.pids)
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                with contextlib.suppress(ChildProcessError):
                    done, _ = os.waitpid(pid, os.WNOHANG)
                    if not done:
                        continue
                waiting.discard(pid)
            time.sleep(0.05)
        for pid in waiting:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids = []


def fork_workers(count: int, serve: Callable[[int], None]) -> Workers:
    """Fork `count` workers; worker n (1..count) runs `serve(n)` and exits. Call it before
    any thread starts: a fork copies only the calling thread."""
    if threading.active_count() > 1:
        raise RuntimeError("fork_workers must run before any thread starts")
    lifeline_read, lifeline_write = os.pipe()
    workers = Workers(_lifeline=lifeline_write)
    for n in range(1, count + 1):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(lifeline_write)
            _exit_with_parent(lifeline_read)
            code = 0
            try:
                serve(n)
            except BaseException:  # a worker must never return into the parent's code
                log.exception("API worker %d failed", n)
                code = 1
            finally:
                os._exit(code)
        workers.pids.append(pid)
    os.close(lifeline_read)
    return workers


def _exit_with_parent(lifeline: int) -> None:
    """When the parent's end of the pipe closes (it exited, even by SIGKILL), stop this
    worker: gracefully first (uvicorn finishes its requests on SIGTERM), then for good."""

    def watch() -> None:
        while os.read(lifeline, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_WAIT_S)
        os._exit(1)

    threading.Thread(target=watch, name="arkwright-lifeline", daemon=True).start()

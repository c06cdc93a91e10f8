"""The service's side of the launcher channel: the local backend, as the service sees it.

LauncherClient offers what LocalBackend offers the control plane (start, poll, cancel,
recover, log_path, open_log, startup_warnings, run_root) and forwards each call to the
privileged launcher (launcher.py). One call is on the channel at a time (a lock orders
the callers: the launcher answers in order anyway), each bounded by a timeout; an answer
that comes after its call gave up is recognised by its id and dropped.

If the launcher is gone (EOF, a broken channel), starts fail with BackendUnavailable:
the control plane puts the job back in the queue with that reason and rests the site;
the service's log says once that the launcher is gone and a restart of serve is needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import BinaryIO

from arkwright.backends import launcher_wire as wire
from arkwright.backends.base import (
    BackendUnavailable,
    Ending,
    IneligiblePlacement,
    Outcome,
    RunHandle,
    RunRequest,
    StartRefused,
)
from arkwright.backends.job_env import BadRunRequest
from arkwright.backends.local import log_path_of

log = logging.getLogger("arkwright.launcher")

CALL_TIMEOUT_S = 15.0
# A start may create an account (useradd) and a cgroup: slower than the rest.
START_TIMEOUT_S = 90.0

_ERRORS: dict[str, type[Exception]] = {
    "bad_request": BadRunRequest,
    "ineligible": IneligiblePlacement,
    "refused": StartRefused,
}


class LauncherBusy(BackendUnavailable):
    """Another call held the channel for longer than this call may wait (a slow start:
    useradd, a cgroup): try again later."""


class LauncherError(RuntimeError):
    """The launcher refused a message (`invalid`) or failed carrying it out (`failed`)."""


def outcome_from_wire(data: dict) -> Outcome:
    return Outcome(
        data["job_id"],
        Ending(data["ending"]),
        float(data["ended_at"]),
        data.get("exit_code"),
        data.get("reason", ""),
    )


class LauncherClient:
    def __init__(self, sock: socket.socket, launcher_pid: int | None = None) -> None:
        self.name = "local"
        self.time_scale = 1.0
        self._sock: socket.socket | None = sock
        self._pid = launcher_pid
        self._lock = threading.Lock()
        self._next_id = 1
        hello = self._call({"op": "hello"}, START_TIMEOUT_S)  # the launcher probes cgroups
        self._warnings: list[str] = list(hello["warnings"])
        self._run_roots: dict[str, str] = dict(hello["run_roots"])
        log.info("privileged launcher (pid %s) answers", hello["pid"])

    # ------------------------------------------------------------------ channel

    @property
    def alive(self) -> bool:
        return self._sock is not None

    def _gone(self, why: str) -> None:
        """Called with the lock held: the channel is closed for good."""
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._sock.close()
        self._sock = None
        if self._pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, os.WNOHANG)  # reap it if it has ended
        log.error(
            "the privileged launcher is gone (%s): local runs can no longer be started, "
            "stopped or read until `arkwright serve` is restarted (runs already started "
            "go on and are adopted then)",
            why,
        )

    def _call(self, message: dict, timeout: float = CALL_TIMEOUT_S) -> dict:
        fds: list[int] = []
        answer = self._exchange(message, timeout, fds)
        for fd in fds[1:]:
            os.close(fd)
        if answer.get("ok"):
            if fds:
                answer["fd"] = fds[0]
            return answer
        for fd in fds[:1]:
            os.close(fd)
        kind, reason = answer.get("error", "failed"), str(answer.get("reason", ""))
        raise _ERRORS.get(kind, LauncherError)(reason)

    def _exchange(self, message: dict, timeout: float, fds: list[int]) -> dict:
        # The lock orders use of the channel (no state of ours is under it); waiting for
        # it is bounded by the same timeout as the call itself.
        if not self._lock.acquire(timeout=timeout):
            raise LauncherBusy(f"the launcher channel stayed busy ({message['op']})")
        try:
            return self._exchange_locked(message, timeout, fds)
        finally:
            self._lock.release()

    def _exchange_locked(self, message: dict, timeout: float, fds: list[int]) -> dict:
        if self._sock is None:
            raise BackendUnavailable("the privileged launcher is gone")
        call = self._next_id
        self._next_id += 1
        try:
            self._sock.settimeout(timeout)
            wire.send_frame(self._sock, {**message, "id": call})
            while True:
                fds.clear()
                answer = wire.parse(wire.recv_frame(self._sock, fds))
                if answer.get("id") == call:
                    return answer
                for fd in fds:  # an answer to a call that had given up
                    os.close(fd)
        except TimeoutError:
            # The launcher may still answer later; that answer's id will not match.
            raise BackendUnavailable(
                f"the launcher did not answer {message['op']} in {timeout:g} s"
            ) from None
        except (wire.ChannelClosed, wire.Invalid, OSError) as exc:
            self._gone(str(exc) or type(exc).__name__)
            raise BackendUnavailable(f"the privileged launcher is gone ({exc})") from None

    # ------------------------------------------------------------------ Backend

    def startup_warnings(self) -> list[str]:
        return list(self._warnings)

    def run_root(self, site: str) -> Path:
        return Path(self._run_roots[site])

    def start(self, request: RunRequest) -> RunHandle:
        message = {"op": "start", "request": wire.request_to_wire(request)}
        return self._call(message, START_TIMEOUT_S)["handle"]

    def poll(self, now: float) -> list[Outcome]:
        if not self.alive:
            return []  # said once, in the log; runs stay as they are until a restart
        try:
            answer = self._call({"op": "poll", "now": now})
        except LauncherBusy:
            return []  # a slow start holds the channel: the next tick asks again
        return [outcome_from_wire(o) for o in answer["outcomes"]]

    def cancel(self, job_id: str, handle: RunHandle) -> None:
        self._call({"op": "cancel", "job_id": job_id})

    def recover(
        self, job_id: str, handle: RunHandle | None, attempt: int, now: float
    ) -> Outcome | RunHandle | None:
        message = {
            "op": "recover",
            "job_id": job_id,
            "attempt": attempt,
            "now": now,
            "handle": None if handle is None else _recovery_fields(handle),
        }
        answer = self._call(message)
        if answer.get("none"):
            return None
        if "outcome" in answer:
            return outcome_from_wire(answer["outcome"])
        return {**(handle or {}), **answer["handle"]}

    def log_path(self, job_id: str, handle: RunHandle, stream: str) -> str | None:
        return log_path_of(handle, stream)

    def open_log(self, job_id: str, handle: RunHandle, stream: str) -> BinaryIO | None:
        if not handle or "dir" not in handle or not isinstance(handle.get("attempt"), int):
            return None
        message = {
            "op": "open_log",
            "job_id": job_id,
            "attempt": handle["attempt"],
            "stream": stream,
        }
        try:
            answer = self._call(message)
        except BackendUnavailable:
            return None  # the API answers with no log rather than an error page
        if not answer.get("found") or "fd" not in answer:
            return None
        return os.fdopen(answer["fd"], "rb")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.close()
                self._sock = None


def _recovery_fields(handle: RunHandle) -> dict:
    keys = ("pool", "allocation", "indices", "cgroup")
    return {key: handle[key] for key in keys if key in handle}

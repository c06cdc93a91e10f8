"""The privileged launcher: the one process of `arkwright serve` that keeps root.

As slurmd keeps root while slurmctld runs as SlurmUser, `serve` started as root forks
this process and drops itself to a service account (launcher_split.py). The launcher
owns the whole local backend (LocalBackend: accounts, run directories, cgroups, runners,
signals, recovery, logs); the service talks to it over a socketpair (launcher_wire.py)
through LauncherClient, which offers the same Backend interface.

What the launcher trusts: only what it loaded before the fork (the fleet, its records)
and what it wrote itself (each run's request.json). Every message is checked field by
field and anything unknown is answered with an error and nothing done: an op it does not
know, a job id that could climb out of its directory, a pool that is not a local pool of
its fleet, an owner its site does not map to a non-root account (AccountResolver), a
cgroup that is not the run's own. Logs are opened from the launcher's own record of the
run, never from paths in the message, and handed back as open descriptors.

Lifetime: EOF on the channel (the service exited or was killed) ends the launcher. The
runs it started go on (each runner is its own session) and the next serve's launcher
adopts them from their records (LocalBackend.recover).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from typing import Any

from arkwright.backends import launcher_wire as wire
from arkwright.backends.base import IneligiblePlacement, Outcome, StartRefused
from arkwright.backends.job_env import BadRunRequest
from arkwright.backends.local import LocalBackend

log = logging.getLogger("arkwright.launcher")

BODY_TIMEOUT_S = 30.0  # a frame whose header came must be whole by then
SEND_TIMEOUT_S = 30.0  # a service that stops reading its answers is gone


def outcome_to_wire(outcome: Outcome) -> dict:
    return {
        "job_id": outcome.job_id,
        "ending": outcome.ending.value,
        "ended_at": outcome.ended_at,
        "exit_code": outcome.exit_code,
        "reason": outcome.reason,
    }


def _error(kind: str, reason: str) -> dict:
    return {"ok": False, "error": kind, "reason": reason}


READ_ONLY_OPS = frozenset({"hello", "open_log"})  # all an API worker's channel may ask


class Dispatcher:
    """One message in, one answer (and the descriptors it carries) out. A read-only one
    (an API worker's channel: `serve --workers`) answers only READ_ONLY_OPS."""

    def __init__(self, backend: LocalBackend, *, read_only: bool = False) -> None:
        self.backend = backend
        self.fleet = backend.fleet
        self.local_pools = {p.name: p for p in self.fleet.pools if p.site.backend == "local"}
        ops = {
            "hello": self._hello,
            "start": self._start,
            "poll": self._poll,
            "cancel": self._cancel,
            "recover": self._recover,
            "open_log": self._open_log,
        }
        self._ops = {k: v for k, v in ops.items() if not read_only or k in READ_ONLY_OPS}

    def handle(self, body: bytes) -> tuple[dict, list[int]]:
        try:
            message = wire.parse(body)
            call = message.get("id", 0)
            wire.integer(call, "id", 0, 1 << 62)
            op = message.get("op")
            if op not in self._ops:
                raise wire.Invalid(f"op: unknown operation {str(op)[:40]!r}")
            answer, fds = self._ops[op](message)
        except wire.Invalid as exc:
            return _error("invalid", str(exc)) | {"id": _id_of(body)}, []
        except BadRunRequest as exc:
            return _error("bad_request", str(exc)) | {"id": call}, []
        except IneligiblePlacement as exc:
            return _error("ineligible", str(exc)) | {"id": call}, []
        except StartRefused as exc:  # AccountRefused included: no usable account
            return _error("refused", str(exc)) | {"id": call}, []
        except Exception as exc:  # the local machine's own failure (disk full, ...)
            log.exception("launcher: %s failed", message.get("op"))
            return _error("failed", f"{type(exc).__name__}: {exc}") | {"id": call}, []
        return {"ok": True, "id": call, **answer}, fds

    # ------------------------------------------------------------------ ops

    def _hello(self, message: dict) -> tuple[dict, list[int]]:
        sites = [s.name for s in self.fleet.sites if s.backend == "local"]
        return {
            "pid": os.getpid(),
            "warnings": self.backend.startup_warnings(),
            "run_roots": {site: str(self.backend.run_root(site)) for site in sites},
        }, []

    def _start(self, message: dict) -> tuple[dict, list[int]]:
        request = wire.request_from_wire(self.fleet, message.get("request"))
        return {"handle": self.backend.start(request)}, []

    def _poll(self, message: dict) -> tuple[dict, list[int]]:
        now = wire.number(message.get("now"), "now", 0.0, 1e11)
        return {"outcomes": [outcome_to_wire(o) for o in self.backend.poll(now)]}, []

    def _cancel(self, message: dict) -> tuple[dict, list[int]]:
        # Only the run this launcher tracks under that id is signalled: no pid crosses.
        self.backend.cancel(wire.job_id(message.get("job_id")), {})
        return {}, []

    def _recover(self, message: dict) -> tuple[dict, list[int]]:
        job_id = wire.job_id(message.get("job_id"))
        attempt = wire.attempt(message.get("attempt"))
        now = wire.number(message.get("now"), "now", 0.0, 1e11)
        handle = self._recovery_handle(message.get("handle"), job_id, attempt)
        found = self.backend.recover(job_id, handle, attempt, now)
        if found is None:
            return {"none": True}, []
        if isinstance(found, Outcome):
            return {"outcome": outcome_to_wire(found)}, []
        return {"handle": found}, []

    def _recovery_handle(self, raw: Any, job_id: str, attempt: int) -> dict | None:
        """Of the stored handle, only what recovery reads (the pool's GPU slots and the
        cgroup), each checked: the pid and directories come from the launcher's record."""
        if raw is None:
            return None
        raw = wire.mapping(raw, "handle")
        if not raw.get("pool"):
            return {}
        pool = self.local_pools.get(raw["pool"]) if isinstance(raw["pool"], str) else None
        if pool is None:
            raise wire.Invalid(f"handle.pool: {str(raw['pool'])[:80]!r} is not a local pool")
        allocation = wire.allocation(raw.get("allocation"), pool, "handle.allocation")
        indices = raw.get("indices", [[] for _ in allocation])
        if not isinstance(indices, list) or len(indices) != len(allocation):
            raise wire.Invalid("handle.indices: not one list per allocated node")
        for i, group in enumerate(indices):
            if not isinstance(group, list) or len(group) > pool.gpus_per_node:
                raise wire.Invalid(f"handle.indices[{i}]: not a list of GPU indices")
            for index in group:
                wire.integer(index, f"handle.indices[{i}]", 0, pool.gpus_per_node - 1)
        cgroup = raw.get("cgroup", "")
        if cgroup not in ("", f"{job_id}-{attempt}"):
            raise wire.Invalid("handle.cgroup: not this run's cgroup")
        return {
            "pool": pool.name,
            "allocation": [list(pair) for pair in allocation],
            "indices": indices,
            "cgroup": cgroup,
        }

    def _open_log(self, message: dict) -> tuple[dict, list[int]]:
        job_id = wire.job_id(message.get("job_id"))
        attempt = wire.attempt(message.get("attempt"))
        stream = wire.stream(message.get("stream"))
        opened = self.backend.open_recorded_log(job_id, attempt, stream)
        if opened is None:
            return {"found": False}, []
        # The descriptor is duplicated into the answer; ours is closed once it is sent.
        fd = os.dup(opened.fileno())
        opened.close()
        return {"found": True}, [fd]


def _id_of(body: bytes) -> int:
    """The call id of a message refused before it was understood (0 when there is none),
    so the client can match the refusal to its call."""
    with contextlib.suppress(wire.Invalid, AttributeError):
        call = wire.parse(body).get("id", 0)
        if isinstance(call, int) and not isinstance(call, bool) and 0 <= call < 1 << 62:
            return call
    return 0


def serve_channel(sock: socket.socket, dispatcher: Dispatcher) -> None:
    """Answer messages until the service closes the channel (or breaks it)."""
    while True:
        sock.settimeout(None)  # idle: the service may be a standby replica for hours
        received: list[int] = []
        try:
            body = wire.recv_frame(sock, received, BODY_TIMEOUT_S)
        except wire.Invalid as exc:
            answer, fds = _error("invalid", str(exc)) | {"id": 0}, []
        except (wire.ChannelClosed, OSError):
            return
        else:
            answer, fds = dispatcher.handle(body)
        finally:
            for fd in received:  # the service has no business sending descriptors
                os.close(fd)
        try:
            sock.settimeout(SEND_TIMEOUT_S)
            wire.send_frame(sock, answer, fds)
        except OSError:
            return
        finally:
            for fd in fds:
                os.close(fd)


def run_launcher(sock: socket.socket, backend_factory, readers=()) -> None:
    """The forked launcher's whole life; never returns to the caller's code. `sock` is
    the service's channel (its EOF ends the launcher); each of `readers` is an API
    worker's, answered read-only on a thread of its own."""
    code = 0
    try:
        # Ctrl-C reaches the whole process group: the service shuts down and its EOF
        # ends us; a KeyboardInterrupt here would only lose in-flight answers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        backend = backend_factory()
        for n, reader in enumerate(readers, 1):
            threading.Thread(
                target=serve_channel,
                args=(reader, Dispatcher(backend, read_only=True)),
                name=f"launcher-reader-{n}",
                daemon=True,
            ).start()
        serve_channel(sock, Dispatcher(backend))
        log.info("launcher: the service closed the channel; runs continue on their own")
    except BaseException:
        log.exception("launcher failed")
        code = 1
    finally:
        os._exit(code)

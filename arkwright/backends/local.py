"""Real processes on this machine: command and environment in, logs and exit codes out.

Each run gets a directory `RUNS/<job>/attempt-<n>/` and a runner process in its own
session (see runner.py), so runs survive the server. After a restart a run is found
again by that directory: ended (exit.json), still running (runner.pid names a live
runner for this directory), or lost. GPUs are handed out by index: CUDA_VISIBLE_DEVICES
when the machine has NVIDIA GPUs, ARKWRIGHT_GPU_SLOTS always.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from arkwright.backends.base import Ending, Outcome, RunHandle, RunRequest, check_boundary
from arkwright.core.fleet import Fleet

_ENDINGS = {
    "completed": Ending.COMPLETED,
    "failed": Ending.FAILED,
    "timeout": Ending.FAILED,
    "cancelled": Ending.CANCELLED,
}


def machine_has_nvidia_gpus() -> bool:
    return shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()


def _alive_runner(pid: int, run_dir: Path) -> bool:
    """Is `pid` a live runner for this directory (not a recycled pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        return False
    # An empty command line means the process is still exec-ing: not yet anyone else's.
    return cmdline == [b""] or str(run_dir).encode() in cmdline


def _find_runner(run_dir: Path) -> int | None:
    needle = str(run_dir).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in entry.joinpath("cmdline").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
    return None


class LocalBackend:
    def __init__(self, fleet: Fleet, runs_dir: Path, grace_s: float = 5.0) -> None:
        self.name = "local"
        self.time_scale = 1.0
        self.fleet = fleet
        self.runs_dir = runs_dir
        self.grace_s = grace_s
        self.nvidia = machine_has_nvidia_gpus()
        self._lock = threading.Lock()
        self._tracked: dict[str, dict] = {}  # job id -> {dir, pid, popen, pool, indices}
        self._used: dict[tuple[str, int], set[int]] = {}  # (pool, node) -> GPU indices

    def _run_dir(self, job_id: str, attempt: int) -> Path:
        return self.runs_dir / job_id / f"attempt-{attempt}"

    def _take_indices(self, pool_name: str, allocation, gpus_per_node: int) -> list[list[int]]:
        taken = []
        for node, gpus in allocation:
            used = self._used.setdefault((pool_name, node), set())
            free = [i for i in range(gpus_per_node) if i not in used][:gpus]
            if len(free) < gpus:
                raise RuntimeError(f"{pool_name} node {node}: {gpus} GPU slots are not free")
            used.update(free)
            taken.append(free)
        return taken

    def _free_indices(self, record: dict) -> None:
        for (node, _), indices in zip(record["allocation"], record["indices"], strict=True):
            self._used.get((record["pool"], node), set()).difference_update(indices)

    def start(self, request: RunRequest) -> RunHandle:
        check_boundary(self.fleet, request)
        job, pool = request.job, request.pool
        if not request.command:
            raise ValueError(f"job {job.job_id} has no command to run on {pool.name}")
        run_dir = self._run_dir(job.job_id, request.attempt)
        run_dir.mkdir(parents=True, exist_ok=False)
        with self._lock:
            indices = self._take_indices(pool.name, request.allocation, pool.gpus_per_node)
        flat = ",".join(str(i) for group in indices for i in group)
        env = {
            **os.environ,
            **request.env,
            "ARKWRIGHT_JOB_ID": job.job_id,
            "ARKWRIGHT_GPU_SLOTS": flat,
        }
        if self.nvidia:
            env["CUDA_VISIBLE_DEVICES"] = flat
        limit = job.requested_s / max(self._speed(request), 1e-9)
        (run_dir / "request.json").write_text(
            json.dumps({"command": request.command, "env": request.env, "gpu_slots": flat})
        )
        with open(run_dir / "runner.log", "ab") as log:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "arkwright.backends.runner",
                    "--dir",
                    str(run_dir),
                    "--time-limit",
                    f"{limit:.3f}",
                    "--grace",
                    f"{self.grace_s:g}",
                    "--",
                    *request.command,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
                cwd=run_dir,
            )
        record = {
            "dir": run_dir,
            "pid": popen.pid,
            "popen": popen,
            "pool": pool.name,
            "allocation": [list(a) for a in request.allocation],
            "indices": indices,
        }
        with self._lock:
            self._tracked[job.job_id] = record
        return {
            "backend": self.name,
            "dir": str(run_dir),
            "pid": popen.pid,
            "attempt": request.attempt,
            "pool": pool.name,
            "allocation": record["allocation"],
            "indices": indices,
        }

    @staticmethod
    def _speed(request: RunRequest) -> float:
        return request.job.speed or 1.0

    def _read_exit(self, job_id: str, run_dir: Path) -> Outcome | None:
        try:
            data = json.loads((run_dir / "exit.json").read_text())
        except (OSError, ValueError):
            return None
        return Outcome(
            job_id,
            _ENDINGS.get(data.get("ending"), Ending.FAILED),
            float(data.get("ended_at", time.time())),
            data.get("exit_code"),
            data.get("reason", ""),
        )

    def poll(self, now: float) -> list[Outcome]:
        outcomes = []
        with self._lock:
            items = list(self._tracked.items())
        for job_id, record in items:
            popen = record.get("popen")
            if popen is not None:  # our own child: the OS says whether it lives (and reaps it)
                alive = popen.poll() is None
            else:  # found again after a restart
                alive = _alive_runner(record["pid"], record["dir"])
            outcome = self._read_exit(job_id, record["dir"])
            if outcome is None and not alive:
                # The runner may have written exit.json just before it died.
                outcome = self._read_exit(job_id, record["dir"]) or Outcome(
                    job_id, Ending.LOST, now, None, "runner process vanished"
                )
            if outcome is not None:
                with self._lock:
                    self._tracked.pop(job_id, None)
                    self._free_indices(record)
                outcomes.append(outcome)
        return outcomes

    def cancel(self, job_id: str, handle: RunHandle) -> None:
        with self._lock:
            record = self._tracked.get(job_id)
        if record is None:
            return
        pid = record["pid"]
        try:
            os.kill(pid, signal.SIGTERM)  # the runner stops its command's process group
        except ProcessLookupError:
            return

        def kill_later() -> None:
            if _alive_runner(pid, record["dir"]):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)

        timer = threading.Timer(self.grace_s + 2.0, kill_later)
        timer.daemon = True
        timer.start()

    def recover(
        self, job_id: str, handle: RunHandle | None, attempt: int, now: float
    ) -> Outcome | RunHandle | None:
        run_dir = self._run_dir(job_id, attempt)
        if not run_dir.exists():
            return None  # the start was decided but never carried out
        ended = self._read_exit(job_id, run_dir)
        if ended is not None:
            return ended
        try:
            pid = int((run_dir / "runner.pid").read_text())
        except (OSError, ValueError):
            pid = _find_runner(run_dir)
        if pid is None or not _alive_runner(pid, run_dir):
            return self._read_exit(job_id, run_dir) or Outcome(
                job_id, Ending.LOST, now, None, "lost on restart: its process is gone"
            )
        handle = dict(handle or {})
        allocation = handle.get("allocation", [])
        indices = handle.get("indices", [[] for _ in allocation])
        record = {
            "dir": run_dir,
            "pid": pid,
            "popen": None,
            "pool": handle.get("pool", ""),
            "allocation": allocation,
            "indices": indices,
        }
        with self._lock:
            self._tracked[job_id] = record
            for (node, _), group in zip(allocation, indices, strict=True):
                self._used.setdefault((record["pool"], node), set()).update(group)
        handle.update(pid=pid, dir=str(run_dir), attempt=attempt)
        return handle

    def log_path(self, job_id: str, handle: RunHandle, stream: str) -> str | None:
        if not handle or "dir" not in handle:
            return None
        return str(Path(handle["dir"]) / f"{stream}.log")

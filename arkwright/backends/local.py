"""Real processes on this machine: command and environment in, logs and exit codes out.

Each run has two directories. Its record, `RUNS/<job>/attempt-<n>/` under the service's
data directory (0700, the service's own): request, runner pid, logs, exit record. Its run
directory, `RUN_ROOT/<job>/attempt-<n>/` outside the data directory (0700, owned by the
job's account): the command's working directory, HOME and TMPDIR. A runner process in its
own session (see runner.py) starts the command under the account the site maps the job's
owner to (accounts.py), with a clean environment (an allow-list plus the job's own env;
nothing of the server's), confined by cgroup v2 where the machine allows (confine.py).
Runs survive the server: after a restart a run is found again by its record: ended
(exit.json), still running (runner.pid names a live runner for this record), or lost.
GPUs are handed out by index: CUDA_VISIBLE_DEVICES when the machine has NVIDIA GPUs,
ARKWRIGHT_GPU_SLOTS always.

A batch script (RunRequest.batch.script) is written into the run directory as
`slurm_script` (0700, the job's) before the directory is handed to the job's account,
and executed directly, so its own #! line decides the interpreter; Slurm's batch
variables describe this machine as the job's one node. Logs named by --output/--error
patterns are opened in the run directory by the job's own account (runner.py), never by
the service, and read back without following links (log_patterns.open_confined).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO

from arkwright.backends import confine
from arkwright.backends.accounts import Account, AccountResolver
from arkwright.backends.base import Ending, Outcome, RunHandle, RunRequest, check_boundary
from arkwright.backends.batch import SCRIPT_NAME, short_hostname, slurm_environment
from arkwright.backends.job_env import (
    BadRunRequest,
    job_environment,
    runner_environment,
    validate_request,
)
from arkwright.backends.log_patterns import DEV_NULL, BadLogPattern, open_confined, render
from arkwright.backends.runner import write_atomically
from arkwright.core.fleet import Fleet
from arkwright.fleets.identity import identity_of

log = logging.getLogger("arkwright.local")

_ENDINGS = {
    "completed": Ending.COMPLETED,
    "failed": Ending.FAILED,
    "timeout": Ending.FAILED,
    "cancelled": Ending.CANCELLED,
}


def machine_has_nvidia_gpus() -> bool:
    return shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()


def _ours(pid: int) -> bool:
    """Does `pid` run as this service's account (a job's process never does)?"""
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.geteuid()
    except OSError:
        return False


def _alive_runner(pid: int, run_dir: Path) -> bool:
    """Is `pid` a live runner for this record (not a recycled pid, not a job's process)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in ("Z", "X") or not _ours(pid):
        return False
    # An empty command line means the process is still exec-ing: not yet anyone else's.
    return cmdline == [b""] or str(run_dir).encode() in cmdline


def _find_runner(run_dir: Path) -> int | None:
    needle = str(run_dir).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in entry.joinpath("cmdline").read_bytes().split(b"\0") and _ours(
                    int(entry.name)
                ):
                    return int(entry.name)
            except OSError:
                continue
    return None


def default_run_root(runs_dir: Path) -> Path:
    """Beside the data directory, never inside it: `<data-dir>-runs`."""
    data_dir = runs_dir.parent
    return data_dir.parent / f"{data_dir.name}-runs"


def _private_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)


class LocalBackend:
    """`runs_dir` holds the runs' records (inside the service's data directory);
    `run_root` the run directories (default: beside the data directory, or the site's
    `[sites.identity] run_root`). Both are made absolute: a relative path would resolve
    against whatever directory the runner or the job happens to be in."""

    def __init__(
        self,
        fleet: Fleet,
        runs_dir: Path,
        grace_s: float = 5.0,
        *,
        run_root: Path | None = None,
        service_uid: int | None = None,
        limits_per_gpu: confine.Limits | None = None,
        confinement: confine.Confinement | str | None = "probe",
        private_tmp: bool | str = "probe",
    ) -> None:
        self.name = "local"
        self.time_scale = 1.0
        self.fleet = fleet
        self.runs_dir = Path(os.path.abspath(runs_dir))
        _private_dir(self.runs_dir, 0o700)
        self._run_root = Path(os.path.abspath(run_root)) if run_root else None
        self.grace_s = grace_s
        self.nvidia = machine_has_nvidia_gpus()
        self._lock = threading.Lock()
        self._tracked: dict[str, dict] = {}  # job id -> {dir, pid, popen, pool, indices}
        self._used: dict[tuple[str, int], set[int]] = {}  # (pool, node) -> GPU indices
        local_sites = [s.name for s in fleet.sites if s.backend == "local"]
        self.accounts = {
            site: AccountResolver(site, identity_of(fleet, site), service_uid)
            for site in local_sites
        }
        slots = sum(p.gpus for p in fleet.pools if p.site.backend == "local") or 1
        self.limits_per_gpu = limits_per_gpu or confine.machine_limits().scaled(1 / slots)
        reason = ""
        if confinement == "probe":
            confinement, reason = confine.probe() if local_sites else (None, "")
        self.confinement: confine.Confinement | None = confinement  # type: ignore[assignment]
        self.confinement_reason = reason
        tmp_reason = "turned off"
        if private_tmp == "probe":
            private_tmp, tmp_reason = confine.probe_private_tmp() if local_sites else (False, "")
        self.private_tmp_reason: dict[str, str] = {}  # site -> why its runs share /tmp
        for site in local_sites:
            if not private_tmp:
                self.private_tmp_reason[site] = tmp_reason
            elif confine.tmp_is_under_tmp(self.run_root(site)):
                self.private_tmp_reason[site] = (
                    f"its run directories are under {self.run_root(site)}, which a private "
                    "/tmp would hide (set [sites.identity] run_root elsewhere)"
                )
        for warning in self.startup_warnings():
            log.warning("%s", warning)

    def startup_warnings(self) -> list[str]:
        warnings = [w for resolver in self.accounts.values() for w in resolver.warnings()]
        if self.accounts and self.confinement is None:
            warnings.append(
                "local runs are NOT confined (no CPU or memory limits): "
                + (self.confinement_reason or "confinement turned off")
            )
        for site, why in self.private_tmp_reason.items():
            warnings.append(
                f"site {site}: local runs share the machine's /tmp (no private /tmp: {why}); "
                "TMPDIR points at each run's own directory"
            )
        if self.accounts and self.nvidia:
            warnings.append(
                "local runs see their GPUs through CUDA_VISIBLE_DEVICES only: device "
                "access is not enforced by a device cgroup"
            )
        return warnings

    def run_root(self, site: str) -> Path:
        if self._run_root is not None:
            return self._run_root
        identity = identity_of(self.fleet, site)
        if identity is not None and identity.run_root:
            return Path(identity.run_root)
        return default_run_root(self.runs_dir)

    def _run_dir(self, job_id: str, attempt: int) -> Path:
        return self.runs_dir / job_id / f"attempt-{attempt}"

    def _take_indices(self, pool_name: str, allocation, gpus_per_node: int) -> list[list[int]]:
        taken: list[list[int]] = []
        for node, gpus in allocation:
            used = self._used.setdefault((pool_name, node), set())
            free = [i for i in range(gpus_per_node) if i not in used][:gpus]
            if len(free) < gpus:
                for (earlier, _), group in zip(allocation, taken, strict=False):
                    self._used[(pool_name, earlier)].difference_update(group)
                raise RuntimeError(f"{pool_name} node {node}: {gpus} GPU slots are not free")
            used.update(free)
            taken.append(free)
        return taken

    def _free_indices(self, record: dict) -> None:
        for (node, _), indices in zip(record["allocation"], record["indices"], strict=True):
            self._used.get((record["pool"], node), set()).difference_update(indices)

    def _make_work_dir(
        self, site: str, job_id: str, attempt: int, account: Account, script: str | None
    ) -> Path:
        """RUN_ROOT (0711) / job (0711, the service's: a job must not be able to plant a
        link where a later attempt's directory goes) / attempt-n-XXXX (0700, the job's).
        The batch script is written while the directory is still the service's alone."""
        root = self.run_root(site)
        _private_dir(root, 0o711)
        job_dir = root / job_id
        _private_dir(job_dir, 0o711)
        # A fresh name every time: a database started afresh numbers its jobs from 1 again,
        # and an old run's directory (another owner's) must be neither reused nor deleted.
        work = Path(tempfile.mkdtemp(prefix=f"attempt-{attempt}-", dir=job_dir))
        switch = os.geteuid() == 0
        if script is not None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(work / SCRIPT_NAME, flags, 0o700)
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                if switch:
                    os.fchown(out.fileno(), account.uid, account.gid)
                os.fchmod(out.fileno(), 0o700)
                out.write(script)
        if site not in self.private_tmp_reason:  # its own /tmp: made while still ours
            tmp = work / "tmp"
            tmp.mkdir(mode=0o700)
            if switch:
                os.chown(tmp, account.uid, account.gid, follow_symlinks=False)
        if switch:
            os.chown(work, account.uid, account.gid, follow_symlinks=False)
        os.chmod(work, 0o700, follow_symlinks=False)
        return work

    def start(self, request: RunRequest) -> RunHandle:
        check_boundary(self.fleet, request)
        validate_request(request)
        job, pool = request.job, request.pool
        account = self.accounts[pool.site.name].resolve(request.owner, job.tenant)
        logs = self._log_files(request, account)  # a bad pattern takes nothing
        run_dir = self._run_dir(job.job_id, request.attempt)
        _private_dir(run_dir.parent, 0o700)
        run_dir.mkdir(mode=0o700, exist_ok=False)
        with self._lock:
            indices = self._take_indices(pool.name, request.allocation, pool.gpus_per_node)
        leaf = f"{job.job_id}-{request.attempt}"
        try:
            return self._launch(request, account, run_dir, indices, leaf, logs)
        except BaseException:
            # Whatever failed, the GPU slots go back: a refused start must not leave them
            # taken for every later job.
            with self._lock:
                record = {"pool": pool.name, "allocation": request.allocation}
                self._free_indices({**record, "indices": indices})
            if self.confinement is not None:
                self.confinement.remove(leaf)
            raise

    def _launch(
        self,
        request: RunRequest,
        account: Account,
        run_dir: Path,
        indices: list[list[int]],
        leaf: str,
        logs: dict[str, str],
    ) -> RunHandle:
        job, pool = request.job, request.pool
        script = request.batch.script
        flat = ",".join(str(i) for group in indices for i in group)
        site = pool.site.name
        work = self._make_work_dir(site, job.job_id, request.attempt, account, script)
        gpus = sum(g for _, g in request.allocation)
        cgroup = ""
        if self.confinement is not None:
            cgroup = str(self.confinement.create(leaf, self.limits_per_gpu.scaled(gpus)))
        # Every GPU of the allocation is on this one machine: one node, as the job sees it.
        slurm = slurm_environment(
            request.batch,
            job_id=job.job_id,
            command=request.command,
            submit_dir=str(work),
            nodes=1,
            gpus_on_node=gpus,
            node_list=short_hostname(),
        )
        env = job_environment(request, account, str(work), flat, self.nvidia, slurm)
        command = request.command
        if script is not None:
            # Relative to the run directory (the process starts there): the job's account
            # may not be able to pass the directories above it (a 0700 /tmp/... parent).
            command = [f"./{SCRIPT_NAME}", *request.command]
        limit = job.requested_s / max(self._speed(request), 1e-9)
        switch = os.geteuid() == 0
        write_atomically(
            run_dir / "request.json",
            json.dumps(
                {
                    "command": command,
                    "env": env,
                    "job_env": request.env,
                    "gpu_slots": flat,
                    "cwd": str(work),
                    "account": account.name,
                    "uid": account.uid if switch else None,
                    "gid": account.gid if switch else None,
                    "groups": list(account.groups) if switch else [],
                    "cgroup": cgroup,
                    "private_tmp": "" if site in self.private_tmp_reason else str(work / "tmp"),
                    # Relative to cwd, opened by the job's account (runner.become).
                    "stdout_file": logs.get("stdout"),
                    "stderr_file": logs.get("stderr"),
                }
            ),
        )
        log_fd = os.open(run_dir / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_fd, "ab") as log_file:
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
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=runner_environment(),
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
            "cgroup": leaf if cgroup else "",
        }
        with self._lock:
            self._tracked[job.job_id] = record
        return {
            "backend": self.name,
            "dir": str(run_dir),
            "work_dir": str(work),
            "account": account.name,
            "pid": popen.pid,
            "attempt": request.attempt,
            "pool": pool.name,
            "allocation": record["allocation"],
            "indices": indices,
            "cgroup": record["cgroup"],
            "logs": logs,
            "uid": account.uid if switch else None,
        }

    def _log_files(self, request: RunRequest, account: Account) -> dict[str, str]:
        """stream -> file (relative to the run directory) for the streams the job's
        --output/--error patterns place; the others stay in the run's record."""
        batch = request.batch
        try:
            found = batch.log_targets(
                request.job.job_id, request.command, account.name, short_hostname()
            )
        except BadLogPattern as exc:
            raise BadRunRequest(str(exc)) from exc
        files = {}
        for stream, segments in (("stdout", found.stdout), ("stderr", found.stderr)):
            if segments is None:
                continue
            path = render(segments, short_hostname())
            if path != DEV_NULL:
                path = os.path.normpath(path)
            if batch.script is not None and path == SCRIPT_NAME:
                field = "output" if stream == "stdout" else "error"
                raise BadRunRequest(f"{field}: {SCRIPT_NAME!r} is the batch script itself")
            files[stream] = path
        return files

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
                if record.get("cgroup") and self.confinement is not None:
                    self.confinement.remove(record["cgroup"])  # and whatever it left behind
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
            if record.get("cgroup") and self.confinement is not None:
                self.confinement.remove(record["cgroup"])  # a job that left its session

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
            "cgroup": handle.get("cgroup", ""),
        }
        with self._lock:
            self._tracked[job_id] = record
            for (node, _), group in zip(allocation, indices, strict=True):
                self._used.setdefault((record["pool"], node), set()).update(group)
        handle.update(pid=pid, dir=str(run_dir), attempt=attempt)
        return handle

    def log_path(self, job_id: str, handle: RunHandle, stream: str) -> str | None:
        return log_path_of(handle, stream)

    def open_log(self, job_id: str, handle: RunHandle, stream: str) -> BinaryIO | None:
        """A stream placed by a pattern lives in the job's run directory, where the job
        may have swapped it for a link: read it only as a regular file of the job's
        account reached without links. The default streams are the service's record."""
        if not handle or "dir" not in handle:
            return None
        placed = (handle.get("logs") or {}).get(stream)
        if placed is None:
            return open_confined(handle["dir"], f"{stream}.log")
        if placed == DEV_NULL or "work_dir" not in handle:
            return None
        return open_confined(handle["work_dir"], placed, handle.get("uid"))

    def open_recorded_log(self, job_id: str, attempt: int, stream: str) -> BinaryIO | None:
        """`open_log` from this backend's own record of the run (request.json, written
        here) instead of a handle: what the privileged launcher answers, so that a handle
        the service could have forged names no other file, owner or directory."""
        run_dir = self._run_dir(job_id, attempt)
        try:
            request = json.loads((run_dir / "request.json").read_text())
        except (OSError, ValueError):
            return None
        placed = request.get(f"{stream}_file")
        if placed is None:
            return open_confined(str(run_dir), f"{stream}.log")
        if placed == DEV_NULL or not request.get("cwd"):
            return None
        return open_confined(request["cwd"], placed, request.get("uid"))


def log_path_of(handle: RunHandle, stream: str) -> str | None:
    """Where a run's stream is (for display; readers use open_log)."""
    if not handle or "dir" not in handle:
        return None
    placed = (handle.get("logs") or {}).get(stream)
    if placed is not None:
        return None if placed == DEV_NULL else str(Path(handle["work_dir"]) / placed)
    return str(Path(handle["dir"]) / f"{stream}.log")

"""Runs one job's command on this machine and leaves a record a restarted server can read.

    python -m arkwright.backends.runner --dir RECORD_DIR [--time-limit S] [--grace S]

RECORD_DIR belongs to the service (0700): the runner reads `request.json` there (the
command, its environment, the run directory, the account and the cgroup), writes
`runner.pid` first, the command's output to `stdout.log` and `stderr.log`, and finally
`exit.json`. The job cannot write any of them except through its own stdout/stderr, so it
can neither fake how it ended nor point the service at another pid.

The runner keeps the service's privileges (it must write those records and signal the
job); the command's process joins its cgroup, enters its private /tmp where the request
names one (confine.enter_private_tmp), then drops to the job's account
(setgroups, setgid, setuid, in that order, so no privilege is left to regain) and
execs in the run directory with exactly the environment the request gives. It runs in
its own session, so it outlives the server; SIGTERM is passed to the command's process
group, which is killed outright if it has not stopped after a grace period.

Logs an --output/--error pattern places (`stdout_file`, `stderr_file`, relative to the
run directory) are opened by the command's process after it has become the job's
account, so a link the job planted there can lead only where that account may write.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from arkwright.backends.confine import enter_private_tmp, load_libc

GRACE_S = 5.0


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _open_log(path: str) -> int:
    """A log file below the current directory, made (with its directories) by whoever
    runs this: the job's account, by the time it is called."""
    if path == "/dev/null":
        return os.open(path, os.O_WRONLY)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    # Truncated, as sbatch's default --open-mode=truncate.
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOCTTY, 0o600)


def _redirect(stdout_file: str | None, stderr_file: str | None) -> None:
    opened: dict[str, int] = {}
    for target, path in ((1, stdout_file), (2, stderr_file)):
        if path is None:
            continue
        if path not in opened:  # --output alone: stdout and stderr share one file
            try:
                opened[path] = _open_log(path)
            except OSError as exc:
                field = "output" if target == 1 else "error"
                raise OSError(exc.errno, f"{field} {path!r}: {exc.strerror}") from None
        os.dup2(opened[path], target)
    for fd in set(opened.values()):
        if fd > 2:
            os.close(fd)


def become(request: dict, report_fd: int | None = None) -> Callable[[], None]:
    """What the child does between fork and exec. The runner is single-threaded, so a
    preexec function is safe here; it is the one place where cgroup, groups, gid and uid
    can be set in the order that leaves nothing to escape through, and the logs opened
    after. Why a step failed is written to `report_fd` (Python reports only that the
    preexec function failed)."""
    cgroup = request.get("cgroup") or ""
    uid, gid = request.get("uid"), request.get("gid")
    groups = [int(g) for g in request.get("groups") or []]
    stdout_file, stderr_file = request.get("stdout_file"), request.get("stderr_file")
    private_tmp = request.get("private_tmp") or ""
    if private_tmp:
        load_libc()

    def step() -> None:
        try:
            _step()
        except BaseException as exc:
            if report_fd is not None:
                with contextlib.suppress(OSError):
                    os.write(report_fd, str(exc.args[-1] if exc.args else exc).encode()[:4096])
            raise

    def _step() -> None:
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
                procs.write("0")
        if private_tmp:  # still root: a mount namespace of its own (confine.py)
            enter_private_tmp(private_tmp)
        if uid is not None and os.geteuid() == 0 and uid != 0:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            if os.getuid() != uid or os.geteuid() != uid:
                raise OSError("the job's account was not taken")
        os.umask(0o077)
        _redirect(stdout_file, stderr_file)

    return step


def _fail(run_dir: Path, reason: str) -> int:
    with open(run_dir / "stderr.log", "a") as err:
        err.write(f"arkwright: cannot start: {reason}\n")
    write_atomically(
        run_dir / "exit.json",
        json.dumps(
            {
                "exit_code": 127,
                "ending": "failed",
                "reason": f"cannot start: {reason}",
                "ended_at": time.time(),
            }
        ),
    )
    return 127


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--time-limit", type=float, default=0.0)
    parser.add_argument(
        "--grace", type=float, default=GRACE_S, help="seconds between SIGTERM and SIGKILL"
    )
    args = parser.parse_args(argv)
    run_dir: Path = args.dir
    os.umask(0o077)
    write_atomically(run_dir / "runner.pid", str(os.getpid()))
    request = json.loads((run_dir / "request.json").read_text())
    ending, code = "exited", None
    stop = {"signal": None}

    def on_term(signum, _frame) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    started = time.time()
    report_read, report_write = os.pipe()  # both close-on-exec: the job never holds one
    try:
        with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
            child = subprocess.Popen(
                request["command"],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=request.get("cwd") or None,
                env=request.get("env", {}),
                preexec_fn=become(request, report_write),  # single-threaded: see become()
                close_fds=True,
            )
    except OSError as exc:
        os.close(report_write)
        os.close(report_read)
        target = f"{request['command'][0]}: " if request.get("command") else ""
        return _fail(run_dir, target + (exc.strerror or str(exc)))
    except subprocess.SubprocessError as exc:
        os.close(report_write)
        with os.fdopen(report_read, "rb") as report:
            why = report.read(4096).decode(errors="replace")
        return _fail(run_dir, why or str(exc))
    os.close(report_write)
    os.close(report_read)
    deadline = started + args.time_limit if args.time_limit > 0 else None
    term_sent = None
    while True:
        code = child.poll()
        if code is not None:
            break
        now = time.time()
        if term_sent is None and (stop["signal"] or (deadline and now >= deadline)):
            ending = "cancelled" if stop["signal"] else "timeout"
            _signal_group(child.pid, signal.SIGTERM)
            term_sent = now
        elif term_sent is not None and now - term_sent > args.grace:
            _signal_group(child.pid, signal.SIGKILL)
        time.sleep(0.05)
    reason = {
        "timeout": f"time limit of {args.time_limit:g} s reached",
        "cancelled": "cancelled",
    }.get(ending, "")
    if ending == "exited":
        ending = "completed" if code == 0 else "failed"
        reason = "" if code == 0 else f"exit code {code}"
        if code == -signal.SIGKILL and _oom_killed(request.get("cgroup") or ""):
            reason = "killed: out of memory (the run's memory limit)"
    write_atomically(
        run_dir / "exit.json",
        json.dumps(
            {"exit_code": code, "ending": ending, "reason": reason, "ended_at": time.time()}
        ),
    )
    return 0


def _oom_killed(cgroup: str) -> bool:
    if not cgroup:
        return False
    try:
        events = Path(cgroup, "memory.events").read_text().split()
    except OSError:
        return False
    counts = dict(zip(events[::2], events[1::2], strict=False))
    return int(counts.get("oom_kill", "0")) > 0


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


if __name__ == "__main__":
    sys.exit(main())

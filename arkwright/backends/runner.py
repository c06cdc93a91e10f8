"""Runs one job's command on this machine and leaves a record a restarted server can read.

    python -m arkwright.backends.runner --dir RUN_DIR [--time-limit S] -- CMD ...

In RUN_DIR it writes `runner.pid` first, the command's output to `stdout.log` and
`stderr.log`, and finally `exit.json` (exit code, how it ended, when). It runs in its own
session, so it outlives the server that started it; SIGTERM is passed to the command's
process group, which is killed outright if it has not stopped after a grace period.
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
from pathlib import Path

GRACE_S = 5.0


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--time-limit", type=float, default=0.0)
    parser.add_argument(
        "--grace", type=float, default=GRACE_S, help="seconds between SIGTERM and SIGKILL"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    run_dir: Path = args.dir
    write_atomically(run_dir / "runner.pid", str(os.getpid()))
    ending, code = "exited", None
    stop = {"signal": None}

    def on_term(signum, _frame) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    started = time.time()
    try:
        with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
            child = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )
    except OSError as exc:
        (run_dir / "stderr.log").open("a").write(f"arkwright: cannot start: {exc}\n")
        write_atomically(
            run_dir / "exit.json",
            json.dumps(
                {
                    "exit_code": 127,
                    "ending": "failed",
                    "reason": f"cannot start: {exc.strerror}",
                    "ended_at": time.time(),
                }
            ),
        )
        return 127
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
    write_atomically(
        run_dir / "exit.json",
        json.dumps(
            {"exit_code": code, "ending": ending, "reason": reason, "ended_at": time.time()}
        ),
    )
    return 0


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


if __name__ == "__main__":
    sys.exit(main())

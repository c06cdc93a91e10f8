"""`python -m arkwright.cli --help` lists every command the package registers."""

from __future__ import annotations

import subprocess
import sys

from arkwright.cli import app

COMMANDS = {
    "fleet", "trace", "simulate", "compare", "plan", "serve", "admin", "submit", "jobs",
    "job", "cancel", "logs", "usage", "sbatch", "squeue", "sacct", "scancel", "scontrol",
}  # fmt: skip


def test_python_m_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "arkwright.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", "TERM": "dumb"},
    )
    assert out.returncode == 0, out.stderr
    listed = {line.split()[1] for line in out.stdout.splitlines() if line.startswith("│ ")}
    registered = {c.name or c.callback.__name__ for c in app.registered_commands}
    registered |= {g.name for g in app.registered_groups}
    assert registered == COMMANDS
    assert listed >= COMMANDS, sorted(COMMANDS - listed)


def test_admin_has_bootstrap_token_and_revoke() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "arkwright.cli", "admin", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", "TERM": "dumb"},
    )
    assert out.returncode == 0, out.stderr
    for command in ("bootstrap", "token", "revoke"):
        assert f"│ {command} " in out.stdout

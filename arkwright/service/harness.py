"""Run a real `arkwright serve` process on loopback: for tests, benchmarks and demos."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from arkwright.service.db import Base, make_engine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wipe_database(url: str) -> str:
    """Drop Arkwright's tables (and Alembic's record) so the next start migrates afresh."""
    engine = make_engine(url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


def start_server(
    db_url: str,
    data_dir: Path,
    port: int,
    *extra: str,
    timeout_s: float = 30.0,
    log: Path | None = None,
) -> subprocess.Popen:
    """Start `arkwright serve` in its own session and wait until /healthz answers.
    Its output goes to `log` when given (else nowhere)."""
    output = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arkwright",
            "serve",
            "--db",
            db_url,
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
            *extra,
        ],
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    if log is not None:
        output.close()  # the child has its own descriptor
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"arkwright serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"arkwright serve did not answer on port {port} in {timeout_s:g} s")

"""The README's first steps, exactly as a newcomer takes them.

From a fresh, empty directory, with every default (the relative data directory included):
`arkwright admin bootstrap`, `arkwright serve`, then the README's first job. It must
complete on its first attempt with its output in the log. The other service tests all use
absolute temporary paths, which is how a relative data directory once broke every job.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _arkwright() -> list[str]:
    script = Path(sys.executable).with_name("arkwright")
    return [str(script)] if script.exists() else [sys.executable, "-m", "arkwright.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s:g} s")


@pytest.mark.skipif(shutil.which("bash") is None, reason="the README's job runs bash")
def test_readme_first_job_from_an_empty_directory(tmp_path: Path) -> None:
    home = tmp_path / "newcomer"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKWRIGHT_")}
    ark = _arkwright()
    boot = subprocess.run(
        [*ark, "admin", "bootstrap"], cwd=home, env=env, capture_output=True, text=True, timeout=60
    )
    assert boot.returncode == 0, boot.stderr
    token = boot.stdout.strip().splitlines()[-1]
    assert token.startswith("ark_")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "serve.log").open("w")
    server = subprocess.Popen(
        [*ark, "serve", "--port", str(port)], cwd=home, env=env, stdout=log, stderr=log
    )
    try:

        def healthy() -> bool:
            assert server.poll() is None, (home / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(healthy, 60, "the server to answer /healthz")
        client_env = {**env, "ARKWRIGHT_URL": url, "ARKWRIGHT_TOKEN": token}
        readme_job = "submit --tenant research --gpus 1 --time 5m --"
        submit = subprocess.run(
            [*ark, *readme_job.split(), "bash", "-c", "echo hello"],
            cwd=home,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert submit.returncode == 0, submit.stdout + submit.stderr
        job_id = submit.stdout.split()[1]
        headers = {"Authorization": f"Bearer {token}"}

        def ended() -> dict | None:
            job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers, timeout=5).json()
            return job if job["state"] in ("completed", "failed", "cancelled") else None

        job = _wait(ended, 30, f"{job_id} to end")
        assert (job["state"], job["attempts"]) == ("completed", 1), job
        logs = httpx.get(f"{url}/v1/jobs/{job_id}/logs", headers=headers, timeout=5)
        assert logs.text == "hello\n"
        # The default data directory is where the README says: under the directory served from.
        assert (home / "arkwright-data" / "arkwright.db").exists()
        # The admin's next step: a token that expires, made from the CLI.
        made = subprocess.run(
            [*ark, "admin", "token", "--ttl", "30d"],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        assert "valid until 20" in made.stdout
        fresh = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
        assert httpx.get(f"{url}/v1/jobs", headers=fresh, timeout=5).status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()

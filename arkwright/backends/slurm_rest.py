"""Reaching Slurm through slurmrestd (OpenAPI v0.0.38, Slurm 22.05) with a JWT.

For sites that expose slurmrestd rather than a login node. The token is read from a file
or an environment variable on every call (sites rotate them), never from the fleet file.
The work directory must be a filesystem this machine shares with the cluster: it is
where the job's logs and exit record are read.

slurmrestd 22.05 accepts `requeue: false` but ignores it, so a job Slurm requeued by
itself shows a restart count; the backend then takes the job back and places it again,
as it would after NODE_FAIL, rather than let Slurm run it a second time behind our back.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from arkwright.backends.base import BackendUnavailable
from arkwright.backends.slurm_client import SlurmError, SlurmStatus, Submission
from arkwright.fleets.slurm_settings import SlurmSettings

API = "slurm/v0.0.38"
# The controller is away, or cannot take work right now (its nodes are down or still
# registering after a restart): not the job's fault, and no reason to fail it.
_UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "required node not available",
    "temporarily unable",
)
# Slurm's own error numbers for "no such job" and "already ended". (With the controller
# down, slurmrestd 22.05 says "Unable to find JobId" too, but with error_number -1.)
_NO_SUCH_JOB = {2017, 2021}


def _wait_status(raw: int | None) -> int | None:
    """slurmrestd reports the raw wait status: exit code in the high byte, signal low."""
    if raw is None:
        return None
    signal, code = raw & 0x7F, (raw >> 8) & 0xFF
    return code if signal == 0 else 128 + signal


class SlurmRest:
    def __init__(self, settings: SlurmSettings, transport: httpx.BaseTransport | None = None):
        if not settings.rest_url:
            raise ValueError("SlurmRest needs slurm.rest_url")
        self.settings = settings
        self.client = httpx.Client(
            base_url=settings.rest_url.rstrip("/") + "/",
            timeout=settings.command_timeout_s,
            transport=transport,
        )

    def _token(self) -> str:
        if self.settings.rest_token_file:
            try:
                text = Path(self.settings.rest_token_file).read_text().strip()
            except OSError as exc:
                raise BackendUnavailable(f"cannot read the Slurm token: {exc}") from exc
        else:
            text = os.environ.get(self.settings.rest_token_env, "")
        # `scontrol token` prints SLURM_JWT=...; accept the file as it writes it.
        return text.removeprefix("SLURM_JWT=")

    def call(
        self, method: str, path: str, body: dict | None = None, as_user: str | None = None
    ) -> dict:
        # Impersonation: with a token of SlurmUser (or root), slurmrestd acts as the user
        # this header names, so the job is that user's, as if they had run sbatch.
        headers = {
            "X-SLURM-USER-NAME": as_user or self.settings.rest_user,
            "X-SLURM-USER-TOKEN": self._token(),
        }
        try:
            response = self.client.request(method, f"{API}/{path}", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"slurmrestd: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        errors = [e for e in data.get("errors", []) if e.get("error") or e.get("description")]
        message = "; ".join(e.get("description") or e.get("error", "") for e in errors)
        if response.status_code in (401, 403):
            raise BackendUnavailable(f"slurmrestd refused the token ({response.status_code})")
        if any(e.get("error_number") in _NO_SUCH_JOB for e in errors):
            raise SlurmError(f"slurmrestd: invalid job id: {message}")  # an answer, not an outage
        # slurmrestd answers most errors with 500; Slurm's own error number tells a refusal
        # (a positive number) from trouble reaching the controller (-1, or none at all).
        refused = any((e.get("error_number") or -1) > 0 for e in errors)
        if any(n in message.lower() for n in _UNREACHABLE) or (
            response.status_code >= 500 and not refused
        ):
            raise BackendUnavailable(f"slurmrestd: {message or response.status_code}")
        if errors or response.status_code >= 400:
            raise SlurmError(f"slurmrestd: {message or response.status_code}")
        return data

    # ------------------------------------------------------------ SlurmClient

    def prepare(self, work_dir: str) -> None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)

    def submit(self, script: str, submission: Submission) -> str:
        job = {
            "name": submission.name,
            "comment": submission.comment,
            "partition": submission.partition,
            "nodes": submission.nodes,
            "tasks_per_node": 1,
            "gres": submission.gres_per_node,
            "time_limit": submission.time_limit_min,
            "current_working_directory": submission.work_dir,
            "standard_output": submission.stdout,
            "standard_error": submission.stderr,
            "requeue": False,
            # Nothing from this service's environment reaches the job.
            "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        }
        if submission.account:
            job["account"] = submission.account
        if submission.qos:
            job["qos"] = submission.qos
        data = self.call(
            "POST", "job/submit", {"script": script, "job": job}, as_user=submission.user
        )
        if not data.get("job_id"):
            raise SlurmError(f"slurmrestd gave no job id: {data}")
        return str(data["job_id"])

    def _jobs(self) -> list[dict]:
        return self.call("GET", "jobs").get("jobs", [])

    @staticmethod
    def _status(job: dict) -> SlurmStatus:
        return SlurmStatus(
            state=str(job.get("job_state", "")),
            reason=str(job.get("state_reason", "")),
            ended_at=float(job["end_time"]) if job.get("end_time") else None,
            exit_code=_wait_status(job.get("exit_code")),
            restarts=int(job.get("restart_cnt") or 0),
        )

    def statuses(self, slurm_ids: list[str]) -> dict[str, SlurmStatus]:
        wanted = set(slurm_ids)
        if len(wanted) == 1:  # one job: ask for it alone
            (slurm_id,) = wanted
            try:
                jobs = self.call("GET", f"job/{slurm_id}").get("jobs", [])
            except SlurmError as exc:
                if "invalid job id" in str(exc).lower():
                    return {}
                raise
        else:
            jobs = self._jobs()
        return {str(j["job_id"]): self._status(j) for j in jobs if str(j["job_id"]) in wanted}

    def find(self, names: list[str]) -> list[tuple[str, str]]:
        wanted = set(names)
        return [
            (str(j["job_id"]), str(j.get("comment", "")))
            for j in self._jobs()
            if j.get("name") in wanted
        ]

    def cancel(self, slurm_id: str) -> None:
        self.call("DELETE", f"job/{slurm_id}")

    def exit_code(self, slurm_id: str) -> int | None:
        status = self.statuses([slurm_id]).get(slurm_id)
        return status.exit_code if status else None

    def accounting(
        self, slurm_id: str, name: str, submitted_at: float
    ) -> tuple[SlurmStatus, int | None] | None:
        return None  # slurmdbd's REST API is a separate service; the exit record serves

    def read_file(self, path: str) -> str | None:
        try:
            return Path(path).read_text()
        except OSError:
            return None

"""Running Slurm's own commands for one site: here, or on a login node over ssh.

Slurm's command-line tools are the interface every site gives its users, and their
output formats have been stable for a decade; slurmrestd needs JWT set-up on the site and
its OpenAPI schema changes with each release. So Arkwright talks to Slurm the way a
user does, and reads the output formats it asks for.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from datetime import datetime

from arkwright.backends.base import BackendUnavailable
from arkwright.fleets.slurm_settings import SlurmSettings

# Messages that mean "the controller (or the way to it) is not there right now".
_UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "zero bytes were transmitted",
    "communication connection failure",
    "slurm_persist_conn",
    "could not resolve hostname",
    "connection timed out",
    "no route to host",
    "munge",
)


class SlurmCommandError(RuntimeError):
    """Slurm answered and said no (bad partition, unknown account...)."""


class SlurmCommands:
    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings

    def _argv(self, args: list[str]) -> list[str]:
        if self.settings.slurm_conf:
            args = ["env", f"SLURM_CONF={self.settings.slurm_conf}", *args]
        if not self.settings.ssh:
            return args
        ssh = ["ssh", "-o", "BatchMode=yes", *self.settings.ssh_options, self.settings.ssh]
        return [*ssh, shlex.join(args)]  # ssh hands the remote shell one string

    def run(self, args: list[str], stdin: str | None = None) -> str:
        """stdout of a command that succeeded; BackendUnavailable or SlurmCommandError."""
        argv = self._argv(args)
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.settings.command_timeout_s,
                env={**os.environ, "SLURM_TIME_FORMAT": "standard"},
            )
        except FileNotFoundError as exc:
            raise BackendUnavailable(f"{argv[0]} is not installed here") from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailable(
                f"{args[0]} did not answer in {self.settings.command_timeout_s:g} s"
            ) from exc
        if done.returncode == 0:
            return done.stdout
        message = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        if (self.settings.ssh and done.returncode == 255) or any(
            needle in message.lower() for needle in _UNREACHABLE
        ):
            raise BackendUnavailable(f"{args[0]}: {message}")
        raise SlurmCommandError(f"{args[0]}: {message}")


def parse_slurm_time(text: str) -> float | None:
    """Epoch seconds from Slurm's `standard` time format (local time), None for Unknown."""
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None

"""Reaching Slurm through its own commands: here, or on a login node over ssh.

Slurm's command-line tools are the interface every site gives its users, and the output
formats asked for here have been stable for a decade. sbatch's `--no-requeue` is honoured
(slurmrestd 22.05 ignores `requeue: false`), which is why this is the default way in.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from datetime import datetime
from pathlib import Path

from arkwright.backends.base import BackendUnavailable
from arkwright.backends.slurm_client import AccountingNotYet, SlurmError, SlurmStatus, Submission
from arkwright.fleets.slurm_settings import SlurmSettings

# Messages that mean "the controller (or the way to it) is not there right now", or that
# it cannot take work now (nodes down or still registering after a restart).
_UNREACHABLE = (
    "required node not available",
    "temporarily unable",
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
_EXIT_CODE = re.compile(r"\bExitCode=(\d+):(\d+)")


# How far the site's clock may sit behind ours when accounting's submit times are
# compared with the time Arkwright recorded just before it called sbatch.
_CLOCK_SLACK_S = 120.0
# The name slurmdbd gives a job it first hears of from its end (its start message was
# lost with the controller): such a record is still this job's, found by id and time.
_NAME_UNHEARD = "allocation"


def parse_slurm_time(text: str) -> float | None:
    """Epoch seconds from Slurm's `standard` time format (local time), None for Unknown."""
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def exit_status(code: int, signal: int) -> int:
    """Slurm's code:signal pair as a shell would report it (128 + signal when killed)."""
    return code if signal == 0 else 128 + signal


class SlurmCli:
    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings
        self._has_sacct: bool | None = None  # learnt on first use

    def _argv(self, args: list[str], as_user: str | None = None) -> list[str]:
        if self.settings.slurm_conf:
            args = ["env", f"SLURM_CONF={self.settings.slurm_conf}", *args]
        if as_user:
            # The service is root here (settings refuse run_as = "owner" over ssh): the
            # command runs as the job's owner, so munge vouches for that uid, not ours.
            args = ["runuser", "-u", as_user, "--", *args]
        if not self.settings.ssh:
            return args
        ssh = ["ssh", "-o", "BatchMode=yes", *self.settings.ssh_options, self.settings.ssh]
        return [*ssh, shlex.join(args)]  # ssh hands the remote shell one string

    def run(self, args: list[str], stdin: str | None = None, as_user: str | None = None) -> str:
        """stdout of a command that succeeded; BackendUnavailable or SlurmError."""
        argv = self._argv(args, as_user)
        # A command run as a job's owner gets no secret of ours: that user's other
        # processes could read its environment.
        base = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
        env = base if as_user else dict(os.environ)
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.settings.command_timeout_s,
                env={**env, "SLURM_TIME_FORMAT": "standard"},
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
        raise SlurmError(f"{args[0]}: {message}")

    # ------------------------------------------------------------ SlurmClient

    def sbatch_args(self, submission: Submission) -> list[str]:
        args = [
            "sbatch",
            "--parsable",
            f"--job-name={submission.name}",
            f"--comment={submission.comment}",
            f"--partition={submission.partition}",
            f"--nodes={submission.nodes}",
            "--ntasks-per-node=1",
            f"--gres={submission.gres_per_node}",
            f"--time={submission.time_limit_min}",
            f"--chdir={submission.work_dir}",
            f"--output={submission.stdout}",
            f"--error={submission.stderr}",
            "--no-requeue",
            "--export=NONE",
        ]
        if submission.account:
            args.append(f"--account={submission.account}")
        if submission.qos:
            args.append(f"--qos={submission.qos}")
        return [*args, *self.settings.extra_args]

    def prepare(self, work_dir: str) -> None:
        if self.settings.ssh:
            self.run(["mkdir", "-p", work_dir])
        else:  # the same filesystem: no process to start
            Path(work_dir).mkdir(parents=True, exist_ok=True)

    def submit(self, script: str, submission: Submission) -> str:
        out = self.run(self.sbatch_args(submission), stdin=script, as_user=submission.user)
        slurm_id = out.strip().split(";")[0]
        if not slurm_id.isdigit():
            raise SlurmError(f"sbatch printed {out.strip()!r}, not a job id")
        return slurm_id

    def statuses(self, slurm_ids: list[str]) -> dict[str, SlurmStatus]:
        found: dict[str, SlurmStatus] = {}
        for chunk in range(0, len(slurm_ids), 500):
            ids = ",".join(slurm_ids[chunk : chunk + 500])
            try:
                out = self.run(["squeue", "-h", "-t", "all", f"--jobs={ids}", "-o", "%i|%T|%r|%e"])
            except SlurmError as exc:
                if "invalid job id" in str(exc).lower():
                    continue  # none of this chunk is known any more
                raise
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 4:
                    found[parts[0]] = SlurmStatus(parts[1], parts[2], parse_slurm_time(parts[3]))
        return found

    def find(self, names: list[str]) -> list[tuple[str, str]]:
        out = self.run(["squeue", "-h", "-t", "all", f"--name={','.join(names)}", "-o", "%i|%k"])
        pairs = []
        for line in out.splitlines():
            slurm_id, _, comment = line.strip().partition("|")
            pairs.append((slurm_id, comment.strip()))
        return pairs

    def cancel(self, slurm_id: str) -> None:
        self.run(["scancel", slurm_id])

    def exit_code(self, slurm_id: str) -> int | None:
        out = self.run(["scontrol", "-o", "show", "job", slurm_id])
        match = _EXIT_CODE.search(out)
        return exit_status(int(match.group(1)), int(match.group(2))) if match else None

    def accounting(
        self, slurm_id: str, name: str, submitted_at: float
    ) -> tuple[SlurmStatus, int | None] | None:
        if self._has_sacct is False:
            return None
        # A controller that lost its state hands out ids from 1 again, so accounting may
        # hold several jobs of this id: ask for all of them (--duplicates) from shortly
        # before this submission and take the one submitted nearest to it. The name is
        # not asked of sacct: where slurmdbd heard a job's end before its start (the
        # controller went down with the start message queued), it records the job under
        # the placeholder name "allocation", and a filter by name would never find it.
        since = submitted_at - _CLOCK_SLACK_S
        window = datetime.fromtimestamp(since).strftime("%Y-%m-%dT%H:%M:%S")
        try:
            query = ["-j", slurm_id, "--duplicates", "-S", window]
            fields = "State,ExitCode,End,Submit,JobName"  # the name last: it may hold "|"
            out = self.run(["sacct", "-n", "-X", "-P", *query, "-o", fields])
        except SlurmError as exc:
            if "accounting storage is disabled" in str(exc).lower():
                self._has_sacct = False  # this site keeps none: stop asking
                return None
            raise AccountingNotYet(f"sacct: {exc}") from exc
        except BackendUnavailable as exc:
            # The controller answered squeue a moment ago; it is accounting (slurmdbd or
            # its database) that is away: no answer yet, not "no record".
            raise AccountingNotYet(f"accounting not answering: {exc}") from exc
        self._has_sacct = True
        nearest: tuple[float, SlurmStatus, int | None] | None = None
        for line in out.splitlines():
            state, code, end, submit, job_name = [*line.split("|", 4), "", "", "", "", ""][:5]
            submitted = parse_slurm_time(submit)
            if not state or submitted is None or job_name not in (name, _NAME_UNHEARD):
                continue  # another job's record
            off_by = abs(submitted - submitted_at)
            if off_by > _CLOCK_SLACK_S:
                continue  # a job that had this id before (or after) the controller forgot
            parts = code.split(":")
            exit_code = (
                exit_status(int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
                if parts[0].isdigit()
                else None
            )
            if nearest is None or off_by < nearest[0]:
                status = SlurmStatus(state.split()[0], "", parse_slurm_time(end))
                nearest = (off_by, status, exit_code)
        if nearest is None:
            raise AccountingNotYet(f"sacct has no record of job {slurm_id} ({name}) yet")
        return nearest[1], nearest[2]

    def read_file(self, path: str) -> str | None:
        try:
            return self.run(["cat", path])
        except SlurmError:
            return None

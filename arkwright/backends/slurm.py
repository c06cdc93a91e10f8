"""A site run by Slurm: the core places a job on a pool, this submits it to the pool's
partition, watches it and cancels it — through Slurm's commands (sbatch, squeue, scancel;
here or over ssh) or through slurmrestd, whichever the site's fleet entry names.

Nothing is lost or run twice:
- each submission carries its Arkwright identity (`--job-name ark-<job>`, `--comment
  arkwright:<job>:<attempt>`), so a start the control plane recorded but whose handle it
  never saw (a crash right after sbatch) is found again by name, not submitted twice;
- `--no-requeue`: Slurm never re-runs a job by itself. When Slurm loses one through no
  fault of the job (NODE_FAIL, BOOT_FAIL, PREEMPTED, purged while we were away), this
  reports it LOST and the control plane places it again, on any eligible site;
- the batch script writes an exit record beside the job's logs, so a job that ended and
  was purged from the controller's memory while Arkwright was down is still settled by
  its own exit code; `sacct` is asked first where the site keeps accounting, and while
  it cannot say yet (slurmdbd lags the controller) the job is asked about again, for a
  bounded time, rather than called lost and run twice;
- when the controller does not answer, runs stay tracked (jobs keep running under
  slurmd) and are judged when it answers again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from arkwright.backends.accounts import Account, AccountResolver
from arkwright.backends.base import (
    BackendUnavailable,
    Ending,
    Outcome,
    RunHandle,
    RunRequest,
    StartRefused,
    check_boundary,
)
from arkwright.backends.log_patterns import DEV_NULL, open_confined, render
from arkwright.backends.slurm_batch import (
    NODE_RECORD,
    batch_script,
    log_targets,
    node_name,
    segments_to_json,
)
from arkwright.backends.slurm_cli import SlurmCli
from arkwright.backends.slurm_client import (
    AccountingNotYet,
    SlurmClient,
    SlurmError,
    SlurmStatus,
    Submission,
)
from arkwright.backends.slurm_rest import SlurmRest
from arkwright.core.fleet import Fleet
from arkwright.fleets.identity import SLURM_DEFAULT
from arkwright.fleets.slurm_settings import SlurmSettings

log = logging.getLogger("arkwright.slurm")

# Slurm job states that are not over yet.
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "RESIZING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESV_DEL_HOLD",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)

# Terminal states: what they mean for Arkwright, and the reason it records.
ENDINGS: dict[str, tuple[Ending, str]] = {
    "COMPLETED": (Ending.COMPLETED, ""),
    "FAILED": (Ending.FAILED, "exited with a non-zero status"),
    "TIMEOUT": (Ending.FAILED, "hit its time limit"),
    "OUT_OF_MEMORY": (Ending.FAILED, "ran out of memory"),
    "DEADLINE": (Ending.FAILED, "passed its deadline"),
    "SPECIAL_EXIT": (Ending.FAILED, "ended with a special exit"),
    "CANCELLED": (Ending.CANCELLED, "cancelled in Slurm"),
    "NODE_FAIL": (Ending.LOST, "its node failed"),
    "BOOT_FAIL": (Ending.LOST, "its node failed to boot"),
    "PREEMPTED": (Ending.LOST, "preempted by Slurm"),
    "REVOKED": (Ending.LOST, "revoked by a Slurm federation"),
}


@dataclass
class _Run:
    job_id: str
    attempt: int
    run_dir: str
    slurm_id: str | None  # None: submitted (perhaps) but the id was never recorded
    submitted_at: float
    last_state: str = ""
    last_error: str = ""  # the SlurmError that last kept it from being judged
    unknown_since: float | None = None  # first seen missing from the controller
    undecided: str = ""  # why, since then, neither accounting nor an exit record could tell


def _closed_ancestor(path: Path) -> Path | None:
    """The first existing directory above `path` that other accounts may not pass."""
    for above in path.parents:
        try:
            if above.exists() and not above.stat().st_mode & 0o001:
                return above
        except OSError:
            return above
    return None


def client_for(settings: SlurmSettings) -> SlurmClient:
    return SlurmRest(settings) if settings.rest_url else SlurmCli(settings)


class SlurmBackend:
    def __init__(
        self,
        fleet: Fleet,
        site_name: str,
        settings: SlurmSettings,
        work_dir: Path | str,
        clock=time.time,
        client: SlurmClient | None = None,
    ) -> None:
        self.name = "slurm"
        self.time_scale = 1.0
        self.fleet = fleet
        self.site_name = site_name
        self.settings = settings
        self.work_dir = str(settings.work_dir or work_dir)
        self.client = client or client_for(settings)
        self.clock = clock
        self._lock = threading.Lock()
        self._tracked: dict[str, _Run] = {}
        self._cancels_owed: dict[str, str] = {}  # slurm id -> job id, for when it answers
        self._unsure: list[_Run] = []  # submissions whose answer never came
        self._events: list[tuple[str, str, str]] = []  # (job id, kind, detail)
        self._next_poll = 0.0
        self.reachable = True
        self.accounts: AccountResolver | None = None
        if settings.run_as == "owner":
            # Accounts are the cluster's: Arkwright maps to them, it never creates them.
            identity = (settings.identity or SLURM_DEFAULT).model_copy(update={"create": False})
            self.accounts = AccountResolver(site_name, identity)
            closed = _closed_ancestor(Path(self.work_dir))
            if closed is not None:
                log.warning(
                    "site %s: %s is closed to other accounts, so jobs run as their owners "
                    "cannot reach their run directories under %s: set [sites.slurm] work_dir "
                    "to a directory outside the service's data directory",
                    site_name,
                    closed,
                    self.work_dir,
                )
        else:
            log.warning(
                "site %s: every job is submitted as the service's own account "
                "(run_as = 'service'): tenants' jobs can read each other's files there",
                site_name,
            )

    # ------------------------------------------------------------------ start

    def _run_dir(self, job_id: str, attempt: int) -> str:
        return f"{self.work_dir}/{job_id}/attempt-{attempt}"

    def _owner_account(self, request: RunRequest) -> Account | None:
        if self.accounts is None:
            return None
        return self.accounts.resolve(request.owner, request.job.tenant)

    def _give(self, run_dir: str, account: Account) -> None:
        """The run directory becomes the owner's (0700); the directories above it stay
        the service's (0711), so no job can plant a link where a later run's goes."""
        for above in (self.work_dir, str(Path(run_dir).parent)):
            os.chmod(above, 0o711)
        os.chown(run_dir, account.uid, account.gid, follow_symlinks=False)
        os.chmod(run_dir, 0o700, follow_symlinks=False)

    def submission(
        self, request: RunRequest, run_dir: str, account: Account | None = None
    ) -> Submission:
        job, pool = request.job, request.pool
        short = pool.name.split("/", 1)[1]
        per_node = max(gpus for _, gpus in request.allocation)
        limit_s = job.requested_s / (job.speed or 1.0)
        return Submission(
            name=f"ark-{job.job_id}",
            comment=f"arkwright:{job.job_id}:{request.attempt}",
            partition=self.settings.partition_for(short),
            nodes=len(request.allocation),
            gres_per_node=self.settings.gres_for(short, per_node),
            time_limit_min=max(1, math.ceil(limit_s / 60)),
            work_dir=run_dir,
            account=self.settings.account_for(job.tenant),
            qos=self.settings.qos,
            user=account.name if account else None,
        )

    def start(self, request: RunRequest) -> RunHandle:
        check_boundary(self.fleet, request)
        job = request.job
        if not request.command and request.batch.script is None:
            raise ValueError(f"job {job.job_id} has no command to run on {request.pool.name}")
        account = self._owner_account(request)  # AccountRefused: nothing submitted
        run_dir = self._run_dir(job.job_id, request.attempt)
        user = account.name if account else request.owner
        targets = log_targets(request, user)  # a bad pattern: nothing submitted
        script = batch_script(request, run_dir, user, targets)
        try:
            self.client.prepare(run_dir)
            if account is not None:
                self._give(run_dir, account)
            slurm_id = self.client.submit(script, self.submission(request, run_dir, account))
        except SlurmError as exc:
            raise StartRefused(str(exc)) from exc
        except BackendUnavailable:
            # The controller may have taken the job before its answer was lost. The job
            # is placed again as a later attempt, so such a run would be a duplicate:
            # look for it, and cancel it, once Slurm answers.
            unsure = _Run(job.job_id, request.attempt, run_dir, None, self.clock())
            with self._lock:
                self._unsure.append(unsure)
            raise
        run = _Run(job.job_id, request.attempt, run_dir, slurm_id, self.clock(), "SUBMITTED")
        with self._lock:
            self._tracked[job.job_id] = run
        self._event(job.job_id, "slurm", f"submitted as Slurm job {slurm_id}")
        handle = self._handle(run, request.pool.name)
        logs = {"stdout": targets.stdout, "stderr": targets.stderr}
        handle["logs"] = {k: segments_to_json(v) for k, v in logs.items() if v is not None}
        handle["uid"] = account.uid if account else None
        return handle

    def _handle(self, run: _Run, pool: str = "") -> RunHandle:
        return {
            "backend": self.name,
            "site": self.site_name,
            "slurm_job_id": run.slurm_id,
            "dir": run.run_dir,
            "attempt": run.attempt,
            "pool": pool,
            "submitted_at": run.submitted_at,
        }

    # ------------------------------------------------------------------ watch

    def find_by_name(self, runs: list[_Run]) -> dict[str, str]:
        """Arkwright job id -> Slurm job id, for runs whose submission went unrecorded."""
        wanted = {f"arkwright:{run.job_id}:{run.attempt}": run.job_id for run in runs}
        found = {}
        for slurm_id, comment in self.client.find([f"ark-{run.job_id}" for run in runs]):
            if comment in wanted:
                found[wanted[comment]] = slurm_id
        return found

    def poll(self, now: float) -> list[Outcome]:
        if now < self._next_poll:
            return []
        self._next_poll = now + self.settings.poll_interval_s
        with self._lock:
            runs = list(self._tracked.values())
        try:
            self._pay_cancels()
            self._sweep_unsure()
            if not runs:
                return []
            outcomes = self._judge_all(runs, now)
        except BackendUnavailable as exc:
            if self.reachable:
                log.warning("site %s: Slurm not answering: %s", self.site_name, exc)
                for run in runs:
                    self._event(run.job_id, "slurm", f"controller not answering: {exc}")
            self.reachable = False
            return []
        if not self.reachable:
            log.info("site %s: Slurm answering again", self.site_name)
            for run in runs:
                self._event(run.job_id, "slurm", "controller answering again")
        self.reachable = True
        with self._lock:
            for outcome in outcomes:
                self._tracked.pop(outcome.job_id, None)
        return outcomes

    def _judge_all(self, runs: list[_Run], now: float) -> list[Outcome]:
        """Each run judged on its own: Slurm refusing to answer about one job (a
        SlurmError) leaves that run tracked, to be asked again, and the others settled."""
        outcomes: list[Outcome] = []
        unnamed = [run for run in runs if run.slurm_id is None]
        if unnamed:
            try:
                found = self.find_by_name(unnamed)
            except SlurmError as exc:
                for run in unnamed:
                    self._not_judged(run, exc)
            else:
                for run in unnamed:
                    run.slurm_id = found.get(run.job_id)
                outcomes += [
                    Outcome(run.job_id, Ending.LOST, now, None, "its start never reached Slurm")
                    for run in unnamed
                    if run.slurm_id is None
                ]
        named = [run for run in runs if run.slurm_id is not None]
        statuses, unanswered = self._statuses(named)
        for run in named:
            if run.slurm_id in unanswered:
                continue
            status = statuses.get(str(run.slurm_id))
            try:
                outcome = (
                    self._settle_unknown(run, now)
                    if status is None
                    else self._judge(run, status, now)
                )
            except SlurmError as exc:
                self._not_judged(run, exc)
                continue
            run.last_error = ""
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _statuses(self, runs: list[_Run]) -> tuple[dict[str, SlurmStatus], set[str]]:
        """Statuses of all runs at once; if Slurm refuses the batch, of each alone, so one
        job it will not answer for cannot stop the site's others being seen. Returns the
        statuses and the ids Slurm would not answer for."""
        ids = [str(run.slurm_id) for run in runs]
        if not ids:
            return {}, set()
        try:
            return self.client.statuses(ids), set()
        except SlurmError:
            pass
        statuses: dict[str, SlurmStatus] = {}
        unanswered: set[str] = set()
        for run in runs:
            try:
                statuses.update(self.client.statuses([str(run.slurm_id)]))
            except SlurmError as exc:
                unanswered.add(str(run.slurm_id))
                self._not_judged(run, exc)
        return statuses, unanswered

    def _not_judged(self, run: _Run, exc: SlurmError) -> None:
        if str(exc) != run.last_error:  # once per distinct error, not once per poll
            run.last_error = str(exc)
            log.warning("site %s: job %s not judged this time: %s", self.site_name, run.job_id, exc)
            self._event(run.job_id, "slurm", f"Slurm would not answer for it: {exc}")

    def _judge(self, run: _Run, status: SlurmStatus, now: float) -> Outcome | None:
        if status.state != run.last_state:
            run.last_state = status.state
            reason = f" ({status.reason})" if status.reason not in ("", "None") else ""
            self._event(run.job_id, "slurm", f"Slurm job {run.slurm_id}: {status.state}{reason}")
        if status.state in ACTIVE_STATES:
            if status.restarts:
                # Slurm requeued it by itself (a site that ignores --no-requeue): take it
                # back, so only Arkwright decides where it runs again.
                return self._take_back(run, now, f"requeued by itself ({status.reason})")
            waited = now - run.submitted_at
            if status.state == "PENDING" and waited > self.settings.pending_timeout_s:
                return self._take_back(
                    run, now, f"kept pending for {waited:.0f} s ({status.reason})"
                )
            return None
        ending, reason = ENDINGS.get(status.state, (Ending.FAILED, "ended"))
        exit_code = status.exit_code if status.exit_code is not None else self._exit_code(run)
        if ending is Ending.FAILED and exit_code:
            reason = f"{reason} ({exit_code})" if status.state != "FAILED" else f"exit {exit_code}"
        detail = f"Slurm job {run.slurm_id} {status.state}" + (f": {reason}" if reason else "")
        return Outcome(run.job_id, ending, status.ended_at or now, exit_code, detail)

    def _take_back(self, run: _Run, now: float, why: str) -> Outcome:
        """Cancel a job Slurm holds and report it lost, for Arkwright to place again."""
        self.client.cancel(str(run.slurm_id))
        return Outcome(
            run.job_id, Ending.LOST, now, None, f"Slurm {why}: job {run.slurm_id}; placing it again"
        )

    def _exit_code(self, run: _Run) -> int | None:
        try:
            return self.client.exit_code(str(run.slurm_id))
        except SlurmError:
            record = self._exit_record(run)
            return record.get("exit_code") if record else None

    def _exit_record(self, run: _Run) -> dict | None:
        text = self.client.read_file(f"{run.run_dir}/exit.json")
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None  # cut short as the job died: no record

    def _settle_unknown(self, run: _Run, now: float) -> Outcome | None:
        """The controller no longer lists the job: accounting, then the exit record. With
        neither able to say how it ended, it is asked about again until
        `accounting_wait_s` has passed since it went missing, and only then called lost."""
        if run.unknown_since is None:
            run.unknown_since = now
        undecided = ""
        try:
            accounted = self.client.accounting(
                str(run.slurm_id), f"ark-{run.job_id}", run.submitted_at
            )
        except AccountingNotYet as exc:
            accounted, undecided = None, str(exc)
        if accounted is not None:
            status, exit_code = accounted
            if status.state not in ACTIVE_STATES:
                ending, reason = ENDINGS.get(status.state, (Ending.FAILED, "ended"))
                return Outcome(
                    run.job_id,
                    ending,
                    status.ended_at or now,
                    exit_code,
                    f"Slurm job {run.slurm_id} {status.state} (from sacct)"
                    + (f": {reason}" if reason else ""),
                )
            # Accounting has not heard it end: it may still be running under slurmd, or
            # its end was lost with the controller's state. Its exit record may tell.
            undecided = f"sacct still shows it {status.state}"
        record = self._exit_record(run)
        if record is not None:
            exit_code = int(record.get("exit_code", 1))
            return Outcome(
                run.job_id,
                Ending.COMPLETED if exit_code == 0 else Ending.FAILED,
                float(record.get("ended_at", now)),
                exit_code,
                f"Slurm job {run.slurm_id} ended (from its exit record)"
                + ("" if exit_code == 0 else f": exit {exit_code}"),
            )
        if undecided and now - run.unknown_since < self.settings.accounting_wait_s:
            if undecided != run.undecided:  # once per distinct answer, not once per poll
                run.undecided = undecided
                self._event(
                    run.job_id,
                    "slurm",
                    f"Slurm no longer lists job {run.slurm_id} and {undecided}: asking again",
                )
            return None
        return Outcome(
            run.job_id,
            Ending.LOST,
            now,
            None,
            f"Slurm no longer knows job {run.slurm_id} and it left no exit record "
            "(purged, or the controller lost its state)"
            + (f"; after {now - run.unknown_since:.0f} s, {undecided}" if undecided else ""),
        )

    # ----------------------------------------------------------------- cancel

    def cancel(self, job_id: str, handle: RunHandle) -> None:
        with self._lock:
            run = self._tracked.pop(job_id, None)
        slurm_id = run.slurm_id if run else (handle or {}).get("slurm_job_id")
        if slurm_id is None:
            if run is not None:  # its id was never learnt: cancel by name when possible
                try:
                    found = self.find_by_name([run])
                except BackendUnavailable:
                    found = {}
                slurm_id = found.get(job_id)
            if slurm_id is None:
                return
        try:
            self.client.cancel(str(slurm_id))
        except BackendUnavailable:
            with self._lock:
                self._cancels_owed[str(slurm_id)] = job_id
        except SlurmError as exc:  # already gone: nothing left to stop
            log.info("cancel of Slurm job %s (job %s): %s", slurm_id, job_id, exc)

    def _pay_cancels(self) -> None:
        with self._lock:
            owed = dict(self._cancels_owed)
        for slurm_id, job_id in owed.items():
            try:
                self.client.cancel(slurm_id)
            except BackendUnavailable:
                continue  # still owed; polling goes on and says whether Slurm answers
            except SlurmError as exc:
                log.info("cancel of Slurm job %s (job %s): %s", slurm_id, job_id, exc)
            with self._lock:
                self._cancels_owed.pop(slurm_id, None)

    def _sweep_unsure(self) -> None:
        with self._lock:
            unsure = list(self._unsure)
        if not unsure:
            return
        by_comment = {f"arkwright:{run.job_id}:{run.attempt}": run for run in unsure}
        try:
            found = self.client.find([f"ark-{run.job_id}" for run in unsure])
        except SlurmError as exc:
            log.warning("site %s: looking for unsure submissions: %s", self.site_name, exc)
            return  # still unsure: looked for again at the next poll
        for slurm_id, comment in found:
            run = by_comment.get(comment)
            if run is not None:
                try:
                    self.client.cancel(slurm_id)
                except SlurmError:
                    continue  # ended already
                self._event(
                    run.job_id,
                    "slurm",
                    f"cancelled Slurm job {slurm_id}: Slurm took attempt {run.attempt} after "
                    "all, but its answer was lost and the job had been placed again",
                )
        with self._lock:
            self._unsure = [run for run in self._unsure if run not in unsure]

    # ---------------------------------------------------------------- recover

    def recover(
        self, job_id: str, handle: RunHandle | None, attempt: int, now: float
    ) -> Outcome | RunHandle | None:
        handle = dict(handle or {})
        run = _Run(
            job_id,
            attempt,
            handle.get("dir") or self._run_dir(job_id, attempt),
            handle.get("slurm_job_id"),
            float(handle.get("submitted_at") or now),
        )
        try:
            if run.slurm_id is None:
                run.slurm_id = self.find_by_name([run]).get(job_id)
                if run.slurm_id is None:
                    return None  # the start was decided but never reached Slurm
            status = self.client.statuses([run.slurm_id]).get(run.slurm_id)
            outcome = (
                self._settle_unknown(run, now) if status is None else self._judge(run, status, now)
            )
        except BackendUnavailable as exc:
            # Cannot tell now. Keep it: the job may well be running under slurmd, and
            # polling settles it when the controller answers.
            self._event(job_id, "slurm", f"controller not answering at restart: {exc}")
            outcome = None
        if outcome is not None:
            return outcome
        with self._lock:
            self._tracked[job_id] = run
        # What start() recorded beyond the basics (where the logs go) stays.
        return {**handle, **self._handle(run, handle.get("pool", ""))}

    # ------------------------------------------------------------------- misc

    def log_path(self, job_id: str, handle: RunHandle, stream: str) -> str | None:
        if self.settings.ssh or not handle or "dir" not in handle:
            return None  # the logs live on the cluster's filesystem, not here
        relative = self._log_relative(handle, stream)
        return None if relative in (None, DEV_NULL) else str(Path(handle["dir"]) / relative)

    def _log_relative(self, handle: RunHandle, stream: str) -> str | None:
        """The stream's file below the run directory (None: not known yet)."""
        placed = (handle.get("logs") or {}).get(stream)
        if placed is None:
            return f"{stream}.log"
        node = ""
        if any(part is None for part in placed):
            record = open_confined(handle["dir"], NODE_RECORD, handle.get("uid"))
            if record is None:
                return None  # the job has not started on a node yet
            with record:
                node = node_name(record.read(256).decode(errors="replace"))
            if node is None:
                return None
        return render([part if part is not None else node for part in placed], node)

    def open_log(self, job_id: str, handle: RunHandle, stream: str) -> BinaryIO | None:
        """The run directory is the job's own (it runs there as its owner): its logs are
        read only as regular files of that account, reached without following links."""
        if self.settings.ssh or not handle or "dir" not in handle:
            return None
        relative = self._log_relative(handle, stream)
        if relative in (None, DEV_NULL):
            return None
        return open_confined(handle["dir"], relative, handle.get("uid"))

    def _event(self, job_id: str, kind: str, detail: str) -> None:
        with self._lock:
            self._events.append((job_id, kind, detail))

    def drain_events(self) -> list[tuple[str, str, str]]:
        """What happened to runs since the last call, for each job's event history."""
        with self._lock:
            events, self._events = self._events, []
        return events

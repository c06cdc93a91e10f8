"""Slurm's front-end commands over Arkwright's API: squeue, sacct, scancel, scontrol.

Each takes the options people type at a Slurm site (see docs/slurm-commands.md for what
each means here), asks the API with its filters, and prints what Slurm would print
(`slurm_tables`). What a caller sees or cancels is what the API lets them: their own
programme's jobs, every programme's for an admin; no option reaches past that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import typer

from arkwright.cli import slurm_format as sf
from arkwright.cli import slurm_input as si
from arkwright.cli import slurm_tables as st
from arkwright.cli.base import app, errors
from arkwright.cli.slurm_format import SlurmFormatError
from arkwright.client import ApiError, Client

MOST_LISTED = 10_000  # rows squeue, sacct and scontrol print before saying there are more
MOST_CANCELLED = 100_000

scontrol_app = typer.Typer(help="Slurm's scontrol: show job.", no_args_is_help=True)
show_app = typer.Typer(help="Show a record.", no_args_is_help=True)
scontrol_app.add_typer(show_app, name="show")
app.add_typer(scontrol_app, name="scontrol")


def _say(text: str) -> None:
    """A line on stderr, as given (job names and ids are never read as markup)."""
    errors.print(text, highlight=False, markup=False, soft_wrap=True)


def _bail(command: str, message: str, code: int = 1) -> typer.Exit:
    _say(f"{command}: error: {message}")
    return typer.Exit(code=code)


def _csv(text: str | None) -> list[str] | None:
    values = [v.strip() for v in (text or "").split(",") if v.strip()]
    return values or None


def _view() -> st.View:
    return st.View(now=datetime.now(UTC))


def _listed(command: str, client: Client, most: int, **filters) -> list[dict]:
    """Jobs the filters select, oldest first (as Slurm lists them); says so on stderr
    when there were more than `most`."""
    try:
        jobs = list(client.iter_jobs(most + 1, **filters))
    except ApiError as exc:
        raise _bail(command, str(exc)) from None
    if len(jobs) > most:
        _say(f"{command}: showing the {most} newest matching jobs; narrow the filters for the rest")
        jobs = jobs[:most]
    return jobs[::-1]


def _states(command: str, text: str | None) -> set[str] | None:
    if text is None:
        return None
    try:
        return sf.parse_states(text)
    except SlurmFormatError as exc:
        raise _bail(command, str(exc)) from None


def _ids(command: str, words: Iterable[str] | None) -> list[str] | None:
    try:
        ids = si.parse_job_ids(words or [])
    except SlurmFormatError as exc:
        raise _bail(command, str(exc)) from None
    return ids or None


def _in_states(jobs: list[dict], states: set[str] | None) -> list[dict]:
    """Jobs whose Slurm state is one asked for (the API's filter is a superset:
    TIMEOUT and OUT_OF_MEMORY are among its failed jobs)."""
    return jobs if states is None else [j for j in jobs if sf.slurm_state(j) in states]


# ---------------------------------------------------------------------- squeue


@app.command()
def squeue(
    all_states: bool = typer.Option(
        False, "--all", help="Include ended jobs (Arkwright's; as `-t all`)."
    ),
    account: str | None = typer.Option(None, "--account", "-A", help="Programmes."),
    user: str | None = typer.Option(None, "--user", "-u", help="Users, comma separated."),
    me: bool = typer.Option(False, "--me", help="Only your own jobs."),
    states: str | None = typer.Option(None, "--states", "--state", "-t", help="e.g. PD,R or all."),
    jobs: str | None = typer.Option(None, "--jobs", "-j", help="Job ids, comma separated."),
    partition: str | None = typer.Option(None, "--partition", "-p", help="Pools."),
    name: str | None = typer.Option(None, "--name", "-n", help="Job names."),
    fmt: str | None = typer.Option(None, "--format", "-o", help="e.g. '%.18i %.9P %j %T'"),
    noheader: bool = typer.Option(False, "--noheader", "-h"),
    start: bool = typer.Option(False, "--start", help="Pending jobs' expected start."),
    long: bool = typer.Option(False, "--long", "-l"),
) -> None:
    """Jobs in the queue, as Slurm's squeue shows them."""
    wanted = _states("squeue", states)
    if wanted is None:
        wanted = set(sf.STATE_CODES) if all_states else set(sf.ACTIVE_SLURM)
    if start:
        wanted &= {"PENDING"}
    default = st.SQUEUE_START if start else st.SQUEUE_LONG if long else st.SQUEUE_DEFAULT
    try:
        columns = st.squeue_columns(fmt or default)
    except SlurmFormatError as exc:
        raise _bail("squeue", str(exc)) from None
    found = _listed(
        "squeue",
        Client.from_env(),
        MOST_LISTED,
        state=sf.api_states(wanted) if wanted else "pending",
        tenant=_csv(account),
        user=_csv(user),
        mine=True if me else None,
        id=_ids("squeue", [jobs] if jobs else None),
        pool=_csv(partition),
        name=_csv(name),
    )
    found = _in_states(found, wanted)
    if start:  # in order of expected start, the unknown last (squeue --start)
        found.sort(key=lambda j: (j.get("expected_start") is None, j.get("expected_start") or ""))
    print(st.squeue(found, columns, _view(), header=not noheader), end="")


# ----------------------------------------------------------------------- sacct


@app.command()
def sacct(
    starttime: str | None = typer.Option(
        None, "--starttime", "-S", help="Jobs in any state since (default: midnight)."
    ),
    endtime: str | None = typer.Option(None, "--endtime", "-E", help="...and until."),
    state: str | None = typer.Option(None, "--state", "-s", help="e.g. CD,F,TO,CA."),
    user: str | None = typer.Option(None, "--user", "-u", help="Users, comma separated."),
    allusers: bool = typer.Option(False, "--allusers", "-a", help="Every user's jobs."),
    account: str | None = typer.Option(None, "--accounts", "-A", help="Programmes."),
    partition: str | None = typer.Option(None, "--partition", "-r", help="Pools."),
    name: str | None = typer.Option(None, "--name", help="Job names."),
    jobs: str | None = typer.Option(None, "--jobs", "-j", help="Job ids, comma separated."),
    allocations: bool = typer.Option(
        False, "--allocations", "-X", help="Accepted: Arkwright records no job steps."
    ),
    fmt: str | None = typer.Option(None, "--format", "-o", help="e.g. JobID,JobName%30,State"),
    parsable: bool = typer.Option(False, "--parsable", "-p", help="'|' after every field."),
    parsable2: bool = typer.Option(False, "--parsable2", "-P", help="'|' between fields."),
    noheader: bool = typer.Option(False, "--noheader", "-n"),
) -> None:
    """Accounting for finished and running jobs, as Slurm's sacct shows it."""
    del allocations  # every Arkwright job is one allocation, with no steps below it
    try:
        fields = st.sacct_fields(fmt or st.SACCT_DEFAULT)
    except SlurmFormatError as exc:
        raise _bail("sacct", str(exc)) from None
    wanted = _states("sacct", state)
    ids = _ids("sacct", [jobs] if jobs else None)
    view = _view()
    try:
        # sacct's default window starts at midnight today, unless jobs are named.
        since = si.parse_time(starttime, view.now) if starttime else None
        if since is None and ids is None:
            since = si.parse_time("midnight", view.now)
        until = si.parse_time(endtime, view.now) if endtime else None
    except SlurmFormatError as exc:
        raise _bail("sacct", str(exc)) from None
    # sacct shows the caller's own jobs unless asked for others' (-a, -u, -A, -j).
    mine = not (allusers or user or account or ids)
    found = _listed(
        "sacct",
        Client.from_env(),
        MOST_LISTED,
        state=sf.api_states(wanted) if wanted else None,
        tenant=_csv(account),
        user=_csv(user),
        mine=True if mine else None,
        id=ids,
        pool=_csv(partition),
        name=_csv(name),
        ended_after=since,
        submitted_before=until,
    )
    found = _in_states(found, wanted)
    separator = "|" if parsable else "" if parsable2 else None
    print(st.sacct(found, fields, view, header=not noheader, parsable=separator), end="")


# --------------------------------------------------------------------- scancel

# The states scancel --state takes (a job that ended cannot be cancelled).
CANCELLABLE = {"PENDING", "CONFIGURING", "RUNNING"}


@app.command()
def scancel(
    job_ids: list[str] = typer.Argument(None, help="Job ids (ID, ID_TASK, ID_[1-3])."),
    name: str | None = typer.Option(None, "--name", "-n", help="Job names."),
    user: str | None = typer.Option(None, "--user", "-u", help="Users, comma separated."),
    me: bool = typer.Option(False, "--me", help="Only your own jobs."),
    state: str | None = typer.Option(None, "--state", "-t", help="PENDING or RUNNING."),
    partition: str | None = typer.Option(None, "--partition", "-p", help="Pools."),
    account: str | None = typer.Option(None, "--account", "-A", help="Programmes."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    quiet: bool = typer.Option(False, "--quiet", "-Q", help="No error for ended jobs."),
) -> None:
    """Cancel jobs by id or by filter, as Slurm's scancel does: with ids, the ids that
    also match the filters; with filters only, every active job you can see that
    matches them all."""
    ids = _ids("scancel", job_ids)
    wanted = _states("scancel", state)
    if wanted is not None and not wanted <= CANCELLABLE:
        bad = ", ".join(sorted(wanted - CANCELLABLE))
        raise _bail("scancel", f"invalid job state for scancel: {bad} (PENDING or RUNNING)")
    filters = {
        "name": _csv(name),
        "user": _csv(user),
        "pool": _csv(partition),
        "tenant": _csv(account),
        "mine": True if me else None,
    }
    if ids is None and not any(filters.values()) and wanted is None:
        raise _bail("scancel", "No job identification provided")
    client = Client.from_env()
    targets = _listed(
        "scancel",
        client,
        MOST_CANCELLED,
        state=sf.api_states(wanted or CANCELLABLE),
        id=ids,
        **filters,
    )
    failed = False
    if ids is not None:
        failed = _report_unmatched(client, ids, targets, quiet, verbose)
    elif not targets:
        named = " ".join(
            f"{key}={value}"
            for key, value in (
                ("account", account),
                ("job_name", name),
                ("partition", partition),
                ("state", ",".join(sorted(wanted or ()))),
                ("user_name", user or ("(you)" if me else "")),
            )
            if value
        )
        _say(f"scancel: No active jobs match ALL job filters, including: {named}")
    for job in targets:
        try:
            client.cancel(job["id"])
        except ApiError as exc:  # ended or vanished since it was listed
            _say(f"scancel: error: Kill job error on job id {sf.job_id(job)}: {exc}")
            failed = True
            continue
        if verbose:
            _say(f"scancel: Terminating job {sf.job_id(job)}")
    if failed:
        raise typer.Exit(code=1)


def _report_unmatched(
    client: Client, ids: list[str], targets: list[dict], quiet: bool, verbose: bool
) -> bool:
    """Say which named ids matched no active job, as scancel does: one that has ended
    ("already completing or completed"), one that does not exist for this caller
    ("Invalid job id specified"), or, with -v, one the filters left out. True if any
    did not exist."""
    matched = {sf.job_id(j) for j in targets} | {j["id"] for j in targets}
    matched |= {sf.array_job_id(j) for j in targets}
    invalid = False
    for token in ids:
        if token in matched:
            continue
        try:
            found = list(client.iter_jobs(1, id=[token]))
        except ApiError:
            found = []
        if not found:
            _say(f"scancel: error: Kill job error on job id {token}: Invalid job id specified")
            invalid = True
        elif found[0]["state"] in ("pending", "starting", "running"):
            if verbose:
                _say(f"scancel: job {token} does not match the filters; left alone")
        elif not quiet:
            _say(
                f"scancel: error: Kill job error on job id {token}: "
                "Job/step already completing or completed"
            )
    return invalid


# -------------------------------------------------------------------- scontrol


@show_app.command("job")
def show_job(job_id: str = typer.Argument(None, help="A job id; none: every job.")) -> None:
    """A job as `scontrol show job` prints it (an array's id: all its tasks)."""
    ids = _ids("scontrol", [job_id] if job_id else None)
    found = _listed("scontrol", Client.from_env(), MOST_LISTED, id=ids)
    if not found:
        if ids is None:
            print("No jobs in the system")
            return
        _say("slurm_load_jobs error: Invalid job id specified")
        raise typer.Exit(code=1)
    view = _view()
    print("\n".join(st.scontrol_job(job, view) for job in found))

"""A job's values as Slurm's commands print them: states, ids, times, nodes, exit codes.

Pure functions of the API's job view (`JobOut` as a dict) and, where time passes, of
`now`; no I/O. `slurm_tables` lays these values out as squeue, sacct and scontrol do.

State mapping (Arkwright -> Slurm), one table for every command:

| Arkwright            | Slurm         | code |
|----------------------|---------------|------|
| pending              | PENDING       | PD   |
| starting             | CONFIGURING   | CF   |
| running              | RUNNING       | R    |
| completed            | COMPLETED     | CD   |
| failed, time limit   | TIMEOUT       | TO   |
| failed, out of memory| OUT_OF_MEMORY | OOM  |
| failed               | FAILED        | F    |
| cancelled            | CANCELLED     | CA   |
| rejected             | FAILED        | F    |  (Slurm refuses such a job at sbatch; the
                                                   nearest ending it records is FAILED)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo

from arkwright.backends.log_patterns import PatternFields, expand, render

# Slurm's long state name -> its short code (squeue %t, sacct -s accepts both).
STATE_CODES: dict[str, str] = {
    "PENDING": "PD",
    "CONFIGURING": "CF",
    "RUNNING": "R",
    "COMPLETED": "CD",
    "FAILED": "F",
    "TIMEOUT": "TO",
    "OUT_OF_MEMORY": "OOM",
    "CANCELLED": "CA",
}
_PLAIN = {
    "pending": "PENDING",
    "starting": "CONFIGURING",
    "running": "RUNNING",
    "completed": "COMPLETED",
    "cancelled": "CANCELLED",
    "rejected": "FAILED",
}
# Which Arkwright states each Slurm state is found among (what the API filters by).
ARKWRIGHT_STATES: dict[str, tuple[str, ...]] = {
    "PENDING": ("pending",),
    "CONFIGURING": ("starting",),
    "RUNNING": ("running",),
    "COMPLETED": ("completed",),
    "FAILED": ("failed", "rejected"),
    "TIMEOUT": ("failed",),
    "OUT_OF_MEMORY": ("failed",),
    "CANCELLED": ("cancelled",),
}
ACTIVE_SLURM = ("PENDING", "CONFIGURING", "RUNNING")
_TIMEOUT = re.compile(r"time limit", re.IGNORECASE)
_OOM = re.compile(r"out of memory", re.IGNORECASE)


class SlurmFormatError(ValueError):
    """A state, field or format the user wrote is not one Slurm's commands know; the
    message names it."""


def slurm_state(job: dict) -> str:
    """The job's state in Slurm's upper-case words (see the table above)."""
    state = job["state"]
    if state == "failed":
        reason = job.get("reason") or ""
        if _TIMEOUT.search(reason):
            return "TIMEOUT"
        if _OOM.search(reason):
            return "OUT_OF_MEMORY"
        return "FAILED"
    return _PLAIN.get(state, state.upper())


def state_code(job: dict) -> str:
    state = slurm_state(job)
    return STATE_CODES.get(state, state[:2])


def parse_states(text: str) -> set[str]:
    """Slurm state names or codes, comma separated, any case ("pd,R", "PENDING");
    "all" for every state. Returns Slurm long names."""
    by_code = {code: name for name, code in STATE_CODES.items()}
    wanted: set[str] = set()
    for word in (w.strip().upper() for w in text.split(",")):
        if not word:
            continue
        if word == "ALL":
            return set(STATE_CODES)
        name = by_code.get(word, word)
        if name == "CANCELED":  # Slurm accepts both spellings
            name = "CANCELLED"
        if name not in STATE_CODES:
            known = ", ".join(f"{n} ({c})" for n, c in STATE_CODES.items())
            raise SlurmFormatError(f"invalid job state specified: {word} (known: {known})")
        wanted.add(name)
    return wanted


def api_states(slurm_states: Iterable[str]) -> str:
    """The API's `state` filter covering these Slurm states (a superset: TIMEOUT is
    found among failed jobs, and told apart by `slurm_state` afterwards)."""
    found = {s for name in slurm_states for s in ARKWRIGHT_STATES[name]}
    return ",".join(sorted(found))


# ---------------------------------------------------------------- ids

ARRAY_ELEMENT = re.compile(r"^(?P<job>[A-Za-z0-9][A-Za-z0-9.-]*)_(?P<task>\d+)$")


def job_id(job: dict) -> str:
    """The id Slurm's commands show: ARRAYID_TASK for an array's task, else the id."""
    if job.get("array_job_id") is not None and job.get("array_task_id") is not None:
        return f"{job['array_job_id']}_{job['array_task_id']}"
    return job["id"]


def array_job_id(job: dict) -> str:
    return job.get("array_job_id") or job["id"]


# ---------------------------------------------------------------- times


def moment(value: str | datetime | None) -> datetime | None:
    """An API time (ISO 8601; UTC when it carries no zone) as an aware datetime."""
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def clock(value: str | datetime | None, tz: tzinfo | None = None, unset: str = "Unknown") -> str:
    """Slurm's date layout, 2026-12-01T20:00:00, in the reader's zone (as Slurm prints
    local time); `unset` when there is none."""
    when = moment(value)
    if when is None:
        return unset
    return when.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")


def elapsed_s(job: dict, now: datetime) -> float:
    """Seconds the job has run (to its end, or to `now` while it runs)."""
    started = moment(job.get("started_at"))
    if started is None:
        return 0.0
    ended = moment(job.get("finished_at")) or now
    return max((ended - started).total_seconds(), 0.0)


def long_duration(seconds: float) -> str:
    """sacct's durations (Elapsed, Timelimit): [D-]HH:MM:SS, hours always shown."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{text}" if days else text


def short_duration(seconds: float) -> str:
    """squeue's durations (TIME, TIME_LIMIT): M:SS, H:MM:SS or D-HH:MM:SS, leading
    zero parts dropped."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


# Time limits at or past a year are the site's maximum (UNLIMITED was asked for).
UNLIMITED_S = 365 * 86400.0


def time_limit(job: dict, short: bool) -> str:
    limit = float(job.get("time_limit_s") or 0)
    if limit <= 0 or limit >= UNLIMITED_S:
        return "UNLIMITED"
    return short_duration(limit) if short else long_duration(limit)


# ---------------------------------------------------------------- nodes, resources


def node_count(job: dict) -> int:
    """Nodes held (once placed) or asked for; one when the shape is Arkwright's choice
    and it has not started yet."""
    held = job.get("allocated_nodes")
    if held:
        return len(held)
    return int(job.get("nodes") or 1)


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def node_list(job: dict) -> str:
    """The nodes a run holds as a Slurm hostlist ("remote-uk-b200-[0-1,3]"): a node is
    named by its pool and its number in the pool. Empty before a start."""
    held = sorted(set(job.get("allocated_nodes") or []))
    if not held or not job.get("pool"):
        return ""
    prefix = job["pool"].replace("/", "-") + "-"
    return f"{prefix}{held[0]}" if len(held) == 1 else f"{prefix}[{_ranges(held)}]"


def tres(job: dict) -> str:
    """Slurm's TRES string for the job's GPUs and nodes."""
    return f"gres/gpu={job['gpus']},node={node_count(job)}"


def gres_per_node(job: dict) -> str:
    nodes = node_count(job)
    per_node = job["gpus"] // nodes if nodes else job["gpus"]
    models = job.get("gpu_type") or []
    kind = f"{models[0].lower()}:" if len(models) == 1 else ""
    return f"gres/gpu:{kind}{per_node}"


def exit_code(job: dict) -> str:
    """Slurm's ExitCode, `code:signal`: a run killed by a signal reports it (local runs
    record the signal as a negative code), a run still going reports 0:0."""
    code = job.get("exit_code")
    if code is None:
        return "0:0"
    return f"0:{-code}" if code < 0 else f"{code}:0"


def pending_reason(job: dict) -> str:
    """Why a pending job waits, as one Slurm-style word where the core gave one
    ("Resources: waiting for ..." -> "Resources"); "None" when it gave none yet."""
    reason = (job.get("reason") or "").strip()
    if not reason:
        return "None"
    head = reason.split(":", 1)[0].strip()
    return head if head and " " not in head else reason


def reason(job: dict) -> str:
    """scontrol's Reason: a pending job's wait, an ended job's cause, else None."""
    if job["state"] == "pending":
        return pending_reason(job)
    if job["state"] in ("running", "starting") or not job.get("reason"):
        return "None"
    return job["reason"]


def where_or_why(job: dict) -> str:
    """squeue's NODELIST(REASON): the nodes of a started job, or why a job waits."""
    if job["state"] == "pending":
        return f"({pending_reason(job)})"
    return node_list(job) or (f"({job['reason']})" if job.get("reason") else "")


def partition(job: dict) -> str:
    """A placed job's pool; before that, the partition it asked for (if any)."""
    if job.get("pool"):
        return job["pool"]
    return job.get("partition") or ""


def priority(job: dict) -> int:
    return {"low": 0, "normal": 1, "high": 2, "urgent": 3}.get(job.get("priority", ""), 1)


def expand_pattern(pattern: str | None, job: dict, default: str) -> str:
    """sbatch's --output/--error pattern with the job's own values put in, by the same
    expander the backends write logs with; the run directory's default when none."""
    if not pattern:
        return default
    first_node = node_list(job).split(",")[0] if node_list(job) else ""
    fields = PatternFields(
        job_id=job["id"],
        job_name=job.get("name") or "",
        user=job.get("user") or "",
        array_job_id=job.get("array_job_id"),
        array_task_id=job.get("array_task_id"),
        node=first_node,
    )
    return render(expand(pattern, fields), first_node)

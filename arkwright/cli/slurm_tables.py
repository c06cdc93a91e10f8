"""Jobs laid out as Slurm's commands lay them out: squeue's `%` format, sacct's
`--format` fields (widths, `+` truncation, `-P`/`-p`), scontrol's `Key=Value` record.

Pure: each renderer takes the API's job views and a `View` (the moment and time zone
to print in), and returns the text. Field widths and titles are Slurm's own
(src/sacct/sacct.c's field table, squeue(1)'s format letters).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from arkwright.cli import slurm_format as sf
from arkwright.cli.slurm_format import SlurmFormatError


@dataclass(frozen=True)
class View:
    now: datetime  # aware: what "running for" is measured to
    tz: tzinfo | None = None  # None: the reader's local zone, as Slurm prints


Getter = Callable[[dict, View], str]


def _elapsed(job: dict, view: View) -> float:
    return sf.elapsed_s(job, view.now)


def _start(job: dict, view: View, unset: str) -> str:
    """Start: when it started; for a pending job the core's estimate (as Slurm shows
    the expected start of a pending job)."""
    if job.get("started_at"):
        return sf.clock(job["started_at"], view.tz)
    if job["state"] == "pending" and job.get("expected_start"):
        return sf.clock(job["expected_start"], view.tz)
    return unset


def _end(job: dict, view: View, unset: str) -> str:
    """End: when it ended; for a running job when its time limit runs out."""
    if job.get("finished_at"):
        return sf.clock(job["finished_at"], view.tz)
    started = sf.moment(job.get("started_at"))
    if started is not None and sf.time_limit(job, short=True) != "UNLIMITED":
        return sf.clock(started + timedelta(seconds=job["time_limit_s"]), view.tz)
    return unset


def _allocated(job: dict, text: str) -> str:
    return text if job.get("allocated_nodes") else ""


# ---------------------------------------------------------------------- sacct

# Slurm's sacct field name -> (default width; negative = left-justified, and getter).
SACCT_FIELDS: dict[str, tuple[int, Getter]] = {
    "Account": (10, lambda j, v: j["tenant"]),
    "AllocGRES": (12, lambda j, v: _allocated(j, f"gpu:{j['gpus']}")),
    "AllocNodes": (10, lambda j, v: str(len(j.get("allocated_nodes") or []))),
    "AllocTRES": (10, lambda j, v: _allocated(j, sf.tres(j))),
    "Cluster": (10, lambda j, v: j.get("site") or ""),
    "Elapsed": (10, lambda j, v: sf.long_duration(_elapsed(j, v))),
    "ElapsedRaw": (10, lambda j, v: str(int(_elapsed(j, v)))),
    "Eligible": (19, lambda j, v: sf.clock(j["submitted_at"], v.tz)),
    "End": (19, lambda j, v: sf.clock(j.get("finished_at"), v.tz)),
    "ExitCode": (8, lambda j, v: sf.exit_code(j)),
    "JobID": (-12, lambda j, v: sf.job_id(j)),
    "JobIDRaw": (-12, lambda j, v: j["id"]),
    "JobName": (10, lambda j, v: j["name"]),
    "NNodes": (8, lambda j, v: str(sf.node_count(j))),
    "NodeList": (15, lambda j, v: sf.node_list(j) or "None assigned"),
    "Partition": (10, lambda j, v: sf.partition(j)),
    "Priority": (10, lambda j, v: str(sf.priority(j))),
    "QOS": (10, lambda j, v: j.get("priority") or ""),
    "Reason": (22, lambda j, v: sf.reason(j)),
    "ReqGRES": (12, lambda j, v: f"gpu:{j['gpus']}"),
    "ReqNodes": (8, lambda j, v: str(j.get("nodes") or 1)),
    "ReqTRES": (10, lambda j, v: sf.tres(j)),
    "Start": (19, lambda j, v: sf.clock(j.get("started_at"), v.tz)),
    "State": (10, lambda j, v: sf.slurm_state(j)),
    "Submit": (19, lambda j, v: sf.clock(j["submitted_at"], v.tz)),
    "Timelimit": (10, lambda j, v: sf.time_limit(j, short=False)),
    "TimelimitRaw": (10, lambda j, v: str(int(j["time_limit_s"] // 60))),
    "User": (9, lambda j, v: j.get("user") or ""),
}
_SACCT_BY_LOWER = {name.lower(): name for name in SACCT_FIELDS}
# Slurm's default (JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode) with the
# GPUs a job holds in place of CPUs, which Arkwright does not allocate.
SACCT_DEFAULT = "JobID,JobName,Partition,Account,AllocGRES,State,ExitCode"
_WIDTH = re.compile(r"^(?P<name>[A-Za-z]+)(?:%(?P<width>-?\d{1,4}))?$")


@dataclass(frozen=True)
class Field:
    name: str
    width: int  # negative: left-justified (Slurm's convention)
    get: Getter


def sacct_fields(spec: str) -> list[Field]:
    """Fields from a --format list ("JobID,JobName%30,State"); names in any case,
    `%N` a width. An unknown field is an error naming it, as sacct's."""
    fields: list[Field] = []
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        match = _WIDTH.match(item)
        name = _SACCT_BY_LOWER.get(match.group("name").lower()) if match else None
        if name is None:
            known = ", ".join(SACCT_FIELDS)
            raise SlurmFormatError(f'invalid field requested: "{item}" (known: {known})')
        default, get = SACCT_FIELDS[name]
        width = int(match.group("width")) if match.group("width") else default
        if width == 0:
            raise SlurmFormatError(f'invalid field requested: "{item}" (width 0)')
        fields.append(Field(name, width, get))
    if not fields:
        raise SlurmFormatError("--format names no fields")
    return fields


def _cell(text: str, width: int, mark_cut: bool = True) -> str:
    """One fixed-width column as sacct prints it: cut to the width (a value's cut
    marked with '+', a title's not), right-justified unless the width is negative;
    a space after."""
    size = abs(width)
    if len(text) > size:
        text = text[: size - 1] + "+" if mark_cut else text[:size]
    return (f"{text:>{size}}" if width > 0 else f"{text:<{size}}") + " "


def sacct(
    jobs: Iterable[dict],
    fields: list[Field],
    view: View,
    *,
    header: bool = True,
    parsable: str | None = None,
) -> str:
    """sacct's listing. `parsable`: None for columns; "|" ends every field with it
    (-p); "" separates fields with "|" and ends none (-P, --parsable2)."""
    lines: list[str] = []
    rows = ([f.get(job, view) for f in fields] for job in jobs)
    if parsable is not None:
        tail = parsable

        def line(values: list[str]) -> str:
            return "|".join(values) + tail

        if header:
            lines.append(line([f.name for f in fields]))
        lines.extend(line(values) for values in rows)
    else:
        if header:
            lines.append("".join(_cell(f.name, f.width, mark_cut=False) for f in fields))
            lines.append("".join(_cell("-" * abs(f.width), f.width) for f in fields))
        for values in rows:
            lines.append("".join(_cell(t, f.width) for t, f in zip(values, fields, strict=True)))
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------- squeue


def _time_left(job: dict, view: View) -> str:
    limit = sf.time_limit(job, short=True)
    if limit == "UNLIMITED":
        return limit
    return sf.short_duration(max(job["time_limit_s"] - _elapsed(job, view), 0))


def _task(job: dict) -> str:
    task = job.get("array_task_id")
    return "N/A" if task is None else str(task)


# squeue's format letters: title and value.
SQUEUE_LETTERS: dict[str, tuple[str, Getter]] = {
    "a": ("ACCOUNT", lambda j, v: j["tenant"]),
    "A": ("JOBID", lambda j, v: j["id"]),
    "b": ("TRES_PER_NODE", lambda j, v: sf.gres_per_node(j)),
    "D": ("NODES", lambda j, v: str(sf.node_count(j))),
    "e": ("END_TIME", lambda j, v: _end(j, v, "N/A")),
    "E": ("DEPENDENCY", lambda j, v: j.get("dependency") or "(null)"),
    "F": ("ARRAY_JOB_ID", lambda j, v: sf.array_job_id(j)),
    "i": ("JOBID", lambda j, v: sf.job_id(j)),
    "j": ("NAME", lambda j, v: j["name"]),
    "K": ("ARRAY_TASK_ID", lambda j, v: _task(j)),
    "l": ("TIME_LIMIT", lambda j, v: sf.time_limit(j, short=True)),
    "L": ("TIME_LEFT", _time_left),
    "M": ("TIME", lambda j, v: sf.short_duration(_elapsed(j, v))),
    "N": ("NODELIST", lambda j, v: sf.node_list(j)),
    "o": ("COMMAND", lambda j, v: shlex.join(j.get("command") or []) or "(null)"),
    "P": ("PARTITION", lambda j, v: sf.partition(j)),
    "q": ("QOS", lambda j, v: j.get("priority") or ""),
    "Q": ("PRIORITY", lambda j, v: str(sf.priority(j))),
    "r": ("REASON", lambda j, v: sf.reason(j)),
    "R": ("NODELIST(REASON)", lambda j, v: sf.where_or_why(j)),
    "S": ("START_TIME", lambda j, v: _start(j, v, "N/A")),
    "t": ("ST", lambda j, v: sf.state_code(j)),
    "T": ("STATE", lambda j, v: sf.slurm_state(j)),
    "u": ("USER", lambda j, v: j.get("user") or ""),
    "V": ("SUBMIT_TIME", lambda j, v: sf.clock(j["submitted_at"], v.tz)),
    "Y": ("SCHEDNODES", lambda j, v: "(null)"),
}
SQUEUE_DEFAULT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
SQUEUE_LONG = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
SQUEUE_START = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %20Y %R"
_LETTER = re.compile(r"%(\.?)(\d{0,4})([A-Za-z%])")


@dataclass(frozen=True)
class Column:
    text: str = ""  # literal text (when `letter` is empty)
    letter: str = ""
    width: int | None = None
    right: bool = False


def squeue_columns(spec: str) -> list[Column]:
    """A squeue --format: literal text and `%[.][width]letter` fields ('.' right-
    justifies; a width pads and cuts). An unknown letter is an error naming it."""
    columns: list[Column] = []
    at = 0
    for match in _LETTER.finditer(spec):
        if match.start() > at:
            columns.append(Column(text=spec[at : match.start()]))
        dot, width, letter = match.groups()
        if letter == "%":
            columns.append(Column(text="%"))
        elif letter not in SQUEUE_LETTERS:
            known = "".join(sorted(SQUEUE_LETTERS, key=str.lower))
            raise SlurmFormatError(f"invalid job format specification: %{letter} (known: {known})")
        else:
            columns.append(Column("", letter, int(width) if width else None, bool(dot)))
        at = match.end()
    if at < len(spec):
        columns.append(Column(text=spec[at:]))
    if "%" in "".join(c.text for c in columns if c.text != "%"):
        raise SlurmFormatError(f"invalid job format specification: {spec!r}")
    return columns


def _fit(text: str, column: Column) -> str:
    if column.width is None:
        return text
    text = text[: column.width]
    return f"{text:>{column.width}}" if column.right else f"{text:<{column.width}}"


def squeue(jobs: Iterable[dict], columns: list[Column], view: View, *, header: bool = True) -> str:
    def line(value_of: Callable[[Column], str]) -> str:
        return "".join(c.text if not c.letter else _fit(value_of(c), c) for c in columns)

    lines = [line(lambda c: SQUEUE_LETTERS[c.letter][0])] if header else []
    for job in jobs:
        lines.append(line(lambda c, job=job: SQUEUE_LETTERS[c.letter][1](job, view)))
    return "".join(text + "\n" for text in lines)


# ------------------------------------------------------------------- scontrol


def scontrol_job(job: dict, view: View) -> str:
    """One job as `scontrol show job` prints it: Key=Value pairs, grouped on lines as
    Slurm groups them (the first flush left, the rest indented three spaces)."""
    array = ""
    if job.get("array_job_id") is not None:
        array = f" ArrayJobId={job['array_job_id']} ArrayTaskId={job.get('array_task_id')}"
    run_time = sf.long_duration(_elapsed(job, view))
    limit = sf.time_limit(job, short=False)
    nodes = sf.node_list(job) or "(null)"
    out = sf.expand_pattern(job.get("output"), job, "stdout.log")
    err = sf.expand_pattern(job.get("error") or job.get("output"), job, "stderr.log")
    command = shlex.join(job.get("command") or []) or "(null)"
    lines = [
        f"JobId={job['id']}{array} JobName={job['name']}",
        f"UserId={job.get('user') or '(null)'} Account={job['tenant']}",
        f"Priority={sf.priority(job)} QOS={job.get('priority')}",
        f"JobState={sf.slurm_state(job)} Reason={sf.reason(job)} "
        f"Dependency={job.get('dependency') or '(null)'}",
        f"Restarts={max(int(job.get('attempts') or 0) - 1, 0)} ExitCode={sf.exit_code(job)}",
        f"RunTime={run_time} TimeLimit={limit}",
        f"SubmitTime={sf.clock(job['submitted_at'], view.tz)} "
        f"EligibleTime={sf.clock(job['submitted_at'], view.tz)}",
        f"StartTime={_start(job, view, 'Unknown')} EndTime={_end(job, view, 'Unknown')}",
        f"Partition={sf.partition(job) or '(null)'} Cluster={job.get('site') or '(null)'}",
        f"NodeList={nodes}",
        f"NumNodes={sf.node_count(job)} NumGPUs={job['gpus']}",
        f"TRES={sf.tres(job)}",
        f"Command={command}",
        f"StdErr={err}",
        f"StdOut={out}",
        f"TresPerNode={sf.gres_per_node(job)}",
    ]
    if job.get("slurm_job_id"):
        lines.append(f"SiteJobId={job['slurm_job_id']}")
    return "\n".join([lines[0], *("   " + line for line in lines[1:])]) + "\n"

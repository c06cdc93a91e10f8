"""Trace files: one job a CSV row (format in design.md), read with line-numbered errors.

Required columns: job_id, submit_time, gpus, duration. Optional: gpu_type, tenant,
job_type, classification, residency, personal_data, priority, preemptible, deadline,
and Arkwright's own time_limit, checkpoint_interval, flexible. Unknown columns are ignored.

Reading tries the columnar reader first (`trace_fast`, a million rows in about a
second) and falls back to the row reader (`trace_rows`) for files it will not decide,
which include every file with a bad row: errors always come from the row reader.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from arkwright.core.job import Job
from arkwright.sim.trace_build import no_gc
from arkwright.sim.trace_fast import jobs_from_csv
from arkwright.sim.trace_rows import (
    COLUMNS,
    OPTIONAL,
    REQUIRED,
    RowError,
    RowParser,
    TraceError,
    parse_rows,
)

__all__ = [
    "COLUMNS",
    "OPTIONAL",
    "REQUIRED",
    "RowError",
    "Trace",
    "TraceError",
    "job_row",
    "read_trace",
    "read_trace_by_rows",
    "write_trace",
]


@dataclass
class Trace:
    jobs: list[Job]  # sorted by submit time
    skipped: list[RowError]
    source: str


def read_trace(path: str | Path, *, skip_bad_rows: bool = False) -> Trace:
    """Read a whole trace. Bad rows stop the read (all of them listed) unless skipped."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise TraceError(source, [RowError(0, f"cannot open ({exc.strerror})")]) from None
    jobs = jobs_from_csv(raw)
    if jobs is not None:
        return Trace(jobs, [], source)
    return read_trace_by_rows(path, skip_bad_rows=skip_bad_rows)


def read_trace_by_rows(path: str | Path, *, skip_bad_rows: bool = False) -> Trace:
    """The row reader alone: the reference the columnar reader is tested against."""
    source = str(path)
    try:
        handle = open(path, newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise TraceError(source, [RowError(0, f"cannot open ({exc.strerror})")]) from None
    with handle, no_gc():
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise TraceError(source, [RowError(1, "the file is empty (no header)")]) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TraceError(source, [RowError(1, f"not a CSV file ({exc})")]) from None
        try:
            parser = RowParser(header)
        except ValueError as exc:
            raise TraceError(source, [RowError(1, str(exc))]) from None
        try:
            jobs, errors = parse_rows(parser, reader)
        except (csv.Error, UnicodeDecodeError) as exc:
            line = reader.line_num if isinstance(exc, csv.Error) else 0
            raise TraceError(source, [RowError(line, f"not a CSV file ({exc})")]) from None
    if errors and not skip_bad_rows:
        raise TraceError(source, errors)
    jobs.sort(key=lambda j: j.submit_time)  # stable: ties keep file order
    return Trace(jobs, errors, source)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, frozenset):
        return "|".join(sorted(value))
    return str(value)


def job_row(job: Job) -> list[str]:
    policy = job.data_policy
    return [
        job.job_id,
        _cell(job.submit_time),
        str(job.gpus),
        _cell(job.duration_s),
        _cell(job.gpu_types),
        job.tenant,
        job.job_type,
        policy.classification.label,
        _cell(policy.residency) or "any",
        policy.personal_data.value,
        job.priority.name.lower(),
        "true" if job.preemptible else "false",
        _cell(job.deadline),
        _cell(job.time_limit_s),
        _cell(job.checkpoint_interval_s),
        "true" if job.flexible else "false",
    ]


def write_trace(path: str | Path, jobs: Iterable[Job]) -> int:
    """Write jobs in the trace format; returns the number of rows."""
    count = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.partial")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for job in jobs:
            writer.writerow(job_row(job))
            count += 1
    tmp.replace(path)  # never leave a half-written trace under the real name
    return count

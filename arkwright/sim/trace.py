"""Trace files: one job a CSV row (format in design.md), read with line-numbered errors.

Required columns: job_id, submit_time, gpus, duration. Optional: gpu_type, tenant,
job_type, classification, residency, personal_data, priority, preemptible, deadline,
and Arkwright's own time_limit, checkpoint_interval, flexible, and the link columns
dependency, array_id, array_limit (`trace_links`). Unknown columns are ignored.

Reading uses the parsed copy beside a large trace while the CSV is unchanged
(`trace_cache`: by the CSV's settled stamp, else its digest), else the columnar reader
(`trace_fast`), and falls back to the row reader (`trace_rows`) for files it will not
decide, which include every file with a bad row: errors always come from the row
reader.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from arkwright.core.job import Job
from arkwright.sim import trace_cache
from arkwright.sim.trace_build import TraceColumns, no_gc
from arkwright.sim.trace_fast import columns_from_csv
from arkwright.sim.trace_links import LINK_COLUMNS, dependency_text
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
    "LINK_COLUMNS",
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


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')  # what csv.writer's minimal quoting quotes


@dataclass
class Trace:
    jobs: list[Job]  # sorted by submit time
    skipped: list[RowError]
    source: str


def read_trace(
    path: str | Path, *, skip_bad_rows: bool = False, cache: bool = True, trust_stamp: bool = True
) -> Trace:
    """Read a whole trace. Bad rows stop the read (all of them listed) unless skipped.

    With `cache`, a large trace's parsed columns are kept beside it (`trace_cache`)
    and used on the next read while the CSV is unchanged: known unchanged by its stamp
    (inode, size, times) once that has settled, else by its SHA-256. `trust_stamp=False`
    always reads and hashes the CSV (for clocks that cannot be trusted).
    """
    source = str(path)
    columns: TraceColumns | None = None
    try:
        with open(path, "rb") as handle:
            before = trace_cache.stamp_of(os.fstat(handle.fileno()))
            if cache and trust_stamp:
                columns = trace_cache.load_stamped(path, before)
            if columns is None:
                raw = handle.read()
                after = trace_cache.stamp_of(os.fstat(handle.fileno()))
    except OSError as exc:
        raise TraceError(source, [RowError(0, f"cannot open ({exc.strerror})")]) from None
    if columns is not None:
        return _from_columns(path, columns, skip_bad_rows)  # unchanged since its stamp
    stamp = before if before == after and trust_stamp else None
    digest = trace_cache.csv_digest(raw) if cache else ""
    columns = trace_cache.load(path, digest) if cache else None
    if columns is not None:
        if stamp is not None and trace_cache.settled(stamp, trace_cache.now_ns()):
            # Known good by its digest: record the settled stamp for the next read.
            trace_cache.save(path, digest, columns, stamp)
    else:
        columns = columns_from_csv(raw)
        if columns is not None and cache:
            trace_cache.save(path, digest, columns, stamp)
    del raw
    if columns is not None:
        return _from_columns(path, columns, skip_bad_rows)
    return read_trace_by_rows(path, skip_bad_rows=skip_bad_rows)


def _from_columns(path: str | Path, columns: TraceColumns, skip_bad_rows: bool) -> Trace:
    try:
        return Trace(columns.jobs(), [], str(path))
    except TypeError:
        # Job gained a field without a default: the row reader knows it
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


def job_row(job: Job, links: bool = False) -> list[str]:
    """The job's cells under COLUMNS, and with `links` under LINK_COLUMNS after them."""
    policy = job.data_policy
    row = [
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
    if links:
        row += [
            dependency_text(job.dependency),
            job.array_id or "",
            str(job.array_limit) if job.array_limit else "",
        ]
    return row


def write_trace(path: str | Path, jobs: Iterable[Job]) -> int:
    """Write jobs in the trace format (each row as `job_row` gives it); returns the count.

    The link columns are written only when some job has a dependency or an array, so a
    trace without them keeps the older format.
    """
    jobs = list(jobs)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.partial")
    links = any(j.dependency is not None or j.array_id is not None for j in jobs)
    columns = _columns(jobs, links)
    header = COLUMNS + LINK_COLUMNS if links else COLUMNS
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        if any(_NEEDS_QUOTES.search("".join(column)) for column in columns):
            writer.writerows(zip(*columns, strict=True))
        elif jobs:
            # Nothing to quote: csv.writer would write exactly these bytes, more slowly.
            handle.write("\r\n".join(map(",".join, zip(*columns, strict=True))) + "\r\n")
    tmp.replace(path)  # never leave a half-written trace under the real name
    return len(jobs)


def _columns(jobs: list[Job], links: bool) -> list[list[str]]:
    """`job_row` for many jobs, a column at a time, each repeated value formatted once."""
    policies: dict[int, tuple[str, str, str]] = {}
    for job in jobs:
        policy = job.data_policy
        if id(policy) not in policies:
            row = job_row(job)
            policies[id(policy)] = (row[7], row[8], row[9])
    policy_cells = [policies[id(job.data_policy)] for job in jobs]

    def cells(values: list) -> list[str]:
        memo: dict = {}
        out = []
        for value in values:
            text = memo.get(value)
            if text is None:
                text = memo[value] = _cell(value)
            out.append(text)
        return out

    def flags(values: list[bool]) -> list[str]:
        return ["true" if v else "false" for v in values]

    out = [
        [j.job_id for j in jobs],
        list(map(_cell, [j.submit_time for j in jobs])),
        [str(j.gpus) for j in jobs],
        cells([j.duration_s for j in jobs]),
        cells([j.gpu_types for j in jobs]),
        [j.tenant for j in jobs],
        [j.job_type for j in jobs],
        [p[0] for p in policy_cells],
        [p[1] for p in policy_cells],
        [p[2] for p in policy_cells],
        cells([j.priority.name.lower() for j in jobs]),
        flags([j.preemptible for j in jobs]),
        list(map(_cell, [j.deadline for j in jobs])),
        cells([j.time_limit_s for j in jobs]),
        cells([j.checkpoint_interval_s for j in jobs]),
        flags([j.flexible for j in jobs]),
    ]
    if links:
        out.append([dependency_text(j.dependency) for j in jobs])
        out.append([j.array_id or "" for j in jobs])
        out.append([str(j.array_limit) if j.array_limit else "" for j in jobs])
    return out

"""Trace files: one job a CSV row (format in design.md), read with line-numbered errors.

Required columns: job_id, submit_time, gpus, duration. Optional: gpu_type, tenant,
job_type, classification, residency, personal_data, priority, preemptible, deadline,
and Arkwright's own time_limit, checkpoint_interval, flexible. Unknown columns are ignored.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import DataPolicy

REQUIRED = ("job_id", "submit_time", "gpus", "duration")
OPTIONAL = (
    "gpu_type",
    "tenant",
    "job_type",
    "classification",
    "residency",
    "personal_data",
    "priority",
    "preemptible",
    "deadline",
    "time_limit",
    "checkpoint_interval",
    "flexible",
)
COLUMNS = REQUIRED + OPTIONAL

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class TraceError(ValueError):
    def __init__(self, source: str, errors: list[RowError], shown: int = 10) -> None:
        head = "\n".join(f"  {source}:{e}" for e in errors[:shown])
        more = f"\n  … and {len(errors) - shown} more" if len(errors) > shown else ""
        super().__init__(f"{len(errors)} bad row(s) in {source}:\n{head}{more}")
        self.source = source
        self.errors = errors


@dataclass
class Trace:
    jobs: list[Job]  # sorted by submit time
    skipped: list[RowError]
    source: str


def _number(text: str, column: str, *, positive: bool = False, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{column} must be {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} must be finite, got {text!r}")
    if positive and value <= 0:
        raise ValueError(f"{column} must be positive, got {text!r}")
    if value < 0:
        raise ValueError(f"{column} must not be negative, got {text!r}")
    return value


def _flag(text: str, column: str, default: bool) -> bool:
    key = text.strip().lower()
    if not key:
        return default
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(f"{column} must be true or false, got {text!r}")


class _RowParser:
    """Turns rows into Jobs, interning repeated values so a million rows stay small."""

    def __init__(self, header: list[str]) -> None:
        self.index = {name.strip().lower(): i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED if c not in self.index]
        if missing:
            raise ValueError(f"missing required column(s): {', '.join(missing)}")
        self._policies: dict[tuple[str, str, str], DataPolicy] = {}
        self._gpu_sets: dict[str, frozenset[str] | None] = {"": None}
        self._strings: dict[str, str] = {}

    def _get(self, row: list[str], column: str) -> str:
        i = self.index.get(column)
        return row[i].strip() if i is not None and i < len(row) else ""

    def _intern(self, text: str, default: str) -> str:
        text = text or default
        return self._strings.setdefault(text, text)

    def _gpu_types(self, text: str) -> frozenset[str] | None:
        found = self._gpu_sets.get(text)
        if found is not None or text in self._gpu_sets:
            return found
        models = frozenset(m.strip() for m in text.replace(",", "|").split("|") if m.strip())
        unknown = sorted(m for m in models if m not in GPU_CATALOGUE)
        if unknown:
            raise ValueError(
                f"gpu_type: unknown GPU model {unknown[0]!r} (known: {', '.join(GPU_CATALOGUE)})"
            )
        self._gpu_sets[text] = models
        return models

    def _policy(self, residency: str, classification: str, personal: str) -> DataPolicy:
        key = (residency, classification, personal)
        found = self._policies.get(key)
        if found is None:
            found = DataPolicy.parse(residency, classification, personal)
            self._policies[key] = found
        return found

    def parse(self, row: list[str]) -> Job:
        get = self._get
        job_id = get(row, "job_id")
        if not job_id:
            raise ValueError("job_id is empty")
        submit = _number(get(row, "submit_time"), "submit_time")
        gpus = int(_number(get(row, "gpus"), "gpus", positive=True, integer=True))
        duration = _number(get(row, "duration"), "duration", positive=True)
        deadline_text = get(row, "deadline")
        deadline = _number(deadline_text, "deadline") if deadline_text else None
        if deadline is not None and deadline <= submit:
            raise ValueError(f"deadline {deadline_text} is not after submit_time {submit:g}")
        limit_text = get(row, "time_limit")
        ckpt_text = get(row, "checkpoint_interval")
        return Job(
            job_id=job_id,
            tenant=self._intern(get(row, "tenant"), "default"),
            gpus=gpus,
            duration_s=duration,
            submit_time=submit,
            time_limit_s=_number(limit_text, "time_limit", positive=True) if limit_text else None,
            data_policy=self._policy(
                get(row, "residency"), get(row, "classification"), get(row, "personal_data")
            ),
            gpu_types=self._gpu_types(get(row, "gpu_type")),
            job_type=self._intern(get(row, "job_type"), "default"),
            priority=PriorityClass.parse(get(row, "priority") or None),
            preemptible=_flag(get(row, "preemptible"), "preemptible", True),
            checkpoint_interval_s=(
                _number(ckpt_text, "checkpoint_interval", positive=True) if ckpt_text else None
            ),
            deadline=deadline,
            flexible=_flag(get(row, "flexible"), "flexible", deadline is not None),
        )


def read_trace(path: str | Path, *, skip_bad_rows: bool = False) -> Trace:
    """Read a whole trace. Bad rows stop the read (all of them listed) unless skipped."""
    source = str(path)
    try:
        handle = open(path, newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise TraceError(source, [RowError(0, f"cannot open ({exc.strerror})")]) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise TraceError(source, [RowError(1, "the file is empty (no header)")]) from None
        try:
            parser = _RowParser(header)
        except ValueError as exc:
            raise TraceError(source, [RowError(1, str(exc))]) from None
        jobs, errors = _parse_rows(parser, reader)
    if errors and not skip_bad_rows:
        raise TraceError(source, errors)
    jobs.sort(key=lambda j: j.submit_time)  # stable: ties keep file order
    return Trace(jobs, errors, source)


def _parse_rows(parser: _RowParser, rows: Iterable[list[str]]) -> tuple[list[Job], list[RowError]]:
    jobs: list[Job] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            job = parser.parse(row)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        seen = first_line.setdefault(job.job_id, line)
        if seen != line:
            errors.append(RowError(line, f"job_id {job.job_id!r} repeats line {seen}"))
            continue
        jobs.append(job)
    return jobs, errors


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

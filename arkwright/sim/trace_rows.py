"""The row-by-row trace reader: the reference for what every cell means.

Each row is checked on its own and every bad row is reported with its line number. The
columnar reader in `trace_fast` must give exactly these jobs; where it cannot tell, it
hands the file back to this reader, so errors always come from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import Job, PriorityClass
from arkwright.core.policy_data import DataPolicy
from arkwright.sim.trace_links import LINK_COLUMNS, LinkCheck, dependency_cell

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
COLUMNS = REQUIRED + OPTIONAL  # what a trace without dependencies or arrays is written with
# The link columns (`trace_links`) are optional too, and written only when used.

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


def number(text: str, column: str, *, positive: bool = False, integer: bool = False) -> float:
    """One numeric cell (already stripped), or ValueError naming the column."""
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


def flag(text: str, column: str, default: bool) -> bool:
    key = text.strip().lower()
    if not key:
        return default
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(f"{column} must be true or false, got {text!r}")


class RowParser:
    """Turns rows into Jobs, interning repeated values so a million rows stay small."""

    def __init__(self, header: list[str]) -> None:
        self.index = {name.strip().lower(): i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED if c not in self.index]
        if missing:
            raise ValueError(f"missing required column(s): {', '.join(missing)}")
        self._policies: dict[tuple[str, str, str], DataPolicy] = {}
        self._gpu_sets: dict[str, frozenset[str] | None] = {"": None}
        self._strings: dict[str, str] = {}
        self.links = any(c in self.index for c in LINK_COLUMNS)

    def _get(self, row: list[str], column: str) -> str:
        i = self.index.get(column)
        return row[i].strip() if i is not None and i < len(row) else ""

    def intern(self, text: str, default: str) -> str:
        text = text or default
        return self._strings.setdefault(text, text)

    def gpu_types(self, text: str) -> frozenset[str] | None:
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

    def policy(self, residency: str, classification: str, personal: str) -> DataPolicy:
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
        submit = number(get(row, "submit_time"), "submit_time")
        gpus = int(number(get(row, "gpus"), "gpus", positive=True, integer=True))
        duration = number(get(row, "duration"), "duration", positive=True)
        deadline_text = get(row, "deadline")
        deadline = number(deadline_text, "deadline") if deadline_text else None
        if deadline is not None and deadline <= submit:
            raise ValueError(f"deadline {deadline_text} is not after submit_time {submit:g}")
        limit_text = get(row, "time_limit")
        ckpt_text = get(row, "checkpoint_interval")
        job = Job(
            job_id=job_id,
            tenant=self.intern(get(row, "tenant"), "default"),
            gpus=gpus,
            duration_s=duration,
            submit_time=submit,
            time_limit_s=number(limit_text, "time_limit", positive=True) if limit_text else None,
            data_policy=self.policy(
                get(row, "residency"), get(row, "classification"), get(row, "personal_data")
            ),
            gpu_types=self.gpu_types(get(row, "gpu_type")),
            job_type=self.intern(get(row, "job_type"), "default"),
            priority=PriorityClass.parse(get(row, "priority") or None),
            preemptible=flag(get(row, "preemptible"), "preemptible", True),
            checkpoint_interval_s=(
                number(ckpt_text, "checkpoint_interval", positive=True) if ckpt_text else None
            ),
            deadline=deadline,
            flexible=flag(get(row, "flexible"), "flexible", deadline is not None),
        )
        if self.links:
            job.dependency = dependency_cell(get(row, "dependency"))
            array_text = get(row, "array_limit")
            array_id = get(row, "array_id")
            job.array_id = self.intern(array_id, "") if array_id else None
            job.array_limit = (
                int(number(array_text, "array_limit", integer=True)) if array_text else 0
            )
        return job


def parse_rows(parser: RowParser, rows: Iterable[list[str]]) -> tuple[list[Job], list[RowError]]:
    """Every good row as a Job (file order) and every bad one as a RowError."""
    jobs: list[Job] = []
    lines: list[int] = []  # each job's line, kept only for the link columns' checks
    links = parser.links
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
        if links:
            lines.append(line)
    if links and any(j.dependency or j.array_id is not None or j.array_limit for j in jobs):
        jobs = _check_links(jobs, lines, errors)
    return jobs, errors


def _check_links(jobs: list[Job], lines: list[int], errors: list[RowError]) -> list[Job]:
    """The good jobs (file order) that pass `LinkCheck`; the others become errors."""
    order = sorted(range(len(jobs)), key=lambda i: jobs[i].submit_time)  # stable
    check = LinkCheck([jobs[i].job_id for i in order])
    refused: set[int] = set()
    for at, i in enumerate(order):
        job = jobs[i]
        if job.dependency is None and job.array_id is None and not job.array_limit:
            continue
        why = check.check(at, job.job_id, job.dependency, job.array_id, job.array_limit)
        if why is not None:
            errors.append(RowError(lines[i], why))
            refused.add(i)
    errors.sort(key=lambda e: e.line)
    return [job for i, job in enumerate(jobs) if i not in refused]

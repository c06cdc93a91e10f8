"""Building a million Jobs at once: by position, with the cyclic collector paused."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from arkwright.core.job import Job
from arkwright.sim.trace_maker import make_jobs


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic collector while a million objects are made.

    None of them is garbage, yet each collection walks them all; left on, the
    collector costs more than building the objects. On the way out the new objects
    go straight to the oldest generation (freeze, then unfreeze), rather than being
    walked by the young collection that the allocation count would start at once.
    Objects someone else froze are left frozen.
    """
    was_on = gc.isenabled()
    nobody_froze = gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        if nobody_froze and gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was_on:
            gc.enable()


def build_jobs(columns: dict[str, Iterable], rows: int) -> list[Job]:
    """Jobs from columns of spec values, one Job per row.

    Made by `trace_maker` where it can be trusted, else by `Job(...)` with arguments by
    position (a keyword call costs far more per Job), the positions taken from Job's
    own field list, so a field that Job gains with a default is filled with it rather
    than shifting the others. TypeError if Job gains a field without a default that
    the columns do not name, or has no field a column names.
    """
    listed = {name: _listed(values) for name, values in columns.items()}
    with no_gc():
        made = make_jobs(listed, rows)
        return made if made is not None else list(map(Job, *_by_position(listed, rows)))


def _by_position(columns: dict[str, Sequence], rows: int) -> list[Iterable]:
    args: list[Iterable] = []
    wanted = set(columns)
    for spec in fields(Job):
        if not wanted:
            break
        if spec.name in columns:
            args.append(columns[spec.name])
            wanted.discard(spec.name)
        elif spec.default is not MISSING:
            args.append(itertools.repeat(spec.default, rows))
        else:
            raise TypeError(f"Job.{spec.name} has no default and no column")
    if wanted:
        raise TypeError(f"Job has no field(s) {', '.join(sorted(wanted))}")
    return args


def _listed(values: Iterable) -> Sequence:
    return values if isinstance(values, list | tuple) else list(values)


# Number fields a row may leave empty: NaN in the arrays, None in the Job.
OPTIONAL_NUMBERS = ("deadline", "time_limit_s", "checkpoint_interval_s")
# Fields that repeat across rows, carried once per distinct combination.
REPEATED_FIELDS = (
    "tenant",
    "job_type",
    "data_policy",
    "gpu_types",
    "priority",
    "preemptible",
    "flexible",
)


@dataclass
class TraceColumns:
    """A trace's spec values a column at a time, rows in submit order.

    Absent optional numbers are NaN (a present one is always finite). `combos[code]`
    holds the REPEATED_FIELDS values shared by the rows with that code. The link
    columns (`trace_links`) are None for a trace that has none of them, so such a
    trace costs nothing more; otherwise they hold one value per row.
    """

    job_id: list[str]
    submit_time: np.ndarray  # float64
    gpus: np.ndarray  # int64
    duration_s: np.ndarray
    deadline: np.ndarray
    time_limit_s: np.ndarray
    checkpoint_interval_s: np.ndarray
    codes: np.ndarray  # int64, one per row
    combos: list[tuple]
    dependency: list | None = field(default=None)  # Dependency | None per row
    array_id: list | None = field(default=None)  # str | None per row
    array_limit: np.ndarray | None = field(default=None)  # int64, 0: none

    @property
    def rows(self) -> int:
        return len(self.job_id)

    def jobs(self) -> list[Job]:
        links: dict[str, list] = {}
        if self.dependency is not None:
            links["dependency"] = self.dependency
        if self.array_id is not None:
            links["array_id"] = self.array_id
        if self.array_limit is not None:
            links["array_limit"] = self.array_limit.tolist()
        numbers = {
            "job_id": self.job_id,
            "submit_time": self.submit_time.tolist(),
            "gpus": self.gpus.tolist(),
            "duration_s": self.duration_s.tolist(),
        }
        with no_gc():
            made = make_jobs(
                numbers | {name: getattr(self, name).tolist() for name in OPTIONAL_NUMBERS} | links,
                self.rows,
                repeated=REPEATED_FIELDS,
                combo=objects(self.combos)[self.codes].tolist(),
                optional=OPTIONAL_NUMBERS,
            )
        if made is not None:
            return made
        columns: dict[str, Iterable] = numbers | links
        for name in OPTIONAL_NUMBERS:
            columns[name] = _or_none(getattr(self, name))
        for k, name in enumerate(REPEATED_FIELDS):
            columns[name] = objects([combo[k] for combo in self.combos])[self.codes].tolist()
        return build_jobs(columns, self.rows)


def objects(values: list) -> np.ndarray:
    """An object array of these values, element by element (never unpacking a set)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _or_none(values: np.ndarray) -> list:
    absent = np.isnan(values)
    if not absent.any():
        return values.tolist()
    out = values.astype(object)
    out[absent] = None
    return out.tolist()

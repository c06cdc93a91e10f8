"""Building a million Jobs at once: by position, with the cyclic collector paused."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields

from arkwright.core.job import Job


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic collector while a million objects are made.

    None of them is garbage, yet each collection of the oldest generation walks them
    all; left on, the collector costs more than building the objects.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def build_jobs(columns: dict[str, Iterable], rows: int) -> list[Job]:
    """Jobs from columns of spec values, one Job per row.

    Arguments are passed by position (a keyword call costs far more per Job); the
    positions come from Job's own field list, so a field that Job gains with a default
    is filled with it rather than shifting the others. TypeError if Job gains a field
    without a default that the columns do not name.
    """
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
    with no_gc():
        return list(map(Job, *args))

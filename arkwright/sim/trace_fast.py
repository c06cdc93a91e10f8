"""The columnar trace reader: the same jobs as the row reader, a column at a time.

`jobs_from_csv` either returns exactly the jobs `trace_rows` would give for the file
(same values, same order) or None, and then the row reader reads it and reports its bad
rows by line. It never reports errors itself: any cell it cannot decide in bulk goes
through the row reader's own rules (`number`, `flag`, `RowParser`), and any rule that
fails gives None. Cells that repeat (tenant, data policy, GPU types, priority, flags)
are decided once per distinct combination, as the row reader's interning would share
them; numbers are parsed in bulk where their text is a plain decimal (see
`trace_columns.Table.numbers`).
"""

from __future__ import annotations

import numpy as np

from arkwright.core.job import Job, PriorityClass
from arkwright.sim.trace_build import REPEATED_FIELDS, TraceColumns, no_gc
from arkwright.sim.trace_columns import Collision, Table, tokenize
from arkwright.sim.trace_links import LinkCheck, dependency_cell
from arkwright.sim.trace_rows import RowParser, flag, number

# Cells decided once per distinct combination, in this order.
_REPEATED = (
    "tenant",
    "job_type",
    "residency",
    "classification",
    "personal_data",
    "gpu_type",
    "priority",
    "preemptible",
    "flexible",
)
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True  # what str.strip() strips in ASCII


class _GiveUp(Exception):
    """Some cell needs the row reader (a bad value, a repeated id): hand the file back."""


def jobs_from_csv(raw: bytes) -> list[Job] | None:
    """The trace's jobs sorted by submit time (stable), or None: read it row by row."""
    columns = columns_from_csv(raw)
    if columns is None:
        return None
    try:
        return columns.jobs()
    except TypeError:
        return None  # Job gained a field without a default: the row reader knows it


def columns_from_csv(raw: bytes) -> TraceColumns | None:
    """The trace's columns in submit order (stable), or None: read it row by row."""
    table = tokenize(raw)
    if table is None:
        return None
    try:
        parser = RowParser(table.header)
    except ValueError:
        return None  # the row reader names the missing columns
    try:
        with no_gc():
            return _jobs(table, parser)
    except (_GiveUp, Collision):
        return None


def _jobs(table: Table, parser: RowParser) -> TraceColumns:
    index = parser.index
    ids = _job_ids(table, index["job_id"])
    submit, _ = _numbers(table, parser, "submit_time")
    gpus, _ = _numbers(table, parser, "gpus", positive=True, integer=True)
    duration, _ = _numbers(table, parser, "duration", positive=True)
    deadline, has_deadline = _numbers(table, parser, "deadline", optional=True)
    if (has_deadline & (deadline <= submit)).any():
        raise _GiveUp
    time_limit, has_limit = _numbers(table, parser, "time_limit", positive=True, optional=True)
    ckpt, has_ckpt = _numbers(table, parser, "checkpoint_interval", positive=True, optional=True)
    repeated = _repeated(table, parser, has_deadline)

    order = np.argsort(submit, kind="stable")  # ties keep file order, as list.sort
    if not (np.diff(order) > 0).all():
        ids = np.array(ids, dtype=object)[order].tolist()
    codes, combos = repeated
    links = _links(table, parser, ids, order) if parser.links else {}
    return TraceColumns(
        job_id=ids,
        submit_time=submit[order],
        gpus=gpus[order],
        duration_s=duration[order],
        deadline=np.where(has_deadline, deadline, np.nan)[order],
        time_limit_s=np.where(has_limit, time_limit, np.nan)[order],
        checkpoint_interval_s=np.where(has_ckpt, ckpt, np.nan)[order],
        codes=codes[order],
        combos=combos,
        **links,
    )


def _links(table: Table, parser: RowParser, ids: list[str], order: np.ndarray) -> dict:
    """The link columns in submit order (`ids` already is), or {} where all are empty.

    Only files that have the columns come here, so a trace without them pays nothing;
    and only the rows with a cell in them are looked at one by one.
    """
    rows = table.rows
    index = parser.index
    dependency: list = [None] * rows
    array_id: list = [None] * rows
    marked = np.zeros(rows, dtype=bool)  # rows, in submit order, with some link cell
    if "dependency" in index:
        column = index["dependency"]
        texts = table.strings(column)
        given = np.flatnonzero(table.bounds(column)[1][order] > 0)
        rows_of = order[given].tolist()
        memo: dict = {}
        try:
            for at, row in zip(given.tolist(), rows_of, strict=True):
                text = texts[row]
                found = memo.get(text, memo)
                if found is memo:
                    found = memo[text] = dependency_cell(text.strip())
                if found is not None:  # not a cell of spaces
                    dependency[at] = found
                    marked[at] = True
        except ValueError:
            raise _GiveUp from None
    if "array_id" in index:
        column = index["array_id"]
        texts = table.strings(column)
        given = np.flatnonzero(table.bounds(column)[1][order] > 0)
        for at, row in zip(given.tolist(), order[given].tolist(), strict=True):
            text = texts[row].strip()
            if text:
                array_id[at] = parser.intern(text, "")
                marked[at] = True
    limits, has_limit = _numbers(table, parser, "array_limit", integer=True, optional=True)
    array_limit = np.where(has_limit, limits, 0).astype(np.int64)[order]
    marked |= array_limit != 0
    if not marked.any():
        return {}
    check = LinkCheck(ids)
    for at in np.flatnonzero(marked).tolist():
        limit = int(array_limit[at])
        if check.check(at, ids[at], dependency[at], array_id[at], limit) is not None:
            raise _GiveUp  # the row reader names the line
    return {"dependency": dependency, "array_id": array_id, "array_limit": array_limit}


def _job_ids(table: Table, column: int) -> list[str]:
    starts, lengths = table.bounds(column)
    ids = table.strings(column)
    buf = table.buf
    edge = _WHITESPACE[buf[starts]] | _WHITESPACE[buf[starts + np.maximum(lengths - 1, 0)]]
    if (lengths == 0).any() or edge.any():
        ids = [text.strip() for text in ids]  # as the row reader strips every cell
        if not all(ids):
            raise _GiveUp  # an empty id, or a blank row the row reader skips
        if len(set(ids)) != len(ids):
            raise _GiveUp
    elif table.duplicate_rows(column) and len(set(ids)) != len(ids):
        raise _GiveUp  # the row reader names both lines
    return ids


def _numbers(
    table: Table,
    parser: RowParser,
    name: str,
    *,
    positive: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column and which cells hold a value (all, unless optional)."""
    column = parser.index.get(name)
    rows = table.rows
    if column is None:
        return np.zeros(rows), np.zeros(rows, dtype=bool)
    bulk = table.numbers(column, integer=integer)
    values, present = bulk.values, np.ones(rows, dtype=bool)
    starts, lengths = table.bounds(column)
    if optional:
        present = lengths > 0
    if positive and (values[bulk.exact] <= 0).any():
        raise _GiveUp
    for i in np.flatnonzero(~bulk.exact & present).tolist():
        text = table.cell(int(starts[i]), int(lengths[i])).strip()
        if optional and not text:
            present[i] = False
            continue
        try:
            value = number(text, name, positive=positive, integer=integer)
            values[i] = value
        except (ValueError, OverflowError):
            raise _GiveUp from None
        if values[i] != value:
            raise _GiveUp  # too large to hold as an int64: rare enough to read by rows
    return values, present


def _repeated(
    table: Table, parser: RowParser, has_deadline: np.ndarray
) -> tuple[np.ndarray, list[tuple]]:
    """A code per row and, per code, the REPEATED_FIELDS values its rows share."""
    present = [name for name in _REPEATED if name in parser.index]
    found = table.codes_of_rows(
        [parser.index[name] for name in present], has_deadline.astype(np.uint8)
    )
    combos = []
    for text, sample in zip(found.texts, found.sample.tolist(), strict=True):
        cells = dict(zip(present, text.split("\0"), strict=True)) if present else {}

        def get(name: str, cells: dict[str, str] = cells) -> str:
            return cells.get(name, "").strip()

        try:
            values = {
                "tenant": parser.intern(get("tenant"), "default"),
                "job_type": parser.intern(get("job_type"), "default"),
                "data_policy": parser.policy(
                    get("residency"), get("classification"), get("personal_data")
                ),
                "gpu_types": parser.gpu_types(get("gpu_type")),
                "priority": PriorityClass.parse(get("priority") or None),
                "preemptible": flag(get("preemptible"), "preemptible", True),
                "flexible": flag(get("flexible"), "flexible", bool(has_deadline[sample])),
            }
        except ValueError:
            raise _GiveUp from None
        combos.append(tuple(values[name] for name in REPEATED_FIELDS))
    return found.codes, combos

"""A binary copy of a large trace beside its CSV (`<file>.arkt`): read again in a fraction.

Parsing is most of a columnar read; the copy holds the parsed columns, so a second
read is hashing the CSV, checking the copy and building the Jobs.

When the copy is used:
- It names the SHA-256 of the whole CSV it was made from; any change to the CSV (one
  byte, same size and time or not) makes it stale, and it is rebuilt after the read.
- It carries the SHA-256 of its own contents, checked before anything in it is
  parsed: a truncated, corrupted or edited copy is ignored and rebuilt.
- What it holds is checked as the CSV reader checks cells (positive GPUs and run
  times, finite numbers, deadlines after submission, known GPU models, sorted rows),
  so even a copy written on purpose with a matching checksum can only give jobs that
  some valid CSV gives. (Whoever can write beside the CSV can also edit the CSV.)
- The link columns (dependency, array_id, array_limit) are kept as text and read
  back through `trace_links`' own rules and checks, for the same reason.
- Only plain-shaped files the columnar reader took are copied, never a file with bad
  rows; writing is atomic and skipped silently where the directory is read-only.

Layout: MAGIC, 32-byte SHA-256 of the rest, 8-byte length of a JSON header, the JSON
(format, CSV hash, row count, where each array lies, the distinct repeated values),
then the arrays' bytes. Format 2 added the link columns (`links`, null for a trace
without them); a copy of another format is ignored and rebuilt, never misread.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import PriorityClass
from arkwright.core.policy_data import Classification, DataPolicy, PersonalData
from arkwright.sim.trace_build import TraceColumns
from arkwright.sim.trace_links import LinkCheck, dependency_cell, dependency_text

MAGIC = b"ARKT\x01\n"
FORMAT = 2
MIN_ROWS = 100_000  # smaller traces read from CSV fast enough to need no copy
_ARRAYS = {
    "submit_time": "<f8",
    "gpus": "<i8",
    "duration_s": "<f8",
    "deadline": "<f8",
    "time_limit_s": "<f8",
    "checkpoint_interval_s": "<f8",
    "codes": "<i8",
}


class BadCache(ValueError):
    """The copy cannot be trusted: ignore it (and rebuild it from the CSV)."""


def cache_path(csv_path: str | Path) -> Path:
    return Path(f"{csv_path}.arkt")


def csv_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load(csv_path: str | Path, digest: str) -> TraceColumns | None:
    """The cached columns for the CSV with this digest, or None (absent, stale or bad)."""
    try:
        data = cache_path(csv_path).read_bytes()
    except OSError:
        return None
    try:
        return decode(data, digest)
    except BadCache:
        return None


def save(csv_path: str | Path, digest: str, columns: TraceColumns) -> bool:
    """Write the copy if the trace is large enough and the directory writable."""
    if columns.rows < MIN_ROWS:
        return False
    path = cache_path(csv_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(encode(columns, digest))
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def encode(columns: TraceColumns, digest: str) -> bytes:
    ids = "\n".join(columns.job_id).encode("utf-8")
    arrays: dict[str, list[int]] = {}
    blobs = [ids]
    offset = len(ids)
    for name, dtype in _ARRAYS.items():
        blob = np.ascontiguousarray(getattr(columns, name), dtype=dtype).tobytes()
        arrays[name] = [offset, len(blob)]
        blobs.append(blob)
        offset += len(blob)
    links = None
    given = (columns.dependency, columns.array_id, columns.array_limit)
    if any(column is not None for column in given):
        rows = columns.rows
        dependency = columns.dependency or [None] * rows
        array_id = columns.array_id or [None] * rows
        limits = columns.array_limit
        if limits is None:
            limits = np.zeros(rows, dtype=np.int64)
        parts = {
            "dependency": "\n".join(map(dependency_text, dependency)).encode("utf-8"),
            "array_id": "\n".join(a or "" for a in array_id).encode("utf-8"),
            "array_limit": np.ascontiguousarray(limits, dtype="<i8").tobytes(),
        }
        links = {}
        for name, blob in parts.items():
            links[name] = [offset, len(blob)]
            blobs.append(blob)
            offset += len(blob)
    header = {
        "format": FORMAT,
        "csv_sha256": digest,
        "rows": columns.rows,
        "ids": [0, len(ids)],
        "arrays": arrays,
        "combos": [_combo_json(c) for c in columns.combos],
        "links": links,
    }
    head = json.dumps(header).encode()
    body = len(head).to_bytes(8, "little") + head + b"".join(blobs)
    return MAGIC + hashlib.sha256(body).digest() + body


def decode(data: bytes, digest: str) -> TraceColumns:
    if not data.startswith(MAGIC):
        raise BadCache("not a trace copy")
    checksum, body = data[len(MAGIC) : len(MAGIC) + 32], data[len(MAGIC) + 32 :]
    if hashlib.sha256(body).digest() != checksum:
        raise BadCache("checksum does not match the contents")
    try:
        size = int.from_bytes(body[:8], "little")
        header = json.loads(body[8 : 8 + size])
        payload = memoryview(body)[8 + size :]
        if header["format"] != FORMAT or header["csv_sha256"] != digest:
            raise BadCache("made from another CSV, or by another version")
        rows = header["rows"]
        start, length = header["ids"]
        ids = bytes(payload[start : start + length]).decode("utf-8").split("\n")
        arrays = {}
        for name, dtype in _ARRAYS.items():
            start, length = header["arrays"][name]
            arrays[name] = np.frombuffer(payload[start : start + length], dtype=dtype).copy()
        combos = [_combo(c) for c in header["combos"]]
        links = _links(header["links"], payload, rows)
    except BadCache:
        raise
    except (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise BadCache(f"malformed: {exc}") from None
    columns = TraceColumns(job_id=ids, combos=combos, **arrays, **links)
    _check(columns, rows)
    return columns


def _links(where: dict | None, payload: memoryview, rows: int) -> dict:
    """The link columns as the CSV readers give them (parsed by the same rules)."""
    if where is None:
        return {}

    def text(name: str) -> list[str]:
        start, length = where[name]
        return bytes(payload[start : start + length]).decode("utf-8").split("\n")

    memo: dict = {"": None}
    try:
        dependency = [
            memo[t] if t in memo else memo.setdefault(t, dependency_cell(t))
            for t in text("dependency")
        ]
    except ValueError as exc:
        raise BadCache(f"a dependency does not parse: {exc}") from None
    array_id = [a or None for a in text("array_id")]
    start, length = where["array_limit"]
    array_limit = np.frombuffer(payload[start : start + length], dtype="<i8").copy()
    if not (len(dependency) == len(array_id) == len(array_limit) == rows):
        raise BadCache("link columns do not match the row count")
    if (array_limit < 0).any():
        raise BadCache("array limits must not be negative")
    return {"dependency": dependency, "array_id": array_id, "array_limit": array_limit}


def _combo_json(combo: tuple) -> list:
    tenant, job_type, policy, gpu_types, priority, preemptible, flexible = combo
    return [
        tenant,
        job_type,
        sorted(policy.residency) if policy.residency is not None else None,
        int(policy.classification),
        policy.personal_data.value,
        sorted(gpu_types) if gpu_types is not None else None,
        int(priority),
        bool(preemptible),
        bool(flexible),
    ]


def _combo(item: list) -> tuple:
    tenant, job_type, residency, level, personal, gpu_types, priority, preemptible, flexible = item
    strings = [tenant, job_type, personal, *(residency or []), *(gpu_types or [])]
    if not all(isinstance(s, str) and s for s in strings):
        raise BadCache("a repeated value is not a non-empty string")
    if not all(isinstance(f, bool) for f in (preemptible, flexible)):
        raise BadCache("a flag is not a bool")
    if gpu_types is not None and (not gpu_types or any(m not in GPU_CATALOGUE for m in gpu_types)):
        raise BadCache("unknown GPU model")
    if type(level) is not int or type(priority) is not int:
        raise BadCache("a level is not an int")
    policy = DataPolicy(
        frozenset(residency) if residency is not None else None,
        Classification(level),
        PersonalData(personal),
    )
    return (
        tenant,
        job_type,
        policy,
        frozenset(gpu_types) if gpu_types is not None else None,
        PriorityClass(priority),
        preemptible,
        flexible,
    )


def _check(columns: TraceColumns, rows: int) -> None:
    """The same guarantees the CSV readers give about every value."""
    if len(columns.job_id) != rows or not all(columns.job_id):
        raise BadCache("job ids do not match the row count")
    for name in _ARRAYS:
        if len(getattr(columns, name)) != rows:
            raise BadCache(f"{name} does not match the row count")
    submit, duration = columns.submit_time, columns.duration_s
    if not (np.isfinite(submit).all() and (submit >= 0).all()):
        raise BadCache("submit times must be finite and not negative")
    if rows > 1 and (submit[1:] < submit[:-1]).any():
        raise BadCache("rows are not in submit order")
    if not ((columns.gpus > 0).all() and np.isfinite(duration).all() and (duration > 0).all()):
        raise BadCache("gpus and durations must be positive")
    for name in ("time_limit_s", "checkpoint_interval_s"):
        values = getattr(columns, name)
        given = ~np.isnan(values)
        if not (np.isfinite(values[given]).all() and (values[given] > 0).all()):
            raise BadCache(f"{name} must be positive where given")
    deadline = columns.deadline
    given = ~np.isnan(deadline)
    if not (np.isfinite(deadline[given]).all() and (deadline[given] > submit[given]).all()):
        raise BadCache("deadlines must come after submission")
    codes = columns.codes
    if rows and (codes.min() < 0 or codes.max() >= len(columns.combos)):
        raise BadCache("a row names no combination")
    if columns.dependency is not None:
        ids, limits = columns.job_id, columns.array_limit
        marked = limits != 0
        marked[[at for at, d in enumerate(columns.dependency) if d is not None]] = True
        marked[[at for at, a in enumerate(columns.array_id) if a is not None]] = True
        check = LinkCheck(ids)
        for at in np.flatnonzero(marked).tolist():
            dependency, array_id = columns.dependency[at], columns.array_id[at]
            if check.check(at, ids[at], dependency, array_id, int(limits[at])) is not None:
                raise BadCache("a dependency or array limit no CSV could give")

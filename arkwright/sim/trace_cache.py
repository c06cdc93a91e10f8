"""A binary copy of a large trace beside its CSV (`<file>.arkt`): read again in a fraction.

Parsing is most of a columnar read; the copy holds the parsed columns, so a second
read is hashing the CSV, checking the copy and building the Jobs.

When the copy is used:
- It names the SHA-256 of the whole CSV it was made from; any change to the CSV (one
  byte, same size and time or not) makes it stale, and it is rebuilt after the read.
- It may also name the CSV's stamp (device, inode, size, mtime and ctime in ns, as
  `os.stat` gives them). While the CSV's stamp equals it, the copy is used without
  reading or hashing the CSV at all. A stamp is recorded only once it has *settled*:
  both times at least SETTLE_NS before the clock when the copy was written, and the
  same before and after the CSV was read, as git trusts an index entry only when it
  is older than the index ("racy git"). Why that suffices: any write to the file sets
  its ctime to the clock, which no user can set back (unlike mtime, `touch -d`), so a
  rewrite after the copy (same size, mtime restored or not) gives another ctime; a
  rewrite in the same timestamp tick as an earlier one (coarse clocks: 1-2 s on FAT
  and ext3, a jiffy on ext4) cannot follow a settled stamp; a new file on a reused
  inode is created later than the stamp; a copied or moved-in file has another inode
  or ctime. What remains is a clock set back by more than SETTLE_NS, or a file server
  whose clock lags the reader's by more than that, together with a same-size rewrite
  in one tick: then the digest is the guard only if the stamp differs, so the lead
  may pass `trust_stamp=False` (`read_trace`) where clocks are not trusted.
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
(format, CSV hash, the CSV's stamp or null, row count, where each array lies, the
distinct repeated values),
then the arrays' bytes. Format 2 added the link columns (`links`, null for a trace
without them); a copy of another format is ignored and rebuilt, never misread. The
stamp (`csv_stat`) is an optional key of format 2: a copy without it is used through
the digest alone, and an older reader ignores it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.job import PriorityClass
from arkwright.core.policy_data import Classification, DataPolicy, PersonalData
from arkwright.sim.trace_build import TraceColumns
from arkwright.sim.trace_links import LinkCheck, dependency_cell, dependency_text

MAGIC = b"ARKT\x01\n"
FORMAT = 2
MIN_ROWS = 100_000  # smaller traces read from CSV fast enough to need no copy
# How long both of a CSV's times must lie behind the clock before its stamp is recorded:
# above the coarsest timestamp granularity in common use (FAT's 2 s).
SETTLE_NS = 3_000_000_000
_ARRAYS = {
    "submit_time": "<f8",
    "gpus": "<i8",
    "duration_s": "<f8",
    "deadline": "<f8",
    "time_limit_s": "<f8",
    "checkpoint_interval_s": "<f8",
    "codes": "<i8",
}


class Stamp(NamedTuple):
    """What `os.stat` says about a CSV; any write to it changes ctime at least."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


def stamp_of(stat: os.stat_result) -> Stamp:
    return Stamp(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def settled(stamp: Stamp, now_ns: int) -> bool:
    """True if the stamp may be recorded: both times set and SETTLE_NS behind `now_ns`."""
    newest = max(stamp.mtime_ns, stamp.ctime_ns)
    return min(stamp.mtime_ns, stamp.ctime_ns) > 0 and newest <= now_ns - SETTLE_NS


def now_ns() -> int:
    return time.time_ns()  # the clock file times are set from (tests move it)


class BadCache(ValueError):
    """The copy cannot be trusted: ignore it (and rebuild it from the CSV)."""


def cache_path(csv_path: str | Path) -> Path:
    return Path(f"{csv_path}.arkt")


def csv_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load(csv_path: str | Path, digest: str) -> TraceColumns | None:
    """The cached columns for the CSV with this digest, or None (absent, stale or bad)."""
    return _load(csv_path, lambda header: header["csv_sha256"] == digest)


def load_stamped(csv_path: str | Path, stamp: Stamp) -> TraceColumns | None:
    """The cached columns if the copy recorded exactly this stamp of the CSV, or None."""
    return _load(csv_path, lambda header: header.get("csv_stat") == list(stamp))


def _load(csv_path: str | Path, made_from: Callable[[dict], bool]) -> TraceColumns | None:
    try:
        data = cache_path(csv_path).read_bytes()
    except OSError:
        return None
    try:
        return decode(data, made_from)
    except BadCache:
        return None


def save(
    csv_path: str | Path, digest: str, columns: TraceColumns, stamp: Stamp | None = None
) -> bool:
    """Write the copy if the trace is large enough and the directory writable.

    `stamp` is the CSV's stamp before and after the bytes were read (None if it
    changed meanwhile); it is recorded only if it has settled (module doc).
    """
    if columns.rows < MIN_ROWS:
        return False
    if stamp is not None and not settled(stamp, now_ns()):
        stamp = None
    path = cache_path(csv_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(encode(columns, digest, stamp))
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def encode(columns: TraceColumns, digest: str, stamp: Stamp | None = None) -> bytes:
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
        "csv_stat": list(stamp) if stamp is not None else None,
        "rows": columns.rows,
        "ids": [0, len(ids)],
        "arrays": arrays,
        "combos": [_combo_json(c) for c in columns.combos],
        "links": links,
    }
    head = json.dumps(header).encode()
    body = len(head).to_bytes(8, "little") + head + b"".join(blobs)
    return MAGIC + hashlib.sha256(body).digest() + body


def decode(data: bytes, made_from: Callable[[dict], bool]) -> TraceColumns:
    """The columns in a copy whose header `made_from` accepts (made from this CSV)."""
    if not data.startswith(MAGIC):
        raise BadCache("not a trace copy")
    view = memoryview(data)
    checksum, body = view[len(MAGIC) : len(MAGIC) + 32], view[len(MAGIC) + 32 :]
    try:
        size = int.from_bytes(body[:8], "little")
        header = json.loads(bytes(body[8 : 8 + size]))
        payload = body[8 + size :]
        # Asked before the checksum, to turn away another CSV's copy without hashing
        # it; nothing in the header is used unless the checksum then holds.
        if header["format"] != FORMAT or not made_from(header):
            raise BadCache("made from another CSV, or by another version")
        if hashlib.sha256(body).digest() != checksum:
            raise BadCache("checksum does not match the contents")
        rows = header["rows"]
        start, length = header["ids"]
        ids = str(payload[start : start + length], "utf-8").split("\n")
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
        return str(payload[start : start + length], "utf-8").split("\n")

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

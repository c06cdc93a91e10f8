"""The binary copy beside a trace: used only while it matches the CSV and itself."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from arkwright.core.job import SPEC_FIELDS
from arkwright.fleets import load_fleet
from arkwright.sim import trace_cache
from arkwright.sim.synth import synthesize
from arkwright.sim.trace import TraceError, read_trace, read_trace_by_rows, write_trace


def signature(jobs):
    return [tuple((f, getattr(j, f), type(getattr(j, f))) for f in SPEC_FIELDS) for j in jobs]


@pytest.fixture
def small_cache(monkeypatch):
    monkeypatch.setattr(trace_cache, "MIN_ROWS", 1)


@pytest.fixture
def trace_file(tmp_path, small_cache):
    path = tmp_path / "t.csv"
    write_trace(path, synthesize(load_fleet("uk-2026"), 500, 0.9, 3))
    return path


def rewrite(path, data: bytes) -> None:
    """Replace a copy's body and give it a matching checksum (a deliberate forgery)."""
    body = data[len(trace_cache.MAGIC) + 32 :]
    path.write_bytes(trace_cache.MAGIC + hashlib.sha256(body).digest() + body)


def test_the_copy_is_written_and_gives_the_same_jobs(trace_file):
    first = read_trace(trace_file)
    assert trace_cache.cache_path(trace_file).exists()
    digest = trace_cache.csv_digest(trace_file.read_bytes())
    assert trace_cache.load(trace_file, digest) is not None  # the next read uses it
    again = read_trace(trace_file)
    rows = read_trace_by_rows(trace_file)
    assert signature(again.jobs) == signature(first.jobs) == signature(rows.jobs)


def test_a_changed_csv_makes_the_copy_stale_and_it_is_rebuilt(trace_file):
    read_trace(trace_file)
    copy = trace_cache.cache_path(trace_file)
    before = copy.read_bytes()
    text = trace_file.read_bytes().decode()
    # Same size, one digit of the first job's gpus changed: only the content differs.
    lines = text.split("\r\n")
    cells = lines[1].split(",")
    cells[2] = "3" if cells[2] != "3" else "5"
    lines[1] = ",".join(cells)
    trace_file.write_bytes("\r\n".join(lines).encode())
    jobs = read_trace(trace_file).jobs
    assert signature(jobs) == signature(read_trace_by_rows(trace_file).jobs)
    assert int(cells[2]) in {j.gpus for j in jobs if j.job_id == cells[0]}
    assert copy.read_bytes() != before  # rebuilt for the new content


def test_a_corrupted_copy_is_ignored_and_rebuilt(trace_file):
    read_trace(trace_file)
    copy = trace_cache.cache_path(trace_file)
    data = bytearray(copy.read_bytes())
    data[-20] ^= 0xFF  # a flipped byte in the arrays
    copy.write_bytes(bytes(data))
    digest = trace_cache.csv_digest(trace_file.read_bytes())
    assert trace_cache.load(trace_file, digest) is None
    jobs = read_trace(trace_file).jobs
    assert signature(jobs) == signature(read_trace_by_rows(trace_file).jobs)
    assert trace_cache.load(trace_file, digest) is not None  # rebuilt


def test_a_truncated_or_foreign_file_is_ignored(trace_file):
    read_trace(trace_file)
    copy = trace_cache.cache_path(trace_file)
    digest = trace_cache.csv_digest(trace_file.read_bytes())
    copy.write_bytes(copy.read_bytes()[:100])
    assert trace_cache.load(trace_file, digest) is None
    copy.write_bytes(b"PK\x03\x04 not ours")
    assert trace_cache.load(trace_file, digest) is None


def test_a_forged_copy_with_a_good_checksum_still_cannot_give_invalid_jobs(trace_file):
    read_trace(trace_file)
    copy = trace_cache.cache_path(trace_file)
    data = copy.read_bytes()
    digest = trace_cache.csv_digest(trace_file.read_bytes())
    start = len(trace_cache.MAGIC) + 32
    size = int.from_bytes(data[start : start + 8], "little")
    header = json.loads(data[start + 8 : start + 8 + size])
    payload = bytearray(data[start + 8 + size :])
    offset, _ = header["arrays"]["gpus"]
    payload[offset : offset + 8] = np.int64(0).tobytes()  # a job of zero GPUs
    head = json.dumps(header).encode()
    rewrite(copy, trace_cache.MAGIC + bytes(32) + len(head).to_bytes(8, "little") + head + payload)
    assert trace_cache.load(trace_file, digest) is None
    for combo in header["combos"]:
        combo[5] = ["Z900"]  # a GPU model nobody knows
    head = json.dumps(header).encode()
    body = len(head).to_bytes(8, "little") + head + data[start + 8 + size :]
    rewrite(copy, trace_cache.MAGIC + bytes(32) + body)
    assert trace_cache.load(trace_file, digest) is None
    assert signature(read_trace(trace_file).jobs) == signature(read_trace_by_rows(trace_file).jobs)


def test_a_copy_made_for_another_csv_is_not_used(trace_file, tmp_path):
    other = tmp_path / "other.csv"
    write_trace(other, synthesize(load_fleet("uk-2026"), 300, 0.9, 8))
    read_trace(other)
    trace_cache.cache_path(other).replace(trace_cache.cache_path(trace_file))
    jobs = read_trace(trace_file).jobs
    assert signature(jobs) == signature(read_trace_by_rows(trace_file).jobs)


def test_no_copy_without_cache_for_small_traces_or_for_bad_rows(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    write_trace(path, synthesize(load_fleet("uk-2026"), 200, 0.9, 3))
    read_trace(path)  # below MIN_ROWS
    assert not trace_cache.cache_path(path).exists()
    monkeypatch.setattr(trace_cache, "MIN_ROWS", 1)
    read_trace(path, cache=False)
    assert not trace_cache.cache_path(path).exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("job_id,submit_time,gpus,duration\na,0,1,10\nb,0,0,10\n")
    with pytest.raises(TraceError):
        read_trace(bad)
    assert read_trace(bad, skip_bad_rows=True).skipped
    assert not trace_cache.cache_path(bad).exists()
    assert not list(tmp_path.glob("*.partial"))

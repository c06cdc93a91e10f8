"""The CSV's stamp as a cache key: trusted only once settled, and never for a changed CSV."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from arkwright.core.job import SPEC_FIELDS
from arkwright.fleets import load_fleet
from arkwright.sim import trace_cache
from arkwright.sim.synth import synthesize
from arkwright.sim.trace import read_trace, read_trace_by_rows, write_trace
from arkwright.sim.trace_cache import Stamp, settled

SECOND = 1_000_000_000


def signature(jobs):
    return [tuple((f, getattr(j, f), type(getattr(j, f))) for f in SPEC_FIELDS) for j in jobs]


def header_of(copy) -> dict:
    body = copy.read_bytes()[len(trace_cache.MAGIC) + 32 :]
    return json.loads(body[8 : 8 + int.from_bytes(body[:8], "little")])


class HashCount:
    """Counts the reads that hash the CSV (the stamp path hashes nothing)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = trace_cache.csv_digest

        def counted(raw: bytes) -> str:
            self.calls += 1
            return real(raw)

        monkeypatch.setattr(trace_cache, "csv_digest", counted)


@pytest.fixture
def trace_file(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_cache, "MIN_ROWS", 1)
    path = tmp_path / "t.csv"
    write_trace(path, synthesize(load_fleet("uk-2026"), 400, 0.9, 5))
    return path


@pytest.fixture
def later(monkeypatch):
    """The clock a minute ahead: every file written so far has settled."""
    monkeypatch.setattr(trace_cache, "now_ns", lambda: time.time_ns() + 60 * SECOND)


def rewrite_same_size(path) -> None:
    """Change one job's GPUs in place (same size, same inode), then restore the mtime."""
    stat = os.stat(path)
    text = path.read_bytes().decode()
    lines = text.split("\r\n")
    cells = lines[1].split(",")
    cells[2] = "3" if cells[2] != "3" else "5"
    lines[1] = ",".join(cells)
    with open(path, "r+b") as handle:  # in place: O_TRUNC-free, the inode kept
        handle.write("\r\n".join(lines).encode())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns


def test_settled_needs_both_times_behind_the_clock_and_set():
    now = 100 * SECOND
    old = Stamp(1, 2, 3, 10 * SECOND, 10 * SECOND)
    assert settled(old, now)
    assert not settled(old._replace(ctime_ns=now - SECOND), now)  # written a moment ago
    assert not settled(old._replace(mtime_ns=now + SECOND), now)  # a time in the future
    assert not settled(old._replace(ctime_ns=0), now)  # a file system without ctime
    assert settled(old._replace(ctime_ns=now - trace_cache.SETTLE_NS), now)


def test_a_settled_stamp_is_recorded_and_the_next_read_hashes_nothing(
    trace_file, later, monkeypatch
):
    first = read_trace(trace_file)
    copy = trace_cache.cache_path(trace_file)
    assert header_of(copy)["csv_stat"] == list(trace_cache.stamp_of(os.stat(trace_file)))
    hashes = HashCount(monkeypatch)
    again = read_trace(trace_file)
    assert hashes.calls == 0
    assert signature(again.jobs) == signature(first.jobs)
    assert signature(again.jobs) == signature(read_trace_by_rows(trace_file).jobs)


def test_a_fresh_csv_records_no_stamp_so_a_same_tick_rewrite_is_caught(trace_file):
    read_trace(trace_file)  # the real clock: the file was written just now
    copy = trace_cache.cache_path(trace_file)
    assert header_of(copy)["csv_stat"] is None
    rewrite_same_size(trace_file)  # most likely in the same timestamp tick
    jobs = read_trace(trace_file).jobs
    assert signature(jobs) == signature(read_trace_by_rows(trace_file).jobs)


def test_a_same_size_rewrite_with_the_mtime_restored_is_never_served_stale(
    trace_file, later, monkeypatch
):
    read_trace(trace_file)
    recorded = header_of(trace_cache.cache_path(trace_file))["csv_stat"]
    assert recorded is not None
    # Rewrite until the kernel's coarse clock has ticked (ctime is then another time),
    # so only the ctime tells the files apart: same inode, size and mtime.
    for _ in range(200):  # bounded: a tick is a few ms
        rewrite_same_size(trace_file)
        if os.stat(trace_file).st_ctime_ns != recorded[4]:
            break
        time.sleep(0.01)
    now = trace_cache.stamp_of(os.stat(trace_file))
    assert now[:4] == tuple(recorded[:4]) and now.ctime_ns != recorded[4]
    hashes = HashCount(monkeypatch)
    jobs = read_trace(trace_file).jobs
    assert hashes.calls == 1  # the stamp differs: the CSV is read and hashed
    assert signature(jobs) == signature(read_trace_by_rows(trace_file).jobs)


def test_a_replaced_csv_of_the_same_size_and_times_is_not_served_stale(trace_file, later, tmp_path):
    read_trace(trace_file)
    stat = os.stat(trace_file)
    other = tmp_path / "other.csv"
    other.write_bytes(trace_file.read_bytes().replace(b",true,", b",fals,", 1))
    assert other.stat().st_size == stat.st_size
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    other.replace(trace_file)  # another inode under the same name
    jobs = read_trace(trace_file, skip_bad_rows=True)
    assert signature(jobs.jobs) == signature(
        read_trace_by_rows(trace_file, skip_bad_rows=True).jobs
    )
    assert jobs.skipped  # "fals" is not a flag: the new content was read


def test_trust_stamp_false_always_hashes(trace_file, later, monkeypatch):
    read_trace(trace_file)
    hashes = HashCount(monkeypatch)
    jobs = read_trace(trace_file, trust_stamp=False).jobs
    assert hashes.calls == 1
    assert signature(jobs) == signature(read_trace_by_rows(trace_file).jobs)


def test_a_copy_without_a_stamp_is_used_by_digest_and_then_gains_one(
    trace_file, later, monkeypatch
):
    read_trace(trace_file)
    copy = trace_cache.cache_path(trace_file)
    data = copy.read_bytes()
    body = data[len(trace_cache.MAGIC) + 32 :]
    size = int.from_bytes(body[:8], "little")
    header = json.loads(body[8 : 8 + size])
    del header["csv_stat"]  # as a format-2 copy from before stamps were kept
    head = json.dumps(header).encode()
    body = len(head).to_bytes(8, "little") + head + body[8 + size :]
    copy.write_bytes(trace_cache.MAGIC + hashlib.sha256(body).digest() + body)
    digest = trace_cache.csv_digest(trace_file.read_bytes())
    assert trace_cache.load(trace_file, digest) is not None  # still good by its digest
    hashes = HashCount(monkeypatch)
    expected = signature(read_trace_by_rows(trace_file).jobs)
    assert signature(read_trace(trace_file).jobs) == expected
    assert hashes.calls == 1
    assert header_of(copy)["csv_stat"] == list(trace_cache.stamp_of(os.stat(trace_file)))
    assert signature(read_trace(trace_file).jobs) == expected
    assert hashes.calls == 1  # the recorded stamp served the third read

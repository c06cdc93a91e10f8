"""The trace's link columns (dependency, array_id, array_limit) through every reader."""

from __future__ import annotations

import hashlib
import json

import pytest

from arkwright.core.decisions import Start
from arkwright.core.dependencies import Dependency, DepKind
from arkwright.core.job import SPEC_FIELDS
from arkwright.core.policy import PolicySpec
from arkwright.fleets import load_fleet
from arkwright.sim import trace_cache
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize
from arkwright.sim.trace import TraceError, read_trace, read_trace_by_rows, write_trace
from arkwright.sim.trace_fast import columns_from_csv
from tests.conftest import one_pool_fleet

HEAD = "job_id,submit_time,gpus,duration,dependency,array_id,array_limit\n"


def signature(jobs):
    return [tuple((f, getattr(j, f), type(getattr(j, f))) for f in SPEC_FIELDS) for j in jobs]


@pytest.fixture
def small_cache(monkeypatch):
    monkeypatch.setattr(trace_cache, "MIN_ROWS", 1)


@pytest.fixture
def linked_jobs():
    """A synthetic trace with chains, `?` alternatives and throttled arrays added."""
    jobs = synthesize(load_fleet("uk-2026"), 400, 0.9, 5)
    jobs.sort(key=lambda j: j.submit_time)
    for i, job in enumerate(jobs):
        if i % 7 == 3:
            job.dependency = Dependency(((DepKind.AFTER_OK, jobs[i - 1].job_id),))
        elif i % 7 == 5:
            parents = (jobs[i - 2].job_id, jobs[i - 4].job_id)
            job.dependency = Dependency(tuple((DepKind.AFTER_ANY, p) for p in parents), True)
        elif i % 11 == 0 and i:
            job.dependency = Dependency(
                ((DepKind.AFTER_NOT_OK, jobs[i - 3].job_id), (DepKind.AFTER, jobs[i - 5].job_id))
            )
        if (i // 10) % 2 == 0:
            job.array_id = f"arr{i // 10}"
            job.array_limit = (i // 10) % 3  # 0: an array without a throttle
    return jobs


def links(jobs):
    return [(j.job_id, j.dependency, j.array_id, j.array_limit) for j in jobs]


def test_every_reader_gives_the_same_jobs(tmp_path, linked_jobs, small_cache):
    path = tmp_path / "t.csv"
    write_trace(path, linked_jobs)
    by_rows = read_trace_by_rows(path).jobs
    assert links(by_rows) == links(linked_jobs)  # written and read back by rows
    # The mixed-kind `,` dependencies need quotes, so that file is read by rows; without
    # them the same jobs come from the columnar reader and the copy.
    for job in linked_jobs:
        dependency = job.dependency
        if dependency and not dependency.any_of and len({k for k, _ in dependency.clauses}) > 1:
            job.dependency = Dependency(dependency.clauses[:1])
    write_trace(path, linked_jobs)
    raw = path.read_bytes()
    assert b'"' not in raw
    expected = read_trace_by_rows(path).jobs  # the reference reader
    assert links(expected) == links(linked_jobs)
    columns = columns_from_csv(raw)
    assert columns is not None  # the columnar reader took it
    assert signature(columns.jobs()) == signature(expected)
    first = read_trace(path).jobs  # columnar, and writes the copy
    assert trace_cache.load(path, trace_cache.csv_digest(raw)) is not None
    second = read_trace(path).jobs  # from the copy
    assert signature(first) == signature(second) == signature(expected)
    assert any(j.dependency is not None and j.dependency.any_of for j in second)
    assert any(j.array_limit for j in second)
    rewritten = tmp_path / "again.csv"
    write_trace(rewritten, second)
    assert rewritten.read_bytes() == raw  # and written back byte for byte


def test_a_trace_without_the_columns_is_read_as_before(tmp_path):
    path = tmp_path / "t.csv"
    jobs = synthesize(load_fleet("uk-2026"), 50, 0.9, 2)
    write_trace(path, jobs)
    assert "dependency" not in path.read_text().splitlines()[0]  # written as before
    columns = columns_from_csv(path.read_bytes())
    assert columns is not None and columns.dependency is None
    back = read_trace(path).jobs
    assert all(j.dependency is None and j.array_id is None and not j.array_limit for j in back)


def test_cells_are_read_as_slurm_writes_them(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        HEAD + "1,0,1,10,,,\n2,0,1,10,,,\n3,5,1,10, afterok:1:2 ,a,3\n"
        "4,6,1,10,afterany:1?afternotok:3,a,3\n5,7,1,10,,a, 3\n"
    )
    for jobs in (read_trace(path, cache=False).jobs, read_trace_by_rows(path).jobs):
        by_id = {j.job_id: j for j in jobs}
        assert by_id["3"].dependency == Dependency(
            ((DepKind.AFTER_OK, "1"), (DepKind.AFTER_OK, "2"))
        )
        assert by_id["4"].dependency == Dependency(
            ((DepKind.AFTER_ANY, "1"), (DepKind.AFTER_NOT_OK, "3")), any_of=True
        )
        assert [by_id[k].array_id for k in "12345"] == [None, None, "a", "a", "a"]
        assert [by_id[k].array_limit for k in "12345"] == [0, 0, 3, 3, 3]


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        ("3,5,1,10,afterok:,,", "dependency", "cannot read"),
        ("3,5,1,10,before:1,,", "dependency", "cannot read"),
        ("3,5,1,10,singleton,,", "dependency", "singleton"),
        ("3,5,1,10,afterok:9,,", "dependency", "not in the trace"),
        ("3,5,1,10,afterok:3,,", "dependency", "itself"),
        ("3,0,1,10,afterok:4,,", "dependency", "not submitted before"),
        ("3,5,1,10,afterok:1+5,,", "dependency", "delay"),
        ("3,5,1,10,,a,-1", "array_limit", "negative"),
        ("3,5,1,10,,a,two", "array_limit", "whole number"),
        ("3,5,1,10,,,2", "array_limit", "without an array_id"),
        ("3,5,1,10,,b,4", "array_limit", "differs"),
    ],
)
def test_a_bad_cell_names_its_line_and_column(tmp_path, row, column, words):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,0,1,10,,b,2\n2,0,1,10,,,\n" + row + "\n4,1,1,10,,,\n")
    assert columns_from_csv(path.read_bytes()) is None  # the columnar reader defers
    with pytest.raises(TraceError) as caught:
        read_trace(path, cache=False)
    [error] = caught.value.errors
    assert error.line == 4
    assert error.message.startswith(column) and words in error.message
    skipped = read_trace(path, skip_bad_rows=True, cache=False)
    assert sorted(j.job_id for j in skipped.jobs) == ["1", "2", "4"]


def test_the_dependents_of_a_refused_job_are_refused_too(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,0,1,10,afterok:7,,\n2,1,1,10,afterok:1,,\n3,2,1,10,,,\n")
    with pytest.raises(TraceError) as caught:
        read_trace(path, cache=False)
    assert [e.line for e in caught.value.errors] == [2, 3]
    assert "'1' is refused itself" in caught.value.errors[1].message


def test_same_time_parent_must_be_on_an_earlier_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,0,1,10,,,\n2,0,1,10,afterok:1,,\n")
    assert [j.job_id for j in read_trace(path, cache=False).jobs] == ["1", "2"]
    path.write_text(HEAD + "2,0,1,10,afterok:1,,\n1,0,1,10,,,\n")
    with pytest.raises(TraceError, match="line 2: dependency"):
        read_trace(path, cache=False)


def forge(path, edit) -> None:
    """Rewrite a copy's JSON header and give it a matching checksum."""
    data = path.read_bytes()
    body = data[len(trace_cache.MAGIC) + 32 :]
    size = int.from_bytes(body[:8], "little")
    header = json.loads(body[8 : 8 + size])
    edit(header)
    head = json.dumps(header).encode()
    body = len(head).to_bytes(8, "little") + head + body[8 + size :]
    path.write_bytes(trace_cache.MAGIC + hashlib.sha256(body).digest() + body)


def test_a_copy_of_the_old_format_is_rebuilt_not_misread(tmp_path, linked_jobs, small_cache):
    path = tmp_path / "t.csv"
    for job in linked_jobs:
        job.dependency = None  # no quotes needed: the columnar reader and copy take it
    write_trace(path, linked_jobs)
    expected = signature(read_trace(path).jobs)
    copy = trace_cache.cache_path(path)

    def old(header):
        header["format"] = 1
        del header["links"]  # as format 1 wrote it: arrays lost, were it trusted

    forge(copy, old)
    digest = trace_cache.csv_digest(path.read_bytes())
    assert trace_cache.load(path, digest) is None
    assert signature(read_trace(path).jobs) == expected
    assert trace_cache.load(path, digest) is not None  # rebuilt in format 2
    assert header_of(copy)["format"] == trace_cache.FORMAT == 2


def header_of(copy) -> dict:
    body = copy.read_bytes()[len(trace_cache.MAGIC) + 32 :]
    return json.loads(body[8 : 8 + int.from_bytes(body[:8], "little")])


def test_a_forged_copy_cannot_give_jobs_no_csv_gives(tmp_path, small_cache):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,0,1,10,,a,2\n2,1,1,10,afterok:1,a,2\n")
    read_trace(path)
    copy = trace_cache.cache_path(path)
    digest = trace_cache.csv_digest(path.read_bytes())
    assert trace_cache.load(path, digest) is not None

    def limit_without_array(header):
        header["links"]["array_id"][1] = 0  # every array_id empty, limits kept

    forge(copy, limit_without_array)
    assert trace_cache.load(path, digest) is None
    assert [j.array_id for j in read_trace(path).jobs] == ["a", "a"]  # rebuilt from the CSV


def test_a_chain_and_a_throttled_array_run_in_order(tmp_path):
    path = tmp_path / "t.csv"
    rows = [
        "A,0,1,100,,,",
        "B,0,1,50,afterok:A,,",
        "C,0,1,50,afternotok:A,,",  # A succeeds: C never runs
        "D,10,1,30,afterany:A?afterany:B,,",
    ]
    rows += [f"t{i},0,1,40,,arr,2" for i in range(6)]
    path.write_text(HEAD + "\n".join(rows) + "\n")
    jobs = read_trace(path, cache=False).jobs
    runs: dict[str, tuple[float, float]] = {}

    def observe(decision, _scheduler) -> None:
        if isinstance(decision, Start):
            job = decision.job
            runs[job.job_id] = (decision.at, decision.at + job.duration_s / job.speed)

    fleet = one_pool_fleet(nodes=2, gpus_per_node=8)
    Simulator(fleet, PolicySpec.parse("fifo"), observer=observe, horizon_s=10_000).run(jobs)
    assert "C" not in runs
    assert runs["B"][0] >= runs["A"][1]
    assert runs["D"][0] >= runs["A"][1]  # A ends before B: D waits for A only
    assert runs["D"][0] < runs["B"][1]
    tasks = [runs[f"t{i}"] for i in range(6)]
    assert len(tasks) == 6
    for start, _ in tasks:
        running = sum(1 for s, e in tasks if s <= start < e)
        assert running <= 2
    assert max(sum(1 for s, e in tasks if s <= t < e) for t, _ in tasks) == 2


def test_empty_link_columns_give_the_jobs_of_a_trace_without_them(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,0,1,10,,,\n2,1,2,20,, ,\n")
    columns = columns_from_csv(path.read_bytes())
    assert columns is not None and columns.dependency is None and columns.array_id is None
    plain = tmp_path / "p.csv"
    plain.write_text("job_id,submit_time,gpus,duration\n1,0,1,10\n2,1,2,20\n")
    assert signature(read_trace(path).jobs) == signature(read_trace(plain).jobs)
    assert signature(read_trace_by_rows(path).jobs) == signature(read_trace(plain).jobs)

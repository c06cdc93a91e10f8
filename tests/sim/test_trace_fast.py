"""The columnar reader gives exactly the row reader's jobs, or hands the file back."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.job import SPEC_FIELDS
from arkwright.sim.trace import TraceError, read_trace, read_trace_by_rows
from arkwright.sim.trace_columns import tokenize
from arkwright.sim.trace_fast import jobs_from_csv

NUMBER_CELLS = st.one_of(
    st.integers(0, 10**7).map(str),
    st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 10**6), st.integers(0, 10**4)),
    st.floats(0, 1e9, allow_nan=False).map(repr),
    st.sampled_from(["0", "00012", ".5", "7.", "1e3", " 42", "9 ", "-1", "inf", "nan", "1_0", ""]),
    st.sampled_from(["x", "1.2.3", "1234567890123456.5", "12345678901234567890"]),
)
CELLS = {
    "submit_time": NUMBER_CELLS,
    "gpus": st.one_of(st.integers(1, 4096).map(str), st.sampled_from(["0", "2.0", " 8", "x"])),
    "duration": NUMBER_CELLS,
    "deadline": st.one_of(st.just(""), NUMBER_CELLS),
    "time_limit": st.one_of(st.just(""), NUMBER_CELLS),
    "checkpoint_interval": st.one_of(st.just(""), NUMBER_CELLS),
    "gpu_type": st.sampled_from(["", "H100", "B200|GH200", "H100,", "Z900", " GH200 "]),
    "tenant": st.sampled_from(["", "nhs", "research", "public-services", " nhs"]),
    "job_type": st.sampled_from(["", "inference", "llm-pretrain", "science-sim"]),
    "classification": st.sampled_from(["", "OFFICIAL", "official-sensitive", "SECRET", "TS?"]),
    "residency": st.sampled_from(["", "UK", "any", "UK|EU", "*", " uk "]),
    "personal_data": st.sampled_from(["", "none", "personal", "health", "yes", "maybe"]),
    "priority": st.sampled_from(["", "low", "normal", "HIGH", "urgent", "3", "9", "top"]),
    "preemptible": st.sampled_from(["", "true", "false", "Y", "0", "perhaps"]),
    "flexible": st.sampled_from(["", "true", "no", "T", "sometimes"]),
    "extra": st.sampled_from(["", "whatever", "a b"]),
}


# Odd but valid: every one of these must be read as the row reader reads it.
VALID_NUMBERS = st.one_of(
    st.integers(1, 10**7).map(str),
    st.floats(1e-3, 1e9, allow_nan=False).map(repr),
    st.sampled_from(["00012", ".5", "7.", "1e3", " 42", "9 ", "1_0", "2.50"]),
)
VALID = CELLS | {
    "submit_time": VALID_NUMBERS,
    "gpus": st.sampled_from(["1", "8", " 16", "0002"]),
    "duration": VALID_NUMBERS,
    "deadline": st.just(""),
    "time_limit": st.one_of(st.just(""), VALID_NUMBERS),
    "checkpoint_interval": st.one_of(st.just(""), st.just("  "), VALID_NUMBERS),
    "gpu_type": st.sampled_from(["", "H100", "B200|GH200", "H100|", " GH200 "]),
    "classification": st.sampled_from(["", "OFFICIAL", "official-sensitive", "SECRET"]),
    "personal_data": st.sampled_from(["", "none", "personal", "health", "yes"]),
    "priority": st.sampled_from(["", "low", "normal", "HIGH", "urgent", "3"]),
    "preemptible": st.sampled_from(["", "true", "false", "Y", "0"]),
    "flexible": st.sampled_from(["", "true", "no", "T"]),
}


def signature(job):
    return tuple((name, getattr(job, name), type(getattr(job, name))) for name in SPEC_FIELDS)


@st.composite
def traces(draw, valid: bool = False):
    """A random trace: a random subset and order of columns, random cells, line ends."""
    cells = VALID if valid else CELLS
    optional = [c for c in CELLS if c not in ("submit_time", "gpus", "duration")]
    columns = ["job_id", "submit_time", "gpus", "duration"]
    columns += draw(st.lists(st.sampled_from(optional), unique=True))
    columns = draw(st.permutations(columns))
    rows = []
    for i in range(draw(st.integers(1, 30))):
        row = []
        for column in columns:
            if column == "job_id":
                row.append(draw(st.sampled_from([f"j{i}", f"j{i}", f"job-{i:05d}", f" j{i} "])))
            else:
                row.append(draw(cells[column]))
        rows.append(row)
    if not valid:
        if draw(st.booleans()) and len(rows) > 1:
            rows[-1][columns.index("job_id")] = rows[0][columns.index("job_id")]  # a repeat
        if draw(st.booleans()):
            rows.insert(draw(st.integers(0, len(rows))), [])  # a blank line
        if draw(st.booleans()):
            rows[0] = rows[0][:-1]  # a short row
    end = draw(st.sampled_from(["\n", "\r\n"]))
    text = end.join([",".join(columns), *(",".join(r) for r in rows)])
    return text + draw(st.sampled_from(["", end, end + end]))


def both(tmp_path, text: str):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    outcomes = []
    for read in (read_trace, read_trace_by_rows):
        try:
            trace = read(path)
        except TraceError as exc:
            outcomes.append(("error", [(e.line, e.message) for e in exc.errors]))
        else:
            outcomes.append(("jobs", [signature(j) for j in trace.jobs]))
    return outcomes


@given(text=traces())
def test_any_trace_reads_the_same_by_columns_and_by_rows(tmp_path_factory, text):
    fast, rows = both(tmp_path_factory.mktemp("t"), text)
    assert fast == rows


@given(text=traces(valid=True))
def test_odd_but_valid_cells_read_the_same_by_columns(tmp_path_factory, text):
    fast, rows = both(tmp_path_factory.mktemp("t"), text)
    assert fast == rows and fast[0] == "jobs"


@st.composite
def clean_traces(draw):
    """Valid traces of the plain shape, which the columnar reader must take itself."""
    n = draw(st.integers(1, 200))
    numbers = st.one_of(
        st.integers(1, 10**9).map(str),
        st.builds(lambda a, b: f"{a}.{b}", st.integers(1, 10**8), st.integers(0, 10**6)),
    )
    columns = ["job_id", "submit_time", "gpus", "duration", "tenant", "deadline", "flexible"]
    columns += ["classification", "residency", "priority", "time_limit"]
    lines = [",".join(columns)]
    for i in range(n):
        submit = draw(numbers)
        deadline = draw(st.one_of(st.just(""), st.integers(10**9 + 1, 10**10).map(str)))
        cells = [f"id{i}", submit, str(draw(st.integers(1, 512))), draw(numbers)]
        cells += [draw(st.sampled_from(["nhs", "research", ""])), deadline]
        cells += [draw(st.sampled_from(["", "true", "false"]))]
        cells += [draw(st.sampled_from(["", "OFFICIAL", "OFFICIAL-SENSITIVE"]))]
        cells += [draw(st.sampled_from(["", "UK", "any"])), draw(st.sampled_from(["", "low"]))]
        cells += [draw(st.one_of(st.just(""), numbers))]
        lines.append(",".join(cells))
    return "\r\n".join(lines) + "\r\n"


@given(text=clean_traces())
def test_clean_traces_are_read_by_columns_and_match_rows(tmp_path_factory, text):
    assert tokenize(text.encode()) is not None
    jobs = jobs_from_csv(text.encode())
    assert jobs is not None  # the fast path took it: no hand-back on valid, plain files
    path = tmp_path_factory.mktemp("t") / "t.csv"
    path.write_bytes(text.encode())
    assert [signature(j) for j in jobs] == [signature(j) for j in read_trace_by_rows(path).jobs]


def test_numbers_in_bulk_match_python_float_and_int():
    rng = random.Random(5)
    cells = []
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
        at = rng.randint(0, len(digits))
        cells.append(digits if rng.random() < 0.3 else digits[:at] + "." + digits[at:])
    text = "job_id,submit_time,gpus,duration\n" + "\n".join(f"a,{c},{c},1" for c in cells)
    table = tokenize(text.encode())
    floats = table.numbers(1)
    whole = table.numbers(2, integer=True)
    for i, cell in enumerate(cells):
        if floats.exact[i]:
            assert floats.values[i] == float(cell), cell
        else:  # only cells beyond exact bulk parsing are left to the row reader's rules
            assert len(cell.replace(".", "")) > 15 or len(cell) > 16
        if whole.exact[i]:
            assert whole.values[i] == int(cell), cell
        else:
            assert "." in cell or len(cell) > 16


@pytest.mark.parametrize(
    "body",
    [
        "a,0,1,10\n\nb,0,1,10\n",  # a blank line inside
        'a,0,1,10\n"b",0,1,10\n',  # quotes
        "a,0,1,10\rb,0,1,10\n",  # a lone CR
        "a,0,1\n",  # a short row
        "a,0,1,10,9\n",  # a long row
        "é,0,1,10\n",  # not ASCII
    ],
)
def test_files_not_of_the_plain_shape_go_to_the_row_reader(body):
    assert tokenize(("job_id,submit_time,gpus,duration\n" + body).encode()) is None


def test_a_bad_row_found_by_columns_is_reported_by_the_row_reader(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("job_id,submit_time,gpus,duration\r\na,0,1,10\r\nb,0,1,1e400\r\n")
    assert jobs_from_csv(path.read_bytes()) is None
    with pytest.raises(TraceError, match="line 3: duration must be finite"):
        read_trace(path)


def test_sorting_is_stable_like_the_row_reader(tmp_path):
    body = "".join(f"j{i},{(i * 7) % 5},1,10\n" for i in range(40))
    path = tmp_path / "t.csv"
    path.write_text("job_id,submit_time,gpus,duration\n" + body)
    fast = jobs_from_csv(path.read_bytes())
    assert fast is not None
    assert [j.job_id for j in fast] == [j.job_id for j in read_trace_by_rows(path).jobs]


def test_writing_by_columns_gives_each_job_its_job_row(tmp_path):
    import csv

    from arkwright.fleets import load_fleet
    from arkwright.sim.synth import synthesize
    from arkwright.sim.trace import COLUMNS, job_row, write_trace

    jobs = synthesize(load_fleet("uk-2026"), 3000, 0.9, 4)
    path = tmp_path / "t.csv"
    assert write_trace(path, iter(jobs)) == len(jobs)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(COLUMNS)
    assert rows[1:] == [job_row(j) for j in jobs]
    back = read_trace(path).jobs
    assert [(j.job_id, j.gpus, j.data_policy, j.flexible) for j in back] == [
        (j.job_id, j.gpus, j.data_policy, j.flexible) for j in jobs
    ]


def test_cells_that_need_quotes_are_quoted_and_read_back(tmp_path):
    from arkwright.sim.trace import write_trace
    from tests.conftest import make_job

    path = tmp_path / "t.csv"
    write_trace(path, [make_job("a,b", tenant='say "hi"'), make_job("c")])
    assert '"a,b"' in path.read_text()
    back = read_trace(path).jobs
    assert [(j.job_id, j.tenant) for j in back] == [("a,b", 'say "hi"'), ("c", "a")]

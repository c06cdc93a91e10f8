import pytest

from arkwright.core.job import PriorityClass
from arkwright.core.policy_data import Classification, PersonalData
from arkwright.sim.trace import TraceError, read_trace, write_trace
from tests.conftest import make_job

HEADER = "job_id,submit_time,gpus,duration,gpu_type,tenant,classification,residency,extra\n"


def write(tmp_path, body: str, header: str = HEADER):
    path = tmp_path / "trace.csv"
    path.write_text(header + body)
    return path


def test_reads_required_and_optional_columns_and_ignores_unknown(tmp_path):
    path = write(
        tmp_path, "a,10,8,3600,H100|B200,nhs,OFFICIAL-SENSITIVE,UK,whatever\nb,5,1,60,,,,,\n"
    )
    trace = read_trace(path)
    assert [j.job_id for j in trace.jobs] == ["b", "a"]  # sorted by submit time
    a = trace.jobs[1]
    assert a.gpu_types == frozenset({"H100", "B200"}) and a.tenant == "nhs"
    assert a.data_policy.classification is Classification.OFFICIAL_SENSITIVE
    assert a.data_policy.residency == frozenset({"UK"})
    assert trace.jobs[0].tenant == "default" and trace.jobs[0].data_policy.residency is None


@pytest.mark.parametrize(
    "row, line_message",
    [
        ("a,0,-2,10,,,,,", "gpus must be positive"),
        ("a,0,two,10,,,,,", "gpus must be a whole number"),
        ("a,0,1,0,,,,,", "duration must be positive"),
        ("a,-5,1,10,,,,,", "submit_time must not be negative"),
        ("a,0,1,nan,,,,,", "duration must be finite"),
        ("a,0,1,10,Z900,,,,", "unknown GPU model 'Z900'"),
        ("a,0,1,10,,,TOPSECRETISH,,", "unknown classification"),
        (",0,1,10,,,,,", "job_id is empty"),
    ],
)
def test_bad_rows_are_reported_with_their_line(tmp_path, row, line_message):
    path = write(tmp_path, "ok,0,1,10,,,,,\n" + row + "\n")
    with pytest.raises(TraceError) as info:
        read_trace(path)
    assert "line 3" in str(info.value) and line_message in str(info.value)
    assert info.value.errors[0].line == 3


def test_duplicate_job_id_names_both_lines(tmp_path):
    path = write(tmp_path, "a,0,1,10,,,,,\nb,0,1,10,,,,,\na,1,1,10,,,,,\n")
    with pytest.raises(TraceError, match="line 4: job_id 'a' repeats line 2"):
        read_trace(path)


def test_missing_required_column_is_named(tmp_path):
    path = write(tmp_path, "a,0,1\n", header="job_id,submit_time,gpus\n")
    with pytest.raises(TraceError, match=r"missing required column.*duration"):
        read_trace(path)


def test_skip_bad_rows_keeps_the_good_ones(tmp_path):
    path = write(tmp_path, "a,0,1,10,,,,,\nb,0,0,10,,,,,\nc,0,1,10,,,,,\n")
    trace = read_trace(path, skip_bad_rows=True)
    assert [j.job_id for j in trace.jobs] == ["a", "c"]
    assert [e.line for e in trace.skipped] == [3]


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TraceError, match="empty"):
        read_trace(empty)
    with pytest.raises(TraceError, match="cannot open"):
        read_trace(tmp_path / "absent.csv")


def test_write_then_read_round_trips(tmp_path):
    from arkwright.core.policy_data import DataPolicy

    jobs = [
        make_job(
            "x",
            gpus=16,
            duration=7200.5,
            submit=3.25,
            tenant="nhs",
            data_policy=DataPolicy.parse("UK", "OFFICIAL-SENSITIVE", "health"),
            gpu_types=frozenset({"GH200"}),
            job_type="inference",
            priority=PriorityClass.URGENT,
            preemptible=False,
            checkpoint_interval_s=600.0,
            deadline=90_000.0,
            time_limit_s=9000.0,
            flexible=True,
        ),
        make_job("y"),
    ]
    path = tmp_path / "t.csv"
    assert write_trace(path, jobs) == 2
    back = {j.job_id: j for j in read_trace(path).jobs}
    x = back["x"]
    assert (x.gpus, x.duration_s, x.submit_time, x.tenant) == (16, 7200.5, 3.25, "nhs")
    assert x.data_policy.personal_data is PersonalData.HEALTH
    assert x.gpu_types == frozenset({"GH200"}) and x.priority is PriorityClass.URGENT
    assert not x.preemptible and x.checkpoint_interval_s == 600 and x.deadline == 90_000
    assert x.time_limit_s == 9000 and x.flexible
    assert back["y"].preemptible and back["y"].deadline is None
    assert not list(tmp_path.glob("*.partial"))

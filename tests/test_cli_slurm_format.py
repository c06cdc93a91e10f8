"""Slurm's layouts, exactly: states, ids, times, sacct/squeue formats, scontrol's record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from arkwright.cli import slurm_format as sf
from arkwright.cli import slurm_input as si
from arkwright.cli import slurm_tables as st
from arkwright.cli.slurm_format import SlurmFormatError

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
VIEW = st.View(now=NOW, tz=UTC)


def job(**changes) -> dict:
    base = {
        "id": "j-0000012",
        "name": "train-llama",
        "tenant": "research",
        "user": "alice",
        "state": "completed",
        "reason": "",
        "gpus": 8,
        "gpu_type": ["B200"],
        "time_limit_s": 7200.0,
        "priority": "normal",
        "pool": "remote-uk/b200",
        "site": "remote-uk",
        "attempts": 1,
        "exit_code": 0,
        "slurm_job_id": None,
        "nodes": 2,
        "dependency": None,
        "array_job_id": None,
        "array_task_id": None,
        "expected_start": None,
        "allocated_nodes": [0, 1],
        "partition": None,
        "output": None,
        "error": None,
        "submitted_at": "2026-12-01T09:00:00+00:00",
        "started_at": "2026-12-01T09:05:00+00:00",
        "finished_at": "2026-12-01T10:06:01+00:00",
        "command": ["python", "train.py", "--lr", "3e-4"],
    }
    return base | changes


@pytest.mark.parametrize(
    ("state", "reason", "slurm", "code"),
    [
        ("pending", "", "PENDING", "PD"),
        ("starting", "", "CONFIGURING", "CF"),
        ("running", "", "RUNNING", "R"),
        ("completed", "", "COMPLETED", "CD"),
        ("failed", "exit code 3", "FAILED", "F"),
        ("failed", "time limit of 60 s reached", "TIMEOUT", "TO"),
        ("failed", "hit its time limit", "TIMEOUT", "TO"),
        ("failed", "killed: out of memory (the run's memory limit)", "OUT_OF_MEMORY", "OOM"),
        ("cancelled", "cancelled by alice", "CANCELLED", "CA"),
        ("rejected", "no eligible pool", "FAILED", "F"),
    ],
)
def test_states_in_slurms_words(state, reason, slurm, code):
    assert sf.slurm_state(job(state=state, reason=reason)) == slurm
    assert sf.state_code(job(state=state, reason=reason)) == code


def test_state_filters_take_names_codes_and_all():
    assert sf.parse_states("pd,R") == {"PENDING", "RUNNING"}
    assert sf.parse_states("Completed,CANCELED,to") == {"COMPLETED", "CANCELLED", "TIMEOUT"}
    assert sf.parse_states("all") == set(sf.STATE_CODES)
    assert sf.api_states({"TIMEOUT", "COMPLETED"}) == "completed,failed"
    assert sf.api_states({"FAILED"}) == "failed,rejected"
    with pytest.raises(SlurmFormatError, match="invalid job state specified: SLEEPY"):
        sf.parse_states("PD,sleepy")


def test_exit_codes_durations_and_nodes():
    assert sf.exit_code(job(exit_code=None)) == "0:0"
    assert sf.exit_code(job(exit_code=3)) == "3:0"
    assert sf.exit_code(job(exit_code=-9)) == "0:9"
    assert sf.long_duration(65) == "00:01:05"
    assert sf.long_duration(90061) == "1-01:01:01"
    assert [sf.short_duration(s) for s in (0, 65, 3723, 90061)] == [
        "0:00",
        "1:05",
        "1:02:03",
        "1-01:01:01",
    ]
    assert sf.time_limit(job(time_limit_s=365 * 86400.0), short=True) == "UNLIMITED"
    assert sf.node_list(job(allocated_nodes=[3, 0, 1, 5, 6])) == "remote-uk-b200-[0-1,3,5-6]"
    assert sf.node_list(job(allocated_nodes=[2])) == "remote-uk-b200-2"
    assert sf.node_list(job(allocated_nodes=None, pool=None)) == ""
    assert sf.node_count(job(allocated_nodes=None, nodes=None)) == 1
    assert sf.gres_per_node(job()) == "gres/gpu:b200:4"
    assert sf.pending_reason(job(state="pending", reason="Resources: 8 GPUs")) == "Resources"
    assert sf.pending_reason(job(state="pending", reason="")) == "None"


def test_job_ids_as_slurm_takes_them():
    assert si.parse_job_ids(["j-0000001,j-0000002", "j-0000003"]) == [
        "j-0000001",
        "j-0000002",
        "j-0000003",
    ]
    assert si.parse_job_ids(["j-0000012_3"]) == ["j-0000012_3"]
    assert si.parse_job_ids(["j-0000012_[1-3,7],j-0000020"]) == [
        "j-0000012_1",
        "j-0000012_2",
        "j-0000012_3",
        "j-0000012_7",
        "j-0000020",
    ]
    assert sf.job_id(job(array_job_id="j-0000010", array_task_id=2)) == "j-0000010_2"
    for bad in ("j-1;rm", "_3", "j-1_[3-1]", "j-1_[a]", "j-1_[0-99999]"):
        with pytest.raises(SlurmFormatError, match="invalid job id"):
            si.parse_job_ids([bad])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
        ("2026-11-30T08:15", datetime(2026, 11, 30, 8, 15, tzinfo=UTC)),
        ("2026-11-30T08:15:09", datetime(2026, 11, 30, 8, 15, 9, tzinfo=UTC)),
        ("11/30", datetime(2026, 11, 30, tzinfo=UTC)),
        ("11/30/25-07:00", datetime(2025, 11, 30, 7, tzinfo=UTC)),
        ("11.30.2025", datetime(2025, 11, 30, tzinfo=UTC)),
        ("113025", datetime(2025, 11, 30, tzinfo=UTC)),
        ("1130-06:30:05", datetime(2026, 11, 30, 6, 30, 5, tzinfo=UTC)),
        ("08:30", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        ("8:30PM", datetime(2026, 12, 1, 20, 30, tzinfo=UTC)),
        ("12:00AM", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("midnight", datetime(2026, 12, 1, tzinfo=UTC)),
        ("noon", datetime(2026, 12, 1, 12, tzinfo=UTC)),
        ("now", NOW),
        ("now-2hours", NOW - timedelta(hours=2)),
        ("now-90", NOW - timedelta(seconds=90)),
        ("now+1days", NOW + timedelta(days=1)),
    ],
)
def test_times_as_sacct_takes_them(text, expected):
    assert si.parse_time(text, NOW, UTC) == expected


def test_times_are_read_in_the_readers_zone_and_bad_ones_named():
    plus_two = timezone(timedelta(hours=2))
    assert si.parse_time("2026-11-30T08:00", NOW, plus_two) == datetime(2026, 11, 30, 6, tzinfo=UTC)
    for bad in ("yesterday-ish", "2026-13-01", "13:00PM", "now-2fortnights", "11/31"):
        with pytest.raises(SlurmFormatError, match="invalid time specification"):
            si.parse_time(bad, NOW, UTC)


def test_sacct_columns_widths_truncation_and_dashes():
    fields = st.sacct_fields("JobID,jobname%15,Partition,State,ExitCode,Elapsed,NNodes")
    rows = [job(), job(id="j-0000013", name="eval", state="failed", exit_code=2, reason="x")]
    assert st.sacct(rows, fields, VIEW) == (
        "JobID                JobName  Partition      State ExitCode    Elapsed   NNodes \n"
        "------------ --------------- ---------- ---------- -------- ---------- -------- \n"
        "j-0000012        train-llama remote-uk+  COMPLETED      0:0   01:01:01        2 \n"
        "j-0000013               eval remote-uk+     FAILED      2:0   01:01:01        2 \n"
    )


def test_sacct_default_format_and_a_left_justified_width():
    fields = st.sacct_fields(st.SACCT_DEFAULT)
    assert [f.name for f in fields] == [
        "JobID",
        "JobName",
        "Partition",
        "Account",
        "AllocGRES",
        "State",
        "ExitCode",
    ]
    pending = job(state="pending", allocated_nodes=None, pool=None, started_at=None)
    assert st.sacct([pending], st.sacct_fields("JobName%-12,AllocGRES,Start"), VIEW) == (
        "JobName         AllocGRES               Start \n"
        "------------ ------------ ------------------- \n"
        "train-llama                           Unknown \n"
    )


def test_sacct_parsable_forms():
    fields = st.sacct_fields("JobID,User,Account,AllocTRES,State,ExitCode,Start,End,Submit")
    rows = [job(), job(id="j-0000020", array_job_id="j-0000020", array_task_id=0, exit_code=-15)]
    assert st.sacct(rows, fields, VIEW, parsable="") == (
        "JobID|User|Account|AllocTRES|State|ExitCode|Start|End|Submit\n"
        "j-0000012|alice|research|gres/gpu=8,node=2|COMPLETED|0:0|2026-12-01T09:05:00|"
        "2026-12-01T10:06:01|2026-12-01T09:00:00\n"
        "j-0000020_0|alice|research|gres/gpu=8,node=2|COMPLETED|0:15|2026-12-01T09:05:00|"
        "2026-12-01T10:06:01|2026-12-01T09:00:00\n"
    )
    assert st.sacct([job()], st.sacct_fields("JobID,State"), VIEW, parsable="|") == (
        "JobID|State|\nj-0000012|COMPLETED|\n"
    )
    assert st.sacct([job()], st.sacct_fields("JobID"), VIEW, parsable="", header=False) == (
        "j-0000012\n"
    )


@pytest.mark.parametrize("spec", ["JobID,Bogus", "JobID%0", "JobID%x", ""])
def test_sacct_refuses_an_unknown_field_naming_it(spec):
    with pytest.raises(SlurmFormatError, match=r"invalid field requested|names no fields"):
        st.sacct_fields(spec)


def test_squeue_default_and_custom_formats():
    running = job(
        state="running", finished_at=None, exit_code=None, started_at="2026-12-01T11:58:55+00:00"
    )
    waiting = job(
        id="j-0000013",
        state="pending",
        reason="Resources: waiting for 16 GPUs",
        pool=None,
        partition="gpu",
        allocated_nodes=None,
        started_at=None,
        finished_at=None,
        expected_start="2026-12-01T14:00:00+00:00",
    )
    columns = st.squeue_columns(st.SQUEUE_DEFAULT)
    assert st.squeue([running, waiting], columns, VIEW) == (
        "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n"
        "         j-0000012 remote-uk train-ll    alice  R       1:05      2 "
        "remote-uk-b200-[0-1]\n"
        "         j-0000013       gpu train-ll    alice PD       0:00      2 (Resources)\n"
    )
    custom = st.squeue_columns("%i|%j|%T|%l|%L|%S|%a|%D|100%%")
    assert st.squeue([running, waiting], custom, VIEW, header=False) == (
        "j-0000012|train-llama|RUNNING|2:00:00|1:58:55|2026-12-01T11:58:55|research|2|100%\n"
        "j-0000013|train-llama|PENDING|2:00:00|2:00:00|2026-12-01T14:00:00|research|2|100%\n"
    )
    start = st.squeue_columns(st.SQUEUE_START)
    assert st.squeue([waiting], start, VIEW).splitlines()[1] == (
        "         j-0000013       gpu train-ll    alice PD 2026-12-01T14:00:00      2 "
        "(null)               (Resources)"
    )


@pytest.mark.parametrize("spec", ["%i %w", "%i %"])
def test_squeue_refuses_an_unknown_letter(spec):
    with pytest.raises(SlurmFormatError, match="invalid job format specification"):
        st.squeue_columns(spec)


def test_scontrol_show_job_layout():
    record = job(
        array_job_id="j-0000010",
        array_task_id=2,
        output="logs/%x-%A_%3a.out",
        dependency="afterok:j-0000009",
    )
    assert st.scontrol_job(record, VIEW) == (
        "JobId=j-0000012 ArrayJobId=j-0000010 ArrayTaskId=2 JobName=train-llama\n"
        "   UserId=alice Account=research\n"
        "   Priority=1 QOS=normal\n"
        "   JobState=COMPLETED Reason=None Dependency=afterok:j-0000009\n"
        "   Restarts=0 ExitCode=0:0\n"
        "   RunTime=01:01:01 TimeLimit=02:00:00\n"
        "   SubmitTime=2026-12-01T09:00:00 EligibleTime=2026-12-01T09:00:00\n"
        "   StartTime=2026-12-01T09:05:00 EndTime=2026-12-01T10:06:01\n"
        "   Partition=remote-uk/b200 Cluster=remote-uk\n"
        "   NodeList=remote-uk-b200-[0-1]\n"
        "   NumNodes=2 NumGPUs=8\n"
        "   TRES=gres/gpu=8,node=2\n"
        "   Command=python train.py --lr 3e-4\n"
        "   StdErr=logs/train-llama-j-0000010_002.out\n"
        "   StdOut=logs/train-llama-j-0000010_002.out\n"
        "   TresPerNode=gres/gpu:b200:4\n"
    )
    pending = job(
        state="pending",
        reason="",
        pool=None,
        allocated_nodes=None,
        started_at=None,
        finished_at=None,
        exit_code=None,
        expected_start="2026-12-01T15:30:00+00:00",
    )
    lines = st.scontrol_job(pending, VIEW).splitlines()
    assert "   JobState=PENDING Reason=None Dependency=(null)" in lines
    assert "   StartTime=2026-12-01T15:30:00 EndTime=Unknown" in lines
    assert "   NodeList=(null)" in lines and "   StdOut=stdout.log" in lines

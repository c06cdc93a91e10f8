"""The job list's filters (what squeue, sacct and scancel ask for), applied by the API.

Every filter narrows what the caller may see and never widens it: a hostile tenant
naming another programme's users, pools, ids or programme gets nothing of theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from arkwright.service.db import JobRow
from arkwright.service.errors import AdmissionError

LONG = {"time": "10h", "sites": ["remote-eu"]}  # simulated: runs for ten scaled hours


def submit(service, headers, **fields) -> str:
    response = service.client.post("/v1/jobs", headers=headers, json={"gpus": 1, **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def ids(service, headers, **params) -> list[str]:
    response = service.client.get("/v1/jobs", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return sorted(job["id"] for job in response.json()["items"])


def mark_array(service, array_id: str, tasks: dict[int, str]) -> None:
    """Make these jobs the tasks of one array, as the intake records an array's tasks."""
    with service.control.sessions() as session:
        for task, job_id in tasks.items():
            row = session.get(JobRow, job_id)
            row.spec = {**row.spec, "array_job_id": array_id, "array_task_id": task}
        session.commit()


@pytest.fixture
def people(service):
    return {
        "alice": service.user("alice", "research"),
        "bob": service.user("bob", "research"),
        "nurse": service.user("nurse", "nhs"),
    }


def test_each_filter_selects_in_the_callers_programme(service, people):
    alice, bob, nurse = people["alice"], people["bob"], people["nurse"]
    a_train = submit(service, alice, name="train", **LONG)
    a_eval = submit(service, alice, name="eval", **LONG)
    b_train = submit(service, bob, name="train", **LONG)
    n_train = submit(service, nurse, name="train", **LONG)
    assert ids(service, alice, name="train") == sorted([a_train, b_train])
    assert ids(service, alice, name="train,eval") == sorted([a_train, a_eval, b_train])
    assert ids(service, alice, user="bob") == [b_train]
    assert ids(service, bob, mine="true") == [b_train]
    assert ids(service, alice, id=f"{a_eval},{b_train}") == sorted([a_eval, b_train])
    assert ids(service, nurse, name="train") == [n_train]
    assert ids(service, service.admin, name="train") == sorted([a_train, b_train, n_train])
    assert ids(service, service.admin, tenant="nhs") == [n_train]
    # The hostile tenant: every way of naming the other programme's job finds nothing.
    for params in (
        {"user": "nurse"},
        {"tenant": "nhs"},
        {"tenant": "nhs,research", "user": "nurse"},
        {"id": n_train},
        {"name": "train", "user": "nurse"},
    ):
        assert n_train not in ids(service, alice, **params), params
    assert ids(service, alice, tenant="nhs") == []


def test_states_pools_and_time_windows(service, people):
    alice = people["alice"]
    running = submit(service, alice, name="long", **LONG)
    service.wait_for(running, alice, {"running"})
    cancelled = submit(service, alice, name="gone", **LONG)
    assert service.client.post(f"/v1/jobs/{cancelled}/cancel", headers=alice).status_code == 200
    assert ids(service, alice, state="running") == [running]
    assert ids(service, alice, state="cancelled,completed") == [cancelled]
    assert ids(service, alice, pool="remote-eu/h100", state="running") == [running]
    assert ids(service, alice, pool="remote-uk/b200") == []
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).isoformat()
    # ended_after: ended since then, or not ended (sacct --starttime).
    assert ids(service, alice, ended_after=later) == [running]
    assert ids(service, alice, ended_after=earlier) == sorted([running, cancelled])
    assert ids(service, alice, ended_before=later) == [cancelled]
    assert ids(service, alice, submitted_before=earlier) == []
    assert ids(service, alice, submitted_after=earlier) == sorted([running, cancelled])
    naive = (now - timedelta(hours=1)).replace(tzinfo=None).isoformat()  # taken as UTC
    assert ids(service, alice, submitted_after=naive) == sorted([running, cancelled])


def test_a_job_matches_its_pool_or_the_partition_it_asked_for(service, people):
    alice = people["alice"]
    cordon = {"cordoned": True, "reason": "hold the queue"}
    held = service.client.patch("/v1/pools/remote-eu/h100", headers=service.admin, json=cordon)
    assert held.status_code == 200, held.text
    job_id = submit(service, alice, name="p", partition="remote-eu", **LONG)
    assert service.client.get(f"/v1/jobs/{job_id}", headers=alice).json()["pool"] is None
    assert ids(service, alice, pool="remote-eu") == [job_id]  # by the partition it named
    assert ids(service, alice, pool="remote-uk") == []
    cordon["cordoned"] = False
    service.client.patch("/v1/pools/remote-eu/h100", headers=service.admin, json=cordon)
    service.wait_for(job_id, alice, {"running"})
    assert ids(service, alice, pool="remote-eu/h100") == [job_id]
    assert ids(service, alice, pool="remote-eu") == [job_id]  # still its partition


def test_array_ids_match_every_task_or_one(service, people):
    alice, nurse = people["alice"], people["nurse"]
    tasks = [submit(service, alice, name="arr", **LONG) for _ in range(3)]
    other = submit(service, alice, name="solo", **LONG)
    mark_array(service, tasks[0], dict(enumerate(tasks)))
    assert ids(service, alice, id=tasks[0]) == sorted(tasks)
    assert ids(service, alice, id=f"{tasks[0]}_2") == [tasks[2]]
    assert ids(service, alice, id=f"{tasks[0]}_7") == []
    assert ids(service, alice, id=f"{tasks[0]}_1,{other}") == sorted([tasks[1], other])
    assert ids(service, nurse, id=tasks[0]) == []  # another programme's array is absent
    assert ids(service, nurse, id=f"{tasks[0]}_1") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "pending,bogus"}, "state"),
        ({"user": "a b"}, "user"),
        ({"id": "j-1;drop"}, "id"),
        ({"id": "_3"}, "id"),
        ({"name": "x" * 129}, "name"),
        ({"tenant": ",".join(f"t{i}" for i in range(101))}, "tenant"),
        ({"submitted_after": "yesterday"}, "submitted_after"),
        ({"ended_before": "2026-13-40"}, "ended_before"),
        ({"mine": "perhaps"}, "mine"),
        ({"submitted_after": "0001-01-01T00:00:00+01:00"}, "submitted_after"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(service, people, params, field):
    response = service.client.get("/v1/jobs", headers=people["alice"], params=params)
    assert response.status_code == 422, response.text
    assert field in str(response.json()["detail"])


def test_too_many_ids_is_refused_naming_the_filter(service, people):
    many = ",".join(f"j-{n:07d}" for n in range(1001))
    response = service.client.get("/v1/jobs", headers=people["alice"], params={"id": many})
    assert response.status_code == 422 and "id: at most 1000" in response.text


def test_pending_jobs_carry_the_cores_expected_start(service, people, monkeypatch):
    alice = people["alice"]
    cordon = {"cordoned": True, "reason": "hold the queue"}
    service.client.patch("/v1/pools/remote-eu/h100", headers=service.admin, json=cordon)
    job_id = submit(service, alice, name="wait", **LONG)
    running = submit(service, alice, name="run", time="10h", sites=["remote-uk"])
    service.wait_for(running, alice, {"running"})
    at = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    asked: list[list[str]] = []

    def expected_starts(job_ids: list[str]) -> dict[str, float]:
        asked.append(list(job_ids))
        return {job_ids[0]: at.timestamp()} if job_ids else {}

    # The lead's ControlPlane.expected_starts: faked here, its answer is the contract.
    monkeypatch.setattr(service.control, "expected_starts", expected_starts, raising=False)
    one = service.client.get(f"/v1/jobs/{job_id}", headers=alice).json()
    assert datetime.fromisoformat(one["expected_start"]) == at
    listed = service.client.get("/v1/jobs", headers=alice).json()["items"]
    assert [j["expected_start"] is not None for j in listed] == [False, True]  # newest first
    assert asked and all(a == [job_id] for a in asked)  # only pending jobs are asked about


def count_jobs(service) -> int:
    with service.control.sessions() as session:
        return session.scalar(select(func.count()).select_from(JobRow))


def test_test_only_runs_admission_and_stores_nothing(service, people, monkeypatch):
    alice = people["alice"]
    calls: list[tuple] = []

    def test_submission(spec, tenant: str, actor: str) -> dict:
        calls.append((spec.gpus, tenant, actor))
        if spec.gpus > 32:
            raise AdmissionError("no eligible pool has 64 GPUs")
        return {"would_start_at": 1_800_000_000.0, "pool": "remote-uk/b200", "reason": "Resources"}

    # The lead's ControlPlane.test_submission: faked here, its signature is the contract.
    monkeypatch.setattr(service.control, "test_submission", test_submission, raising=False)
    before = count_jobs(service)
    answer = service.client.post("/v1/jobs/test", headers=alice, json={"gpus": 8})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert datetime.fromisoformat(body["would_start_at"]).timestamp() == 1_800_000_000.0
    assert (body["pool"], body["reason"]) == ("remote-uk/b200", "Resources")
    assert any("time" in w for w in body["warnings"])  # no --time: the default applies
    assert calls == [(8, "research", "alice")]
    never = service.client.post("/v1/jobs/test", headers=alice, json={"gpus": 64})
    assert never.status_code == 422 and "no eligible pool" in never.text
    bad = service.client.post("/v1/jobs/test", headers=alice, json={"gpus": 0})
    assert bad.status_code == 422 and "gpus" in bad.text
    foreign = service.client.post("/v1/jobs/test", headers=alice, json={"gpus": 1, "tenant": "nhs"})
    assert foreign.status_code == 403
    assert count_jobs(service) == before
    assert len(calls) == 2  # neither the bad body nor the foreign one reached admission


def test_test_only_without_the_cores_estimate_is_a_documented_501(service, people, monkeypatch):
    monkeypatch.delattr(type(service.control), "test_submission", raising=False)
    answer = service.client.post("/v1/jobs/test", headers=people["alice"], json={"gpus": 1})
    assert answer.status_code == 501 and "cannot estimate" in answer.text
    spec = service.client.get("/openapi.json").json()
    assert "501" in spec["paths"]["/v1/jobs/test"]["post"]["responses"]

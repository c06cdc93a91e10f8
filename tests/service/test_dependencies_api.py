"""Dependencies, arrays, node shapes and start estimates through the real API (simulated
sites at 3600x): what the stored jobs show, in what order they run, and what a hostile
tenant learns (nothing) by naming another programme's jobs."""

from __future__ import annotations

from arkwright.service.db import JobRow


def submit(service, headers, **body):
    body = {"gpus": 1, "time": "1h", "expected_runtime": "20m", "sites": ["remote-uk"], **body}
    response = service.client.post("/v1/jobs", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def events(service, headers, job_id):
    return service.client.get(f"/v1/jobs/{job_id}/events", headers=headers).json()


def test_a_chain_runs_in_order_and_a_failed_parent_holds_its_child(service):
    ada = service.user("ada", "research")
    a = submit(service, ada, name="a")
    b = submit(service, ada, name="b", dependency=f"afterok:{a['id']}")
    c = submit(service, ada, name="c", dependency=f"afterok:{int(b['id'][2:])}")  # bare number
    assert c["dependency"] == f"afterok:{b['id']}"  # stored with the full id
    held = service.client.get(f"/v1/jobs/{c['id']}", headers=ada).json()
    assert held["state"] == "pending"
    done = [service.wait_for(j["id"], ada, {"completed"}, timeout=30) for j in (a, b, c)]
    assert done[0]["finished_at"] <= done[1]["started_at"]
    assert done[1]["finished_at"] <= done[2]["started_at"]
    assert any(e["detail"] == "Dependency" for e in events(service, ada, c["id"]))


def test_afterok_on_a_cancelled_job_never_runs_and_kill_on_invalid_dep_cancels(service):
    ada = service.user("ada", "research")
    big = submit(service, ada, gpus=32, expected_runtime="50m")  # fills remote-uk
    a = submit(service, ada)  # waits behind it
    b = submit(service, ada, dependency=f"afterok:{a['id']}")
    k = submit(service, ada, dependency=f"afterok:{a['id']}", kill_on_invalid_dep=True)
    service.client.post(f"/v1/jobs/{a['id']}/cancel", headers=ada)
    killed = service.wait_for(k["id"], ada, {"cancelled"}, timeout=10)
    assert "DependencyNeverSatisfied" in killed["reason"]
    stuck = service.client.get(f"/v1/jobs/{b['id']}", headers=ada).json()
    for _ in range(100):
        if stuck["reason"] == "DependencyNeverSatisfied":
            break
        stuck = service.wait_for(b["id"], ada, {"pending"}, timeout=5)
    assert (stuck["state"], stuck["reason"]) == ("pending", "DependencyNeverSatisfied")
    service.client.post(f"/v1/jobs/{b['id']}/cancel", headers=ada)
    service.client.post(f"/v1/jobs/{big['id']}/cancel", headers=ada)


def test_a_dependency_on_another_programmes_job_reads_as_no_such_job(service):
    ada = service.user("ada", "research")
    eve = service.user("eve", "nhs")
    theirs = submit(service, ada)
    for named in (theirs["id"], "j-9999999"):
        response = service.client.post(
            "/v1/jobs",
            headers=eve,
            json={"gpus": 1, "time": "1h", "dependency": f"afterany:{named}"},
        )
        assert response.status_code == 422
        assert f"no job {named!r} in programme 'nhs'" in response.text
    with service.control.sessions() as session:
        assert session.query(JobRow).filter(JobRow.tenant == "nhs").count() == 0
    bad = service.client.post(
        "/v1/jobs", headers=eve, json={"gpus": 1, "dependency": "afterok:1,afterok:2?afterok:3"}
    )
    assert bad.status_code == 422 and "dependency" in bad.text


def test_an_array_is_made_whole_and_its_throttle_holds(service):
    ada = service.user("ada", "research")
    first = submit(service, ada, name="sweep", array="0-5%2")
    array = first["array_job_id"]
    assert (array, first["array_task_id"]) == (first["id"], 0)
    listed = service.client.get("/v1/jobs", headers=ada, params={"id": array}).json()["items"]
    assert sorted(j["array_task_id"] for j in listed) == [0, 1, 2, 3, 4, 5]
    assert {j["name"] for j in listed} == {"sweep"}  # one job name, as Slurm keeps it
    done = [service.wait_for(j["id"], ada, {"completed"}, timeout=40) for j in listed]
    spans = sorted((j["started_at"], j["finished_at"]) for j in done)
    for i, (start, _) in enumerate(spans):  # never more than two running at once
        assert sum(1 for s, e in spans[:i] if e > start) < 2
    waited = [
        j
        for j in listed
        if any(e["detail"] == "JobArrayTaskLimit" for e in events(service, ada, j["id"]))
    ]
    assert len(waited) >= 4
    # A dependency on the array's id waits for every task.
    after = submit(service, ada, dependency=f"afterok:{array}")
    ids = sorted(j["id"] for j in listed)
    assert after["dependency"] == ",".join(f"afterok:{i}" for i in ids)
    service.wait_for(after["id"], ada, {"completed"}, timeout=20)


def test_a_node_shape_is_stored_and_placed_on_distinct_nodes(service):
    ada = service.user("ada", "research")
    job = submit(service, ada, gpus=2, nodes=2)
    running = service.wait_for(job["id"], ada, {"running", "completed"}, timeout=20)
    assert running["nodes"] == 2
    with service.control.sessions() as session:
        allocation = session.get(JobRow, job["id"]).allocation
    assert len({node for node, _ in allocation}) == 2 and [g for _, g in allocation] == [1, 1]
    uneven = service.client.post("/v1/jobs", headers=ada, json={"gpus": 3, "nodes": 2})
    assert uneven.status_code == 422 and "nodes" in uneven.text


def test_test_only_estimates_a_start_and_stores_nothing(service):
    ada = service.user("ada", "research")
    answer = service.client.post(
        "/v1/jobs/test", headers=ada, json={"gpus": 1, "time": "1h", "sites": ["remote-uk"]}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["pool"].startswith("remote-uk/") and body["would_start_at"] is not None
    with service.control.sessions() as session:
        assert session.query(JobRow).count() == 0
    never = service.client.post("/v1/jobs/test", headers=ada, json={"gpus": 100_000})
    assert never.status_code == 422


def test_a_held_job_counts_as_waiting_in_metrics_health_and_overview(service):
    """A job held by its dependency is squeue's PENDING: every count of waiting work
    includes it (metrics once counted only the core's queue)."""
    ada = service.user("ada", "research")
    big = submit(service, ada, gpus=32, expected_runtime="50m")  # fills remote-uk
    a = submit(service, ada)  # queued behind it
    b = submit(service, ada, dependency=f"afterok:{a['id']}")  # held by its dependency
    service.wait_for(b["id"], ada, {"pending"}, timeout=5)
    for _ in range(100):  # until the leader has taken all three
        health = service.client.get("/healthz").json()
        if health["pending"] + health["running"] == 3:
            break
        service.wait_for(b["id"], ada, {"pending"}, timeout=1)
    assert (health["pending"], health["running"]) == (2, 1)
    assert health["role"] == "leader"
    metrics = service.client.get("/metrics").text
    assert 'arkwright_queue_length{tenant="research"} 2.0' in metrics
    overview = service.client.get("/v1/overview", headers=ada).json()
    assert overview["queued_jobs"] == 2
    for job in (b, a, big):
        service.client.post(f"/v1/jobs/{job['id']}/cancel", headers=ada)

"""Hostile input at the boundary: each is a 4xx naming the field, stores nothing, and is
never a 500 (issue 12, item 5)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from arkwright.service.db import JobRow


def count_jobs(service) -> int:
    with service.control.sessions() as session:
        return session.scalar(select(func.count()).select_from(JobRow))


BIG_INT = "9" * 400
ALIASED_YAML = (
    "a: &a ["
    + ",".join(["x"] * 50)
    + "]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 50) + "]\n"
        for i in range(5)
    )
    + "gpus: 1\n"
)


@pytest.mark.parametrize(
    "body, status, field",
    [
        ('{"gpus": 1, "time": true}', 422, "time"),
        ('{"gpus": 1, "time": NaN}', 422, "time"),
        ('{"gpus": 1, "time": Infinity}', 422, "time"),
        ('{"gpus": 1, "time": -Infinity}', 422, "time"),
        ('{"gpus": 1, "time": 1e308}', 422, "time"),
        ('{"gpus": 1, "time": ' + BIG_INT + "}", 422, "time"),
        ('{"gpus": 1, "time": "' + BIG_INT + 's"}', 422, "time"),
        ('{"gpus": 1, "time": "999999999:00:00"}', 422, "time"),
        ('{"gpus": 1, "expected_runtime": NaN}', 422, "expected_runtime"),
        ('{"gpus": 1, "checkpoint_interval": 1e308}', 422, "checkpoint_interval"),
        ('{"gpus": ' + BIG_INT + "}", 422, "gpus"),
        ('{"gpus": true}', 422, "gpus"),
        ('{"gpus": 1, "priority": ' + BIG_INT + "}", 422, "priority"),
        ('{"gpus": 1, "env": {"A=B": "x"}}', 422, "env"),
        ('{"gpus": 1, "env": {"1A": "x"}}', 422, "env"),
        ('{"gpus": 1, "env": {"": "x"}}', 422, "env"),
        ('{"gpus": 1, "env": {"A": "x\\u0000y"}}', 422, "env"),
        ('{"gpus": 1, "env": {"A": "' + "x" * 70_000 + '"}}', 422, "env"),
        ('{"gpus": 1, "command": ["echo", "a\\u0000b"]}', 422, "command"),
        ('{"gpus": 1, "command": ["' + "x" * 70_000 + '"]}', 422, "command"),
        ('{"gpus": 1, "command": ' + json.dumps(["x"] * 5000) + "}", 422, "command"),
        ('{"gpus": 1, "name": "a\\u0000"}', 422, "name"),
        ('{"gpus": 1, "tenant": "research\\u0000"}', 422, "tenant"),
        ('{"gpus": 1, "sites": ["' + "s" * 100 + '"]}', 422, "sites"),
        ('{"gpus": 1, "deadline": "not a date"}', 422, "deadline"),
        ("[" * 600_000 + "]" * 600_000, 413, "over"),
        ("[" * 20_000 + "]" * 20_000, 400, "nested too deeply"),
    ],
)
def test_hostile_json_is_a_4xx_naming_the_field(service, body, status, field):
    alice = service.user("alice", "research")
    before = count_jobs(service)
    response = service.client.post(
        "/v1/jobs", headers={**alice, "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == status, response.text[:500]
    assert field in response.text
    assert count_jobs(service) == before


def test_yaml_aliases_are_refused_not_expanded(service):
    alice = service.user("alice", "research")
    assert len(ALIASED_YAML) < 2_000  # expands to 50**6 items if aliases were followed
    response = service.client.post(
        "/v1/jobs", headers={**alice, "Content-Type": "application/yaml"}, content=ALIASED_YAML
    )
    assert response.status_code == 400 and "aliases" in response.text
    assert count_jobs(service) == 0


def test_a_body_over_the_limit_is_413_even_without_a_length(service):
    alice = service.user("alice", "research")

    def chunks():
        for _ in range(40):
            yield b" " * 65_536

    response = service.client.post(
        "/v1/jobs", headers={**alice, "Content-Type": "application/json"}, content=chunks()
    )
    assert response.status_code == 413 and "over" in response.text
    assert count_jobs(service) == 0


@pytest.mark.parametrize(
    "path, status",
    [
        ("/v1/jobs?cursor=" + "A" * 20, 400),
        ("/v1/jobs?cursor=" + "A" * 100, 422),
        ("/v1/jobs?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", 422),
        ("/v1/jobs?cursor=LTE", 400),
        ("/v1/jobs?cursor=%00", 400),
        ("/v1/jobs?limit=" + BIG_INT, 422),
        ("/v1/jobs?tenant=" + "t" * 100, 422),
        ("/v1/jobs/j-0000001/logs?offset=" + BIG_INT, 422),
        ("/v1/jobs/j-0000001/logs?offset=-1", 422),
        ("/v1/jobs/j-0000001/logs?stream=journal", 422),
        ("/v1/jobs/" + "j" * 100, 422),
        ("/v1/tokens/" + "p" * 40, 422),
        ("/v1/jobs?tenant=research%00", 400),
        ("/v1/jobs/j-0000001%00", 400),
        ("/jobs?q=%00", 400),
    ],
)
def test_bad_queries_are_4xx(service, path, status):
    alice = service.user("alice", "research")
    method = "DELETE" if path.startswith("/v1/tokens") else "GET"
    response = service.client.request(method, path, headers=alice)
    assert response.status_code == status, response.text[:300]


def test_log_offsets_are_bounded_but_any_sane_one_reads(service):
    alice = service.user("alice", "research")
    job = service.client.post(
        "/v1/jobs", headers=alice, json={"gpus": 1, "time": "1m", "command": ["echo", "hi"]}
    ).json()
    service.wait_for(job["id"], alice, {"completed"})
    far = service.client.get(f"/v1/jobs/{job['id']}/logs?offset={1 << 40}", headers=alice)
    assert far.status_code == 200 and far.text == ""
    assert far.headers["X-Log-Offset"] == str(1 << 40)
    assert service.client.get(f"/v1/jobs/{job['id']}/logs", headers=alice).text == "hi\n"


def test_the_job_body_schema_and_every_error_code_are_in_openapi(service):
    spec = service.client.get("/openapi.json").json()
    submit = spec["paths"]["/v1/jobs"]["post"]
    schema = submit["requestBody"]["content"]["application/json"]["schema"]
    assert {"gpus", "time", "command", "env"} <= set(schema["properties"])
    for path, methods in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in methods.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403", "404", "413", "422"} <= documented, (method, path)

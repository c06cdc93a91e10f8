"""Slurm-world names through the real API: what a job stores and shows once its
partition, account, QoS, constraint, GRES type and time are resolved against the
fleet's [slurm_names], and the 422s (naming the field) that store nothing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from arkwright.service.app import create_app
from arkwright.service.db import JobRow
from arkwright.service.server import bootstrap_admin

from .conftest import Service, start_service

FLEET = """
name = "names-api"
[[tenants]]
name = "research"
[[tenants]]
name = "nhs"

[[sites]]
name = "isambard"
region = "uk-south-west"
jurisdiction = "UK"
operator = "University"
accreditations = ["OFFICIAL"]
carbon_g_per_kwh = 100
max_job_hours = 24
  [[sites.pools]]
  name = "gh200"
  gpu = "GH200"
  gpus_per_node = 4
  nodes = 4
  price_gbp_per_gpu_hour = 1.0
  default_time = "4:00:00"

[[sites]]
name = "cloud"
region = "uk-london"
jurisdiction = "UK"
operator = "Cloud"
accreditations = ["OFFICIAL"]
carbon_g_per_kwh = 100
  [[sites.pools]]
  name = "b300"
  gpu = "B300"
  gpus_per_node = 8
  nodes = 2
  price_gbp_per_gpu_hour = 3.0

[[sites]]
name = "slow"
region = "uk-north"
jurisdiction = "UK"
operator = "University"
accreditations = ["OFFICIAL"]
carbon_g_per_kwh = 100
max_job_hours = 12
  [[sites.pools]]
  name = "a100"
  gpu = "A100"
  gpus_per_node = 4
  nodes = 2
  price_gbp_per_gpu_hour = 0.5

[slurm_names]
  [slurm_names.partitions]
  gpu = ["*"]
  debug = { pools = ["isambard"], default_time = "30:00", max_time = "1:00:00" }
  [slurm_names.accounts]
  "brics.*" = "research"
  [slurm_names.qos]
  debug = "urgent"
  [slurm_names.features]
  grace = ["GH200"]
  [slurm_names.gres_types]
  b300_288gb = "B300"
"""


@pytest.fixture
def service(db_url: str, tmp_path: Path):
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET)
    token = bootstrap_admin(db_url)
    config, control = start_service(db_url, tmp_path / "data", str(fleet))
    with TestClient(create_app(control)) as client:
        yield Service(client, control, {"Authorization": f"Bearer {token}"}, config)


def stored_spec(service: Service, job_id: str) -> dict:
    with service.control.sessions() as session:
        return dict(session.get(JobRow, job_id).spec)


def job_count(service: Service) -> int:
    with service.control.sessions() as session:
        return session.scalar(select(func.count()).select_from(JobRow))


def submit(service: Service, headers: dict, **body):
    return service.client.post("/v1/jobs", headers=headers, json={"gpus": 4, **body})


def test_a_script_s_names_resolve_into_the_stored_job(service):
    alice = service.user("alice", "research")
    response = submit(
        service,
        alice,
        partition="debug,nosuch",
        account="brics.a5k",
        qos="debug",
        constraint="grace|b300",
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["tenant"], job["priority"], job["gpu_type"]) == ("research", "urgent", ["GH200"])
    assert job["time_limit_s"] == 30 * 60  # the debug partition's default
    assert job["warnings"] == [
        "partition: 'nosuch' not a partition of this fleet; ignored",
        "time: none given; partition debug's default 00:30:00 applies (set --time to choose)",
    ]
    spec = stored_spec(service, job["id"])
    assert spec["pools"] == ["isambard/gh200"] and spec["time"] == "00:30:00"
    assert spec["partition"] == "debug,nosuch"  # the names as written stay with the job
    assert spec["warnings"] == job["warnings"]
    again = service.client.get(f"/v1/jobs/{job['id']}", headers=alice).json()
    assert again["warnings"] == job["warnings"]


def test_no_time_and_unlimited(service):
    alice = service.user("alice", "research")
    plain = submit(service, alice).json()  # no partition: the fleet's default, warned
    assert plain["time_limit_s"] == 86400 and plain["warnings"][0].startswith("time: none given")
    named = submit(service, alice, partition="gh200").json()  # the pool's own default
    assert named["time_limit_s"] == 4 * 3600
    unlimited = submit(service, alice, partition="isambard", time="UNLIMITED").json()
    # The site's max_job_hours of wall-clock: the core reads a time in reference-GPU
    # seconds and divides by the job's speed on the pool, so the limit stored is 24 h
    # times that speed, to the second below.
    speed = service.control.throughput.speed("default", "GH200")
    assert unlimited["time_limit_s"] == math.floor(24 * 3600 * speed)
    assert unlimited["warnings"] == [
        "time: 'UNLIMITED' means the longest the job's pools allow: 1-00:00:00 on isambard/gh200"
    ]
    given = submit(service, alice, partition="gpu", time="2:00:00").json()
    assert given["time_limit_s"] == 7200 and given["warnings"] == []


def test_unlimited_on_a_slower_gpu_is_still_admitted(service):
    # 12 h of wall-clock on an A100 is less than 12 h of reference-GPU (H100) time; a
    # limit of 12 h would be longer than the site allows, and with the job held to the
    # partition's pools, the core would refuse it.
    alice = service.user("alice", "research")
    response = submit(service, alice, partition="slow", time="INFINITE")
    assert response.status_code == 201, response.text
    speed = service.control.throughput.speed("default", "A100")
    assert speed < 1 and response.json()["time_limit_s"] == math.floor(12 * 3600 * speed)


def test_gres_type_spelling_becomes_the_gpu_model(service):
    alice = service.user("alice", "research")
    job = submit(service, alice, gpus=8, gres_type="b300_288gb", time="1h").json()
    assert job["gpu_type"] == ["B300"]


@pytest.mark.parametrize(
    ("body", "field", "also"),
    [
        ({"account": "chem42"}, "account:", "'chem42'"),
        ({"constraint": "grace*2"}, "constraint:", "counts"),
        ({"constraint": "grace", "gpu_type": "B300"}, "constraint:", "gpu_type"),
        ({"partition": "debug", "sites": ["cloud"]}, "sites:", "partition 'debug'"),
        ({"partition": "debug", "time": "3:00:00"}, "time:", "'debug'"),
        ({"qos": "debug", "priority": "low"}, "qos:", "priority"),
        ({"gres_type": "tesla"}, "gres_type:", "'tesla'"),
        ({"pools": ["cloud/h100"]}, "pools:", "'cloud/h100'"),
        ({"account": "brics.x", "tenant": "nhs"}, "account:", "'nhs'"),
    ],
)
def test_refusals_name_the_field_and_store_nothing(service, body, field, also):
    response = submit(service, service.admin, **{"tenant": "research", **body})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(field) and also in detail, detail
    assert job_count(service) == 0


def test_an_account_of_another_programme_is_forbidden(service):
    bob = service.user("bob", "nhs")
    response = submit(service, bob, account="brics.a5k", time="1h")
    assert response.status_code == 403, response.text
    assert job_count(service) == 0


def test_an_idempotent_retry_resolves_to_the_same_job(service):
    alice = service.user("alice", "research")
    headers = {**alice, "Idempotency-Key": "k1"}
    first = submit(service, headers, partition="gpu", account="brics.a5k")
    second = submit(service, headers, partition="gpu", account="brics.a5k")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] and job_count(service) == 1

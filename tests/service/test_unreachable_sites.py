"""A site that cannot be reached, or refuses a start, never costs a job its place."""

from __future__ import annotations

import threading
import time

from arkwright.backends.base import BackendUnavailable, StartRefused


class Flaky:
    """A backend that fails its first `failures` starts with `error`, then behaves."""

    def __init__(self, inner, error: Exception, failures: int) -> None:
        self.inner, self.error, self.failures = inner, error, failures
        self.name, self.time_scale = inner.name, inner.time_scale
        self.refused = 0

    def start(self, request):
        if self.refused < self.failures:
            self.refused += 1
            raise self.error
        return self.inner.start(request)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def events(service, headers, job_id) -> list[str]:
    return [
        e["kind"] + ": " + e["detail"]
        for e in service.client.get(f"/v1/jobs/{job_id}/events", headers=headers).json()
    ]


def submit_to(service, headers, site: str) -> str:
    response = service.client.post(
        "/v1/jobs", headers=headers, json={"gpus": 1, "time": "1h", "sites": [site]}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_an_unreachable_site_requeues_the_job_until_it_answers(service):
    control = service.control
    control.site_rest_s = 0.05
    control.backends["remote-uk"] = Flaky(
        control.backends["remote-uk"], BackendUnavailable("controller down"), failures=5
    )
    alice = service.user("alice", "research")
    job_id = submit_to(service, alice, "remote-uk")
    job = service.wait_for(job_id, alice, {"completed", "failed"}, timeout=30)
    assert job["state"] == "completed", job
    history = events(service, alice, job_id)
    assert sum("not reachable (controller down)" in e for e in history) == 5


def test_a_site_that_keeps_refusing_fails_the_job_with_its_reason(service):
    control = service.control
    control.site_rest_s = 0.05
    control.backends["remote-uk"] = Flaky(
        control.backends["remote-uk"], StartRefused("Invalid account"), failures=100
    )
    alice = service.user("alice", "research")
    job_id = submit_to(service, alice, "remote-uk")
    job = service.wait_for(job_id, alice, {"completed", "failed"}, timeout=30)
    assert job["state"] == "failed"
    assert "refused 3 times in a row; last: Invalid account" in job["reason"]
    assert (
        sum("refused the start (Invalid account)" in e for e in events(service, alice, job_id)) == 2
    )


def test_a_refusal_rests_only_that_pool_and_the_job_may_go_elsewhere(service):
    control = service.control
    control.site_rest_s = 300.0  # remote-uk stays resting for the whole test
    flaky = control.backends["remote-uk"] = Flaky(
        control.backends["remote-uk"], StartRefused("node down"), failures=1
    )
    control.set_pool_cordoned("remote-eu/h100", True, "until remote-uk has refused", "test")
    alice = service.user("alice", "research")
    response = service.client.post(
        "/v1/jobs",
        headers=alice,
        json={"gpus": 1, "time": "1h", "sites": ["remote-uk", "remote-eu"]},
    )
    job_id = response.json()["id"]
    deadline = time.monotonic() + 10
    while flaky.refused == 0:
        assert time.monotonic() < deadline, "remote-uk was never asked"
        time.sleep(0.05)
    control.set_pool_cordoned("remote-eu/h100", False, "", "test")
    job = service.wait_for(job_id, alice, {"completed", "failed"}, timeout=30)
    assert job["state"] == "completed" and job["site"] == "remote-eu", job
    assert any("refused the start (node down)" in e for e in events(service, alice, job_id))


def test_lost_work_is_failed_with_its_reason_when_the_policy_says_so(service):
    from arkwright.service.server import ServiceConfig

    assert ServiceConfig(service.config.fleet, service.config.data_dir).requeue_lost
    service.control.requeue_lost = False  # `arkwright serve --fail-lost`
    alice = service.user("alice", "research")
    # 100 hours of job time last 100 s at the test's speed-up: long enough to catch running.
    response = service.client.post(
        "/v1/jobs", headers=alice, json={"gpus": 1, "time": "100h", "sites": ["remote-uk"]}
    )
    long_job = response.json()["id"]
    service.wait_for(long_job, alice, {"running"})
    patch = service.client.patch(
        "/v1/sites/remote-uk", headers=service.admin, json={"down": True, "reason": "power cut"}
    )
    assert patch.status_code == 200
    job = service.wait_for(long_job, alice, {"failed", "pending", "completed"})
    assert job["state"] == "failed" and "power cut" in job["reason"], job


class Held:
    """A backend whose start waits until the test lets it go (a slow sbatch)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.time_scale = inner.name, inner.time_scale
        self.entered, self.release = threading.Event(), threading.Event()
        self.cancelled: list[str] = []

    def start(self, request):
        self.entered.set()
        assert self.release.wait(30)
        return self.inner.start(request)

    def cancel(self, job_id, handle):
        self.cancelled.append(job_id)
        return self.inner.cancel(job_id, handle)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_slow_start_holds_nobody_up_and_a_cancel_meanwhile_wins(service):
    control = service.control
    held = control.backends["remote-uk"] = Held(control.backends["remote-uk"])
    alice = service.user("alice", "research")
    job_id = submit_to(service, alice, "remote-uk")
    assert held.entered.wait(10), "the start never reached the backend"
    # While the backend is busy starting it, the API still answers, and a cancel lands.
    answered = threading.Event()

    def cancel() -> None:
        service.client.post(f"/v1/jobs/{job_id}/cancel", headers=alice)
        answered.set()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    cancelled_first = answered.wait(10)
    held.release.set()
    canceller.join(10)
    assert cancelled_first, "the cancel waited for the backend's start"
    job = service.wait_for(job_id, alice, {"cancelled", "running", "completed"})
    assert job["state"] == "cancelled"
    deadline = time.monotonic() + 10
    while held.cancelled.count(job_id) < 2:  # once at cancel, once for the late start
        assert time.monotonic() < deadline, held.cancelled
        time.sleep(0.05)
    assert service.client.get(f"/v1/jobs/{job_id}", headers=alice).json()["state"] == "cancelled"


def test_only_a_site_with_every_pool_resting_reads_as_unreachable(tmp_path):
    from arkwright.fleets import load_fleet
    from arkwright.service.server import ServiceConfig, build_control

    fleet = load_fleet("tiny")  # uk-a has two pools
    control = build_control(ServiceConfig(fleet, tmp_path, f"sqlite:///{tmp_path / 'a.db'}"))
    first, second = fleet.pools_at("uk-a")
    control._rest([first.index], control.clock())  # one pool refused a start
    assert control.resting_sites() == set()
    control._rest([second.index], control.clock())  # the whole site unreachable
    assert control.resting_sites() == {"uk-a"}

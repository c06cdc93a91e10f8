"""The dashboard's pages, its login, and that it keeps the API's tenant rules.

(The same pages in a real browser: tests/service/test_browser.py.)
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from arkwright.service.shares import entitled_shares
from arkwright.service.views import SESSION_COOKIE


class Rows(HTMLParser):
    """data-* attributes of every table row: enough to read what a page shows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append({k: v or "" for k, v in attrs if k.startswith("data-")})


def rows(html: str, key: str) -> list[str]:
    parser = Rows()
    parser.feed(html)
    return [row[key] for row in parser.rows if key in row]


def log_in(service, headers: dict) -> None:
    token = headers["Authorization"].removeprefix("Bearer ")
    response = service.client.post(
        "/login", data={"token": token, "next": "/jobs"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def submit(service, headers: dict, **fields) -> str:
    body = {"gpus": 1, "time": "1h", "sites": ["remote-uk"], **fields}
    response = service.client.post("/v1/jobs", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_pages_ask_for_a_login_and_refuse_a_bad_token(service):
    response = service.client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    response = service.client.post("/login", data={"token": "ark_nonsense"})
    assert response.status_code == 401 and "not valid" in response.text
    assert SESSION_COOKIE not in service.client.cookies
    assert service.client.get("/login").status_code == 200


def test_fleet_page_shows_every_site_and_only_your_programme(service):
    alice = service.user("alice", "research")
    submit(service, alice)
    submit(service, service.user("nadia", "nhs"))
    log_in(service, alice)
    page = service.client.get("/")
    assert page.status_code == 200
    assert rows(page.text, "data-site") == [s.name for s in service.control.fleet.sites]
    assert rows(page.text, "data-programme") == ["research"]
    assert "<html" not in service.client.get("/?part=live").text  # a fragment to swap in
    service.client.cookies.clear()
    log_in(service, service.admin)
    assert rows(service.client.get("/").text, "data-programme") == ["nhs", "research"]


def test_overview_counts_shares_and_samples_utilisation(service):
    alice = service.user("alice", "research")
    for _ in range(3):
        submit(service, alice, gpus=8)
    service.wait_for(submit(service, alice, gpus=8), alice, {"running", "completed"})
    service.control.step()
    view = service.client.get("/v1/overview", headers=service.admin).json()
    research = next(p for p in view["programmes"] if p["name"] == "research")
    busy = sum(site["gpus_busy"] for site in view["sites"])
    assert view["gpus_busy"] == busy == research["running_gpus"]
    if busy:
        # Entitlement is the scheduler's own: weight over every programme's weight.
        entitled = entitled_shares(service.control.scheduler.weights)["research"]
        assert research["attained_share"] == 1.0
        assert research["entitled_share"] == pytest.approx(entitled) and entitled < 1.0
    assert view["utilisation"]["times"], "the control loop samples utilisation"
    assert set(view["utilisation"]["sites"]) == {s.name for s in service.control.fleet.sites}
    remote = next(s for s in view["sites"] if s["name"] == "remote-uk")
    assert remote["gpu_models"] == ["B200"] and remote["state"] == "up"
    assert remote["gpus_free"] == remote["gpus"] - remote["gpus_busy"]


def test_another_programmes_job_is_absent_from_lists_and_pages(service):
    alice = service.user("alice", "research")
    nadia = service.user("nadia", "nhs")
    mine = submit(service, alice, name="mine")
    theirs = submit(service, nadia, name="theirs")
    log_in(service, alice)
    listed = rows(service.client.get("/jobs").text, "data-job")
    assert mine in listed and theirs not in listed
    assert service.client.get(f"/jobs/{theirs}").status_code == 404
    page = service.client.get(f"/jobs/{mine}")
    assert page.status_code == 200 and "History" in page.text and "submitted" in page.text
    filtered = service.client.get("/jobs?state=rejected").text
    assert rows(filtered, "data-job") == []


def test_a_cookie_alone_cannot_change_anything(service):
    alice = service.user("alice", "research")
    job_id = submit(service, alice, time="10h")
    log_in(service, alice)
    # Reading with the cookie is fine; changing needs the dashboard's header or same origin.
    assert service.client.get(f"/v1/jobs/{job_id}").status_code == 200
    assert service.client.post(f"/v1/jobs/{job_id}/cancel").status_code == 401
    assert service.client.post(f"/jobs/{job_id}/cancel").status_code == 403
    response = service.client.post(
        f"/jobs/{job_id}/cancel",
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert service.client.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"


def test_logging_out_forgets_the_session(service):
    log_in(service, service.admin)
    assert service.client.get("/", follow_redirects=False).status_code == 200
    service.client.post("/logout", follow_redirects=False)
    assert service.client.get("/", follow_redirects=False).status_code == 303


def test_the_chart_library_is_served_from_the_package(service):
    response = service.client.get("/static/vendor/chart.umd.min.js")
    assert response.status_code == 200 and "Chart" in response.text[:5000]
    assert service.client.get("/static/dashboard.js").status_code == 200


def test_login_sends_you_back_only_to_a_page_of_this_site(service):
    token = service.admin["Authorization"].removeprefix("Bearer ")
    for target, expected in (
        ("/jobs?state=running", "/jobs?state=running"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
    ):
        response = service.client.post(
            "/login", data={"token": token, "next": target}, follow_redirects=False
        )
        assert response.headers["location"] == expected, target


def test_an_admin_marks_a_site_down_and_up_from_the_fleet_page(service):
    alice = service.user("alice", "research")
    log_in(service, alice)
    same_site = {"Origin": "http://testserver"}
    assert "Mark down" not in service.client.get("/").text  # not an admin: no controls
    refused = service.client.post(
        "/sites/remote-uk/state", data={"down": "true"}, headers=same_site
    )
    assert refused.status_code == 403
    service.client.cookies.clear()
    log_in(service, service.admin)
    assert "Mark down" in service.client.get("/").text
    assert service.client.post("/sites/remote-uk/state", data={"down": "true"}).status_code == 403
    response = service.client.post(
        "/sites/remote-uk/state",
        data={"down": "true", "reason": "cooling fault"},
        headers=same_site,
        follow_redirects=False,
    )
    assert response.status_code == 303
    sites = {s["name"]: s for s in service.client.get("/v1/overview").json()["sites"]}
    assert (sites["remote-uk"]["state"], sites["remote-uk"]["reason"]) == ("down", "cooling fault")
    service.client.post("/sites/remote-uk/state", data={"down": "false"}, headers=same_site)
    sites = {s["name"]: s for s in service.client.get("/v1/overview").json()["sites"]}
    assert sites["remote-uk"]["state"] == "up"

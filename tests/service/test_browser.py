"""The dashboard and a simulation report in real headless Chromium, driven by Playwright.

`make test` installs Debian's chromium (scripts/test-browser.sh). Screenshots land in
out/test-artifacts/screenshots/ (or $ARKWRIGHT_TEST_ARTIFACTS/screenshots/).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from arkwright.core.policy import PolicySpec
from arkwright.fleets import load_fleet
from arkwright.service.harness import free_port, start_server
from arkwright.service.server import bootstrap_admin
from arkwright.sim.report import write_report
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ARKWRIGHT_TEST_CHROMIUM")
SHOTS = (
    Path(os.environ.get("ARKWRIGHT_TEST_ARTIFACTS", REPO / "out" / "test-artifacts"))
    / "screenshots"
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM,
    reason="Chromium: "
    + os.environ.get(
        "ARKWRIGHT_TEST_CHROMIUM_SKIP",
        "ARKWRIGHT_TEST_CHROMIUM is not set (run the suite with `make test`, "
        "which installs Chromium)",
    ),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{data_dir / 'arkwright.db'}"
    admin_token = bootstrap_admin(db_url)
    port = free_port()
    process = start_server(db_url, data_dir, port, "--history-every", "1")
    url = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {admin_token}"}
    tokens = {"admin": admin_token}
    for name, tenant in (("alice", "research"), ("nadia", "nhs")):
        response = httpx.post(
            f"{url}/v1/users", headers=admin, json={"name": name, "tenant": tenant, "role": "user"}
        )
        assert response.status_code == 201, response.text
        tokens[name] = response.json()["token"]
    yield url, tokens
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})  # a laptop screen
    yield context.new_page()
    context.close()


def submit(url: str, token: str, **fields) -> str:
    body = {"gpus": 1, "time": "10m", **fields}
    response = httpx.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {token}"}, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def log_in(page, url: str, token: str) -> None:
    page.goto(url + "/")
    assert "/login" in page.url
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("table#sites")


def shot(page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=full_page)


def test_a_bad_token_is_refused_on_the_login_page(server, page):
    url, _ = server
    page.goto(url + "/login")
    page.fill("input[name=token]", "ark_not_a_token")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text().startswith("That token is not valid")


def test_fleet_view_with_live_charts(server, page):
    url, tokens = server
    for gpus, site in ((16, "remote-uk"), (8, "remote-uk"), (8, "remote-eu")):
        submit(url, tokens["admin"], gpus=gpus, time="300h", sites=[site], tenant="research")
    submit(url, tokens["admin"], gpus=8, time="300h", sites=["remote-uk"], tenant="nhs")
    log_in(page, url, tokens["admin"])
    sites = page.locator("table#sites tbody tr")
    assert sites.count() == 3
    assert "workstation" in page.inner_text("table#sites")
    # The page loads the chart library after it is shown (the tables come first), so
    # wait for it rather than race it: under a loaded CI machine it lands later.
    page.wait_for_function("() => typeof Chart === 'function'", timeout=20_000)
    # The charts draw from live data: wait for a few utilisation samples to arrive.
    page.wait_for_function(
        "() => Chart.getChart('utilisation-chart')?.data.labels.length >= 3", timeout=20_000
    )
    assert page.evaluate("Chart.getChart('share-chart').data.labels") == ["nhs", "research"]
    programmes = page.inner_text("table#programmes")
    assert "research" in programmes and "nhs" in programmes
    shot(page, "dashboard-fleet.png")


def test_a_job_appears_and_finishes_without_a_reload(server, page):
    url, tokens = server
    log_in(page, url, tokens["alice"])
    page.goto(url + "/jobs")
    page.evaluate("window.loadedOnce = true")  # a reload would lose this
    job_id = submit(
        url,
        tokens["alice"],
        name="hello",
        sites=["workstation"],
        command=["sh", "-c", "sleep 2; echo hello from the dashboard test"],
    )
    row = f'tr[data-job="{job_id}"]'
    page.wait_for_selector(row, timeout=15_000)
    page.wait_for_selector(f'{row}[data-state="completed"]', timeout=30_000)
    assert page.evaluate("window.loadedOnce") is True
    shot(page, "dashboard-jobs.png")
    page.click(f"{row} a")
    page.wait_for_selector("#job-state")
    assert page.inner_text("#job-state") == "completed"
    assert "hello from the dashboard test" in page.inner_text("#log-stdout")
    assert "workstation/gpus" in page.inner_text("table#job")
    shot(page, "dashboard-job.png")


def test_another_programmes_job_is_not_visible(server, page):
    url, tokens = server
    theirs = submit(url, tokens["nadia"], name="nhs-only", sites=["remote-uk"])
    log_in(page, url, tokens["alice"])
    page.goto(url + "/jobs")
    mine = submit(url, tokens["alice"], name="later", sites=["remote-uk"])
    # Once a later job of ours is shown, the earlier job of theirs would be too.
    page.wait_for_selector(f'tr[data-job="{mine}"]', timeout=15_000)
    assert page.locator(f'tr[data-job="{theirs}"]').count() == 0
    assert "nhs" not in page.inner_text("table#jobs")
    response = page.goto(f"{url}/jobs/{theirs}")
    assert response.status == 404 and "No job" in page.inner_text("h1")
    page.goto(url + "/")
    assert page.locator("table#programmes tbody tr").all_inner_texts()[0].startswith("research")
    assert page.locator("table#programmes tbody tr").count() == 1


def test_a_report_opens_offline_with_every_chart(page, tmp_path):
    fleet = load_fleet("tiny")
    jobs = synthesize(fleet, 300, 0.85, seed=2)
    results = {
        name: Simulator(fleet, PolicySpec.parse(name)).run([j.spec_copy() for j in jobs])
        for name in ("backfill", "fairshare+hetero")
    }
    path = write_report(
        tmp_path / "report.html", fleet, results, "backfill vs fairshare+hetero", "synthetic"
    )
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    images = page.locator("figure img")
    assert images.count() == 4
    assert all(
        images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(4)
    )
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    page.set_viewport_size({"width": 1366, "height": 1500})
    shot(page, "report.png", full_page=False)  # the first screen: summary and first chart
    page.click("details summary >> nth=0")
    assert page.locator("details >> nth=0").locator("tbody tr").count() > 0
    shot(page, "report-full.png")

"""The self-contained simulation report: complete, offline, and true to the run."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from arkwright.cli import app
from arkwright.core.policy import PolicySpec
from arkwright.fleets import load_fleet
from arkwright.sim.report import write_report
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize

runner = CliRunner()


class Page(HTMLParser):
    """The parts of the report the tests read: links out, images, headings, table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.images: list[str] = []
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self._heading = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if re.match(r"^(https?:)?//", value):
                self.external.append(value)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "link" or (tag == "script" and "src" in attrs):
            self.external.append(str(attrs))
        if tag == "h2":
            self._heading = True
            self.headings.append("")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "h2":
            self._heading = False
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._heading:
            self.headings[-1] += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def runs():
    fleet = load_fleet("tiny")
    jobs = synthesize(fleet, 400, 0.9, seed=5)
    results = {
        # Fresh copies: a run keeps its state on the jobs it is given.
        name: Simulator(fleet, PolicySpec.parse(name)).run([j.spec_copy() for j in jobs], "x")
        for name in ("backfill", "fairshare")
    }
    return fleet, results


def test_programme_timeline_adds_up_to_the_pool_timeline(runs):
    _, results = runs
    for result in results.values():
        by_programme = sum(result.tenant_timeline.values())
        assert np.allclose(by_programme, result.timeline.sum(axis=1))
        assert min(series.min() for series in result.tenant_timeline.values()) >= 0


def test_report_is_self_contained_and_has_every_chart_with_its_numbers(runs, tmp_path):
    fleet, results = runs
    path = write_report(tmp_path / "report.html", fleet, results, "two policies", "synthetic")
    page = Page()
    page.feed(path.read_text())
    assert page.external == []
    assert len(page.images) == 4 and all(
        i.startswith("data:image/png;base64,") for i in page.images
    )
    assert page.headings == [
        "Summary",
        "Utilisation over time, by site",
        "Wait before first start, by programme",
        "Share of the fleet over time, by programme",
        "Energy and carbon over time",
    ]
    submitted = next(r for r in page.rows if r and r[0] == "jobs submitted")
    assert submitted[1] == f"{results['backfill'].summary['jobs_submitted']:,}"
    assert submitted[2].startswith(f"{results['fairshare'].summary['jobs_submitted']:,} (×1.00)")
    # The wait table's p50 per programme is the percentile of that programme's waits.
    for row in page.rows:
        if (
            len(row) == 7
            and row[0] == "fairshare"
            and row[1] in results["fairshare"].waits_by_tenant
        ):
            waits = np.asarray(results["fairshare"].waits_by_tenant[row[1]]) / 3600
            assert row[3] == f"{np.percentile(waits, 50):,.2f}"
    assert not path.with_suffix(".html.partial").exists()


def test_simulate_and_compare_write_reports_from_the_command_line(tmp_path):
    trace = tmp_path / "t.csv"
    runner.invoke(app, ["trace", "synth", "--fleet", "tiny", "--jobs", "120", "--out", str(trace)])
    result = runner.invoke(
        app,
        [
            "simulate",
            "--fleet",
            "tiny",
            "--trace",
            str(trace),
            "--out",
            str(tmp_path / "s"),
            "--report",
        ],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "s" / "report.html").read_text()
    assert "fairshare on tiny" in text and "Energy and carbon over time" in text
    result = runner.invoke(
        app,
        [
            "compare",
            "--fleet",
            "tiny",
            "--trace",
            str(trace),
            "--out",
            str(tmp_path / "c"),
            "--policies",
            "backfill,carbon",
            "--report",
        ],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "c" / "report.html").read_text()
    assert "backfill, carbon on tiny" in text and "ratios are to backfill" in text

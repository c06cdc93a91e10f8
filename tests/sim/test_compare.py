import json

import pytest
from typer.testing import CliRunner

from arkwright.cli import app
from arkwright.core.policy import UnknownPolicy
from arkwright.fleets import load_fleet
from arkwright.sim.compare import comparison, run_policies, write_compare
from arkwright.sim.synth import synthesize


@pytest.fixture(scope="module")
def results():
    fleet = load_fleet("tiny")
    return run_policies(
        "tiny",
        ["backfill", "fairshare+hetero"],
        synthesize(fleet, 120, 0.9, 2),
        "synthetic",
        workers=2,
    )


def test_policies_come_back_in_the_order_asked(results):
    assert list(results) == ["backfill", "fairshare+hetero"]
    assert results["fairshare+hetero"].summary["policy"] == "fairshare+hetero"


def test_ratios_are_to_the_first_policy(results):
    data = comparison(results)
    assert data["baseline"] == "backfill"
    assert data["policies"]["backfill"]["mean_jct_s_ratio"] == pytest.approx(1.0)
    hetero = data["policies"]["fairshare+hetero"]
    expected = (
        results["fairshare+hetero"].summary["mean_jct_s"]
        / results["backfill"].summary["mean_jct_s"]
    )
    assert hetero["mean_jct_s_ratio"] == pytest.approx(expected)


def test_writes_json_and_plots(results, tmp_path):
    write_compare(tmp_path, results)
    assert json.loads((tmp_path / "compare.json").read_text())["baseline"] == "backfill"
    for name in ("wait_cdf.png", "utilization.png", "energy_carbon.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_unknown_policy_fails_before_any_work():
    with pytest.raises(UnknownPolicy):
        run_policies("tiny", ["backfill", "nope"], [])


def test_compare_command(tmp_path):
    trace = tmp_path / "t.csv"
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["trace", "synth", "--fleet", "tiny", "--jobs", "80", "--out", str(trace)]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app,
        [
            "compare",
            "--fleet",
            "tiny",
            "--trace",
            str(trace),
            "--policies",
            "fifo,carbon",
            "--out",
            str(tmp_path / "c"),
        ],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    assert "×ratio to fifo" in result.output and (tmp_path / "c" / "compare.json").exists()
    bad = runner.invoke(
        app, ["compare", "--fleet", "tiny", "--trace", str(trace), "--budget", "research"]
    )
    assert bad.exit_code == 2 and "PROGRAMME=AMOUNT" in bad.output

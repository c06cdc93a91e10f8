import json

from typer.testing import CliRunner

from arkwright.cli import app

runner = CliRunner()


def test_fleet_show_prints_sites_pools_and_assumptions():
    result = runner.invoke(app, ["fleet", "show", "uk-2026"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "isambard-ai" in result.output and "5,448" in result.output
    assert "69,448" in result.output and "Indicative" in result.output


def test_unknown_fleet_is_a_clear_error():
    result = runner.invoke(app, ["fleet", "show", "atlantis"])
    assert result.exit_code == 2
    assert "no fleet file or preset named 'atlantis'" in result.output


def test_synth_then_simulate_writes_summary(tmp_path):
    trace = tmp_path / "t.csv"
    result = runner.invoke(
        app,
        ["trace", "synth", "--fleet", "tiny", "--jobs", "150", "--seed", "3", "--out", str(trace)],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--fleet",
            "tiny",
            "--trace",
            str(trace),
            "--policy",
            "fairshare+backfill",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["jobs_submitted"] == 150 and summary["policy"] == "fairshare+backfill"
    assert summary["eligibility_violations"] == 0
    assert "Fair share by programme" in result.output
    assert (out / "utilization_hourly.csv").read_text().startswith("hour,uk-a/h100")


def test_bad_trace_stops_with_line_number_and_writes_nothing(tmp_path):
    trace = tmp_path / "bad.csv"
    trace.write_text("job_id,submit_time,gpus,duration\na,0,1,10\nb,0,-1,10\n")
    out = tmp_path / "sim"
    result = runner.invoke(
        app, ["simulate", "--fleet", "tiny", "--trace", str(trace), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "line 3" in result.output and "--skip-bad-rows" in result.output
    assert not out.exists()
    result = runner.invoke(
        app,
        [
            "simulate",
            "--fleet",
            "tiny",
            "--trace",
            str(trace),
            "--out",
            str(out),
            "--skip-bad-rows",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["bad_rows_skipped"] == 1


def test_unknown_policy_is_a_clear_error(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("job_id,submit_time,gpus,duration\na,0,1,10\n")
    result = runner.invoke(
        app, ["simulate", "--fleet", "tiny", "--trace", str(trace), "--policy", "lottery"]
    )
    assert result.exit_code == 2 and "unknown policy 'lottery'" in result.output

"""`arkwright sbatch` as a command line: sbatch's word order, stdin, and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import arkwright.cli.sbatch as sbatch_cli
from arkwright.cli import app

SCRIPT = (
    '#!/bin/bash\n#SBATCH -N 2 --gpus-per-node=4 -t 10\n#SBATCH --mem=64G\nsrun train.py "$@"\n'
)
NOWHERE = {"ARKWRIGHT_URL": "http://127.0.0.1:9", "COLUMNS": "200"}


class FakeClient:
    """The API as far as sbatch uses it; records what it was sent."""

    def __init__(self, states: list[dict] | None = None) -> None:
        self.submitted: list[dict] = []
        self.tested: list[dict] = []
        self.states = list(states or [])

    def submit(self, body: dict, idempotency_key: str | None = None) -> dict:
        self.submitted.append(body)
        return {"id": "j-0000042", "state": "pending", "warnings": ["time: default 1h"]}

    def test_submission(self, body: dict) -> dict:
        self.tested.append(body)
        return {"would_start_at": 1_800_000_000, "pool": "isambard/gh200", "reason": ""}

    def get_job(self, job_id: str) -> dict:
        return self.states.pop(0)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.sh"
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(sbatch_cli, "_client", lambda: fake)
    return fake


def run(*argv: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["sbatch", *argv], env=NOWHERE, input=stdin)


def test_parse_only_prints_the_request_offline(script: Path) -> None:
    result = run("--parse-only", "-J", "ddp", str(script), "--lr", "3e-4", "--resume")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == {
        "requests": [
            {
                "name": "ddp",
                "gpus": 8,
                "nodes": 2,
                "time": "00:10:00",
                "script": SCRIPT,
                "command": ["--lr", "3e-4", "--resume"],
            }
        ],
        "warnings": [
            "line 3: --mem=64G ignored: CPUs and memory are not scheduled by Arkwright "
            "(whole GPUs are)"
        ],
    }


def test_options_after_the_script_are_its_arguments(script: Path, client: FakeClient) -> None:
    result = run(str(script), "--parsable", "-t", "1")
    assert result.exit_code == 0, result.output
    [body] = client.submitted
    assert body["command"] == ["--parsable", "-t", "1"] and body["time"] == "00:10:00"
    assert result.stdout == "Submitted batch job j-0000042\n"


def test_parsable_prints_only_the_id_and_warnings_go_to_stderr(
    script: Path, client: FakeClient
) -> None:
    result = run("--parsable", str(script))
    assert result.exit_code == 0, result.output
    assert result.stdout == "j-0000042\n"
    assert "--mem=64G ignored" in result.stderr and "time: default 1h" in result.stderr


def test_quiet_prints_no_warnings(script: Path, client: FakeClient) -> None:
    result = run("-Q", str(script))
    assert result.exit_code == 0 and result.stderr == ""


def test_script_from_standard_input(client: FakeClient) -> None:
    result = run("--gpus=1", stdin="#!/bin/sh\n#SBATCH -t 5\nnvidia-smi\n")
    assert result.exit_code == 0, result.output
    [body] = client.submitted
    assert (body["name"], body["gpus"], body["script"]) == (
        "sbatch",
        1,
        "#!/bin/sh\n#SBATCH -t 5\nnvidia-smi\n",
    )


def test_wrap_makes_a_sh_script(client: FakeClient) -> None:
    result = run("--wrap", "python -c 'print(1)'", "-G", "1", "-t", "5")
    assert result.exit_code == 0, result.output
    [body] = client.submitted
    assert body["name"] == "wrap" and body["command"] == []
    assert body["script"] == (
        "#!/bin/sh\n# This script was created by sbatch --wrap.\n\npython -c 'print(1)'\n"
    )


def test_test_only_asks_and_submits_nothing(script: Path, client: FakeClient) -> None:
    result = run("--test-only", str(script))
    assert result.exit_code == 0, result.output
    assert client.submitted == [] and len(client.tested) == 1
    assert "Job would start at" in result.stderr and "isambard/gh200" in result.stderr


def test_wait_exits_with_the_jobs_exit_code(
    script: Path, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.states = [
        {"state": "pending", "exit_code": None},
        {"state": "running", "exit_code": None},
        {"state": "failed", "exit_code": 3},
    ]
    monkeypatch.setattr(sbatch_cli.time, "sleep", lambda seconds: None)
    result = run("-W", str(script))
    assert result.exit_code == 3, result.output
    assert client.states == []


def test_a_bad_line_is_an_error_naming_it(tmp_path: Path, client: FakeClient) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --frobnicate\n")
    result = run(str(bad))
    assert result.exit_code == 2
    assert f"{bad}: line 3: unrecognized option '--frobnicate'" in result.stderr
    assert client.submitted == []


def test_crlf_is_refused_as_sbatch(tmp_path: Path, client: FakeClient) -> None:
    bad = tmp_path / "win.sh"
    bad.write_bytes(b"#!/bin/bash\r\n#SBATCH -G 1\r\n")
    result = run(str(bad))
    assert result.exit_code == 2 and "DOS line breaks" in result.stderr
    assert client.submitted == []


def test_a_missing_script(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope.sh"))
    assert result.exit_code == 2 and "Unable to open file" in result.stderr


def test_help_is_the_commands(script: Path) -> None:
    result = run("--help")
    assert result.exit_code == 0 and "SCRIPT ARGUMENTS" in result.stdout
    # after the script, --help is the script's
    parsed = run("--parse-only", str(script), "--help")
    assert json.loads(parsed.stdout)["requests"][0]["command"] == ["--help"]


def test_an_error_with_a_long_path_stays_on_one_line(tmp_path: Path, client: FakeClient) -> None:
    deep = tmp_path / ("a-directory-with-a-long-name-" * 4)
    deep.mkdir()
    bad = deep / "bad.sh"
    bad.write_text("#!/bin/bash\n#SBATCH --frobnicate\n")
    result = run(str(bad))
    assert result.exit_code == 2
    assert f"error: {bad}: line 2: unrecognized option '--frobnicate'\n" in result.stderr

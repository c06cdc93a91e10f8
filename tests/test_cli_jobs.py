"""`arkwright jobs` in a narrow terminal: ids whole, lines within the width."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from arkwright.cli import app
from arkwright.client import Client

IDS = [f"j-{n:07d}" for n in (1, 150, 9_999_999)] + ["j-0000042-retry-long-id"]


@pytest.fixture
def listed(monkeypatch):
    def jobs(_self, **_params) -> dict:
        return {
            "items": [
                {
                    "id": job_id,
                    "name": "a rather long job name that will not fit" * 2,
                    "tenant": "public-services",
                    "state": "pending",
                    "gpus": 8,
                    "pool": "workstation/gpu",
                    "submitted_at": "2026-12-01T20:00:00.123456+00:00",
                    "reason": "Resources: waiting for 8 GPUs on workstation/gpu " * 3,
                }
                for job_id in IDS
            ],
            "next_cursor": None,
        }

    monkeypatch.setattr(Client, "jobs", jobs)


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_job_ids_are_never_cut(listed, columns: int) -> None:
    result = CliRunner().invoke(app, ["jobs"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for job_id in IDS:
        assert any(f"│ {job_id} " in line for line in lines), (job_id, result.output)
    assert result.output.count("pending") == len(IDS)
    assert max(len(line) for line in result.output.splitlines()) <= columns

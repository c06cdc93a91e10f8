"""The script table against the real sbatch: every script Arkwright reads, sbatch reads;
every one refused for sbatch's reasons, sbatch refuses with the same words.

`sbatch -v --test-only` prints the options it parsed ("defined options") and asks the
controller when the job would start: nothing is submitted. Needs the test cluster
(scripts/test-slurm.sh exports ARKWRIGHT_TEST_SLURM_CONF); the cluster's sbatch is
Debian's 22.05, so options added since are left out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sbatch.scripts import CASES, Case

CONF = os.environ.get("ARKWRIGHT_TEST_SLURM_CONF")

pytestmark = pytest.mark.skipif(
    not CONF or not shutil.which("sbatch"),
    reason="Slurm: " + os.environ.get("ARKWRIGHT_TEST_SLURM_SKIP", "no test cluster"),
)

# Refused by Arkwright, for what it cannot do; sbatch itself reads these.
ARKWRIGHT_REFUSALS = {
    "hetjob-different-shapes-refused",
    "hetjob-different-partitions-refused",
    "hetjob-array-refused",
    "gres-gpu-zero",
    "no-gpus",
    "gpus-not-divisible-over-nodes",
    "tasks-uneven-over-nodes",
    "gpu-options-disagree",
    "gres-and-gpus-per-node-exclusive",  # refused by sbatch too from Slurm 23.02
    "two-gpu-types",
    "bad-array",  # sbatch leaves 9-0 to the controller
    "begin-refused",
    "hold-refused",
    "container-refused",
    "gpus-per-socket-refused",
}
NEWER_THAN_22_05 = {"tres-per-task-gpus"}  # --tres-per-task came in Slurm 23.02


def real_sbatch(case: Case, tmp_path: Path) -> str:
    script = tmp_path / "job.sh"
    script.write_bytes(case.script.encode())
    argv = [str(script) if not arg.startswith("-") and arg.endswith(("job.sh", "sbatch"))
            else arg for arg in case.argv]  # fmt: skip
    done = subprocess.run(
        ["sbatch", "-v", "--test-only", *argv],
        input=case.script if not case.argv else None,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SLURM_CONF": CONF or "", **case.env},
    )
    return done.stdout + done.stderr


def sbatch_says(output: str, option: str) -> str | None:
    """The value sbatch -v lists for `option` among its defined options."""
    match = re.search(rf"^sbatch: {re.escape(option)} +: (.*)$", output, re.MULTILINE)
    return match.group(1) if match else None


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.id not in NEWER_THAN_22_05], ids=lambda c: c.id
)
def test_sbatch_reads_what_arkwright_reads(case: Case, tmp_path: Path) -> None:
    said = real_sbatch(case, tmp_path)
    if case.error is None or case.id in ARKWRIGHT_REFUSALS:
        assert "defined options" in said, said
        one_component = "hetjob" not in case.script and ":" not in case.argv
        if case.body and one_component:  # sbatch -v prints the last component's options
            assert sbatch_says(said, "time") == case.body.get("time")
            assert sbatch_says(said, "job-name") in (None, case.body["name"])
        return
    assert "defined options" not in said, said
    words = re.sub(r"^(line \d+|command line): ", "", case.error)[:40]
    assert words in said, said

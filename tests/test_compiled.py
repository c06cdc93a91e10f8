"""The compiled core (`arkwright/compiled.py`, `scripts/build_core.py`): used only when
current, refused when stale, and deciding exactly as the plain-Python core does."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import arkwright.compiled as compiled
import arkwright.core.job

# `make test` runs the suite with ARKWRIGHT_CORE=compiled, then the core and simulator
# tests again with ARKWRIGHT_PURE_PYTHON=1 and ARKWRIGHT_CORE=pure.
EXPECTED = os.environ.get("ARKWRIGHT_CORE", "")


@pytest.mark.skipif(not EXPECTED, reason="ARKWRIGHT_CORE not set (make test sets it)")
def test_the_core_in_use_is_the_one_this_run_expects():
    job_module = Path(arkwright.core.job.__file__)
    if EXPECTED == "compiled":
        assert compiled.STATUS.startswith("compiled"), compiled.STATUS
        assert job_module.suffix == ".so" and compiled.build_dir() in job_module.parents
    else:
        assert compiled.STATUS.startswith("pure"), compiled.STATUS
        assert job_module.suffix == ".py"


def _fake_build(tmp_path: Path, digest: str) -> Path:
    where = tmp_path / "arkwright-compiled"
    (where / "arkwright" / "core").mkdir(parents=True)
    stamp = {"digest": digest, "python": sys.version, "modules": ["core.job"]}
    (where / compiled.STAMP).write_text(json.dumps(stamp))
    return where


def test_a_build_of_other_sources_is_refused(tmp_path, monkeypatch):
    where = _fake_build(tmp_path, hashlib.sha256(b"an older core").hexdigest())
    monkeypatch.setattr(compiled, "build_dir", lambda: where)
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    monkeypatch.setattr(compiled, "STATUS", compiled.STATUS)
    path_before = list(arkwright.core.__path__)
    assert "out of date" in compiled.activate()
    assert list(arkwright.core.__path__) == path_before


def test_no_build_and_the_override_both_mean_plain_python(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled, "build_dir", lambda: tmp_path / "nothing-here")
    monkeypatch.setattr(compiled, "STATUS", compiled.STATUS)
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    assert compiled.activate() == "pure Python (no compiled build)"
    current = _fake_build(tmp_path, compiled.source_digest())
    monkeypatch.setattr(compiled, "build_dir", lambda: current)
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    path_before = list(arkwright.core.__path__)
    assert compiled.activate().startswith("pure Python (ARKWRIGHT_PURE_PYTHON")
    assert list(arkwright.core.__path__) == path_before


def test_the_digest_covers_every_source_the_build_copies(tmp_path):
    root = tmp_path / "arkwright"
    (root / "core").mkdir(parents=True)
    (root / "sim").mkdir()
    for name in ("core/job.py", "core/errors.py", "sim/__init__.py", "sim/report.py"):
        (root / name).write_text(f"# {name}\n")
    for name in compiled.SIM_COMPILED:
        (root / "sim" / f"{name}.py").write_text(f"# {name}\n")
    before = compiled.source_digest(root)
    (root / "core" / "errors.py").write_text("# edited\n")  # not compiled, but imported
    edited_core = compiled.source_digest(root)
    assert edited_core != before
    (root / "sim" / "simulator.py").write_text("# edited\n")  # compiled
    assert compiled.source_digest(root) != edited_core
    (root / "sim" / "report.py").write_text("# edited\n")  # neither copied nor compiled
    unchanged = compiled.source_digest(root)
    (root / "sim" / "report.py").write_text("# edited again\n")
    assert compiled.source_digest(root) == unchanged
    assert compiled.compiled_modules(root) == ["core.job", "sim.recorder", "sim.simulator"]


def test_the_simulator_loop_runs_compiled_with_the_core():
    import arkwright.sim.recorder
    import arkwright.sim.simulator

    suffixes = {Path(m.__file__).suffix for m in (arkwright.sim.simulator, arkwright.sim.recorder)}
    assert suffixes == {".so" if compiled.STATUS.startswith("compiled") else ".py"}


_DECISIONS = """
import dataclasses, hashlib, sys
import arkwright.compiled as compiled
from arkwright.core.policy import PolicySpec
from arkwright.fleets import load_fleet
from arkwright.sim.simulator import Simulator
from arkwright.sim.synth import synthesize

fleet = load_fleet("uk-2026")
out = [compiled.STATUS.split()[0]]
for policy in sys.argv[1:]:
    seen = hashlib.sha256()
    def note(d, s, seen=seen):
        rest = [(f.name, getattr(d, f.name)) for f in dataclasses.fields(d) if f.name != "job"]
        seen.update(f"{type(d).__name__} {d.job.job_id} {rest}|".encode())
    jobs = synthesize(fleet, 3000, 1.1, 11)
    Simulator(fleet, PolicySpec.parse(policy), observer=note).run(jobs)
    out.append(seen.hexdigest())
print(" ".join(out))
"""


def _decisions(pure: bool, policies: list[str]) -> list[str]:
    env = dict(os.environ)
    env.pop(compiled.PURE_ENV, None)
    if pure:
        env[compiled.PURE_ENV] = "1"
    run = subprocess.run(
        [sys.executable, "-c", _DECISIONS, *policies],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return run.stdout.split()


@pytest.mark.skipif(
    not compiled.STATUS.startswith("compiled"), reason=f"core not compiled: {compiled.STATUS}"
)
def test_compiled_and_plain_python_make_the_same_decisions():
    policies = ["backfill", "fairshare", "fairshare+backfill+hetero", "carbon", "fifo"]
    fast, plain = _decisions(False, policies), _decisions(True, policies)
    assert fast[0] == "compiled" and plain[0] == "pure"
    assert fast[1:] == plain[1:]

"""Whether the scheduler core runs compiled (mypyc) or as plain Python.

`make install` compiles the core's modules, and the simulator's per-event loop and
recorder, with mypyc into the virtual environment that runs them
(`scripts/build_core.py` writes `<sys.prefix>/arkwright-compiled/`). When `arkwright` is
imported, `activate()` puts that build ahead of the sources on the search paths of
`arkwright.core` and `arkwright.sim`, but only when it was built from exactly the
sources beside it (a digest, checked at import): an edited core falls back to plain
Python rather than run stale machine code. `ARKWRIGHT_PURE_PYTHON=1` forces the plain
path; the test suite runs the core and simulator tests both ways.

The two paths must decide identically; only speed differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

PURE_ENV = "ARKWRIGHT_PURE_PYTHON"
GROUP = "arkwright_core"  # mypyc's shared library: arkwright_core__mypyc.<abi>.so
STAMP = "stamp.json"

# Left as plain Python: the package's own __init__ (it carries the search path);
# `errors` (a compiled class cannot derive from a built-in exception); and modules
# that are read once per run, where compiling buys nothing (catalogues and parsers).
NOT_COMPILED = frozenset({"__init__", "errors", "gpus", "policy", "dependencies"})
# The simulator's per-event code, compiled with the core: the clock's loop and the
# recorder it calls at every start and finish. The rest of `sim` runs once per run.
SIM_COMPILED = ("recorder", "simulator")
PACKAGES = ("core", "sim")  # the packages whose search path a build goes on

PACKAGE_DIR = Path(__file__).resolve().parent


def build_dir() -> Path:
    return Path(sys.prefix) / "arkwright-compiled"


def compiled_modules(root: Path = PACKAGE_DIR) -> list[str]:
    """The modules the build compiles, as `package.module` under `arkwright`."""
    core = sorted(
        f"core.{p.stem}" for p in (root / "core").glob("*.py") if p.stem not in NOT_COMPILED
    )
    return core + [f"sim.{name}" for name in SIM_COMPILED]


def build_sources(root: Path = PACKAGE_DIR) -> list[Path]:
    """Every source the build copies and type-checks: the whole core (compiled or
    imported), and of `sim` its package file and the modules compiled."""
    sim = [root / "sim" / "__init__.py", *(root / "sim" / f"{n}.py" for n in SIM_COMPILED)]
    return sorted((root / "core").glob("*.py")) + sim


def source_digest(root: Path = PACKAGE_DIR) -> str:
    """A digest of every source the build depends on and of which are compiled."""
    digest = hashlib.sha256()
    for path in build_sources(root):
        name = path.relative_to(root).as_posix()
        data = path.read_bytes() if path.exists() else b"(absent)"
        digest.update(name.encode() + b"\0" + data + b"\0")
    digest.update(" ".join(compiled_modules(root)).encode())
    return digest.hexdigest()


def read_stamp(where: Path) -> dict | None:
    """A build's stamp, or None where there is no readable build."""
    try:
        return json.loads((where / STAMP).read_text())
    except (OSError, ValueError):
        return None


def current(stamp: dict) -> bool:
    """Whether a build's stamp matches these sources, this Python and its module list."""
    return (
        stamp.get("digest") == source_digest()
        and stamp.get("python") == sys.version
        and stamp.get("modules") == compiled_modules()
    )


STATUS = "pure Python (not activated)"


def activate() -> str:
    """Use the compiled core if there is a current build; returns what is in use."""
    global STATUS
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        STATUS = f"pure Python ({PURE_ENV} set)"
        return STATUS
    where = build_dir()
    stamp = read_stamp(where)
    if stamp is None:
        STATUS = "pure Python (no compiled build)"
        return STATUS
    if not current(stamp):
        STATUS = "pure Python (the compiled build is out of date: make install)"
        return STATUS
    import arkwright.core as core  # neither package's __init__ imports anything
    import arkwright.sim as sim

    sys.path.insert(0, str(where))  # the shared library is a top-level module: ours first
    for name, package in zip(PACKAGES, (core, sim), strict=True):
        package.__path__.insert(0, str(where / "arkwright" / name))
    STATUS = f"compiled (mypyc, {len(stamp.get('modules', []))} modules)"
    return STATUS

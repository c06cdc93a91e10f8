"""Whether the scheduler core runs compiled (mypyc) or as plain Python.

`make install` compiles the core's modules with mypyc into the virtual environment that
runs them (`scripts/build_core.py` writes `<sys.prefix>/arkwright-compiled/`). When
`arkwright` is imported, `activate()` puts that build ahead of the sources on
`arkwright.core`'s search path, but only when it was built from exactly the sources
beside it (a digest, checked at import): an edited core falls back to plain Python
rather than run stale machine code. `ARKWRIGHT_PURE_PYTHON=1` forces the plain path;
the test suite runs the core and simulator tests both ways.

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

CORE_DIR = Path(__file__).resolve().parent / "core"


def build_dir() -> Path:
    return Path(sys.prefix) / "arkwright-compiled"


def compiled_modules(core_dir: Path = CORE_DIR) -> list[str]:
    """The core modules that the build compiles, by file stem, sorted."""
    return sorted(p.stem for p in core_dir.glob("*.py") if p.stem not in NOT_COMPILED)


def source_digest(core_dir: Path = CORE_DIR) -> str:
    """A digest of every core source the build depends on (compiled or imported) and of
    which of them are compiled."""
    digest = hashlib.sha256()
    for path in sorted(core_dir.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(compiled_modules(core_dir)).encode())
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
    import arkwright.core as core  # its __init__ imports nothing

    sys.path.insert(0, str(where))  # the shared library is a top-level module: ours first
    core.__path__.insert(0, str(where / "arkwright" / "core"))
    STATUS = f"compiled (mypyc, {len(stamp.get('modules', []))} modules)"
    return STATUS

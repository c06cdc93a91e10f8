"""Compile the scheduler core with mypyc into this virtual environment.

    python scripts/build_core.py          # `make` runs it before install, run, test, bench
    python scripts/build_core.py --force  # rebuild even if the build is current

Writes `<sys.prefix>/arkwright-compiled/` (see `arkwright/compiled.py`): the compiled
modules, mypyc's shared library and a stamp with the digest of the sources they were
built from. The sources are copied to a scratch directory and compiled from there, so
the checkout gains no build files and the stamp names exactly what was compiled. If
mypyc or a C compiler is missing, or the build fails, it says so and exits 0: the core
then runs as plain Python, which decides identically.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arkwright.compiled import (  # noqa: E402
    GROUP,
    PACKAGES,
    STAMP,
    build_dir,
    build_sources,
    compiled_modules,
    current,
    read_stamp,
    source_digest,
)


def build(out: Path) -> list[str]:
    from mypyc.build import mypycify  # mypy ships mypyc (a dev dependency)
    from setuptools import setup

    root = REPO / "arkwright"
    modules = compiled_modules(root)
    digest = source_digest(root)
    with tempfile.TemporaryDirectory(prefix="arkwright-build-") as scratch:
        work = Path(scratch)
        for package in PACKAGES:
            (work / "arkwright" / package).mkdir(parents=True)
        (work / "arkwright" / "__init__.py").write_text("")
        for source in build_sources(root):
            shutil.copy2(source, work / "arkwright" / source.relative_to(root))
        if source_digest(work / "arkwright") != digest:
            raise RuntimeError("the sources changed while they were being copied; run again")
        staged = work / "out"
        here = os.getcwd()
        os.chdir(work)  # mypyc names modules by path and writes C into ./build
        try:
            # What the compiled modules import from outside the copy (the rest of
            # `sim`, the fleet catalogue) is typed Any: called as Python, never compiled.
            flags = ["--ignore-missing-imports", "--follow-imports=silent"]
            paths = [f"arkwright/{name.replace('.', '/')}.py" for name in modules]
            extensions = mypycify(flags + paths, group_name=GROUP)
            with contextlib.redirect_stdout(io.StringIO()):  # setuptools' chatter
                setup(
                    name="arkwright-core-compiled",
                    ext_modules=extensions,
                    script_name="setup.py",
                    script_args=[
                        "-q",
                        "build_ext",
                        "--build-lib",
                        str(staged),
                        "--parallel",
                        str(os.cpu_count() or 1),
                    ],
                )
        finally:
            os.chdir(here)
        stamp = {
            "digest": digest,
            "python": sys.version,
            "modules": modules,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staged / STAMP).write_text(json.dumps(stamp, indent=1))
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(out))
    return modules


def up_to_date(out: Path) -> bool:
    """A build of exactly these sources is there, every module of it present."""
    stamp = read_stamp(out)
    if stamp is None or not current(stamp):
        return False
    built = {
        f"{package}.{p.name.split('.')[0]}"
        for package in PACKAGES
        for p in (out / "arkwright" / package).glob("*.so")
    }
    return set(stamp["modules"]) <= built


def main() -> int:
    out = build_dir()
    if "--force" not in sys.argv and up_to_date(out):
        return 0  # `make` runs this every time: a current build costs only this check
    started = time.perf_counter()
    try:
        modules = build(out)
    except (Exception, SystemExit) as error:  # setuptools reports failures as SystemExit
        shutil.rmtree(out, ignore_errors=True)
        print(
            f"core not compiled ({type(error).__name__}: {error}); it runs as plain Python",
            file=sys.stderr,
        )
        return 0
    took = time.perf_counter() - started
    print(f"compiled {len(modules)} modules (core, sim loop) with mypyc in {took:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

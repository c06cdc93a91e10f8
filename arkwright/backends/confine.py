"""Confining a local run to its share of the machine with cgroup v2.

Each run gets a leaf cgroup `<parent>/<job>-<attempt>` with `memory.max` (and
`memory.swap.max = 0`, so the limit is a limit) and `cpu.max`; the runner moves the
job's process into it before exec, so everything the job forks stays inside.

Why write the cgroup files directly rather than `systemd-run --scope`: the places this
backend runs (CI containers, a workstation, a batch node) often have no systemd as PID 1
or no D-Bus to reach it, where `systemd-run` simply fails; writing cgroupfs works
wherever cgroup v2 is mounted and the service may write it (root, or a subtree systemd
delegated with `Delegate=yes`), needs no daemon on the start path, and is what slurmd's
cgroup/v2 plugin does itself. On a systemd host, run the service as a unit with
`Delegate=yes` and set ARKWRIGHT_CGROUP_PARENT inside its delegated subtree.

GPU devices: cgroup v2 has no `devices.allow` file (device access is a BPF program
attached to the cgroup), which this module does not load; GPUs are handed out with
CUDA_VISIBLE_DEVICES, which CUDA honours but a hostile job could ignore. That limit is
stated at start-up when NVIDIA devices exist.

Where cgroup v2 is missing or not writable, `probe()` says why and runs go unconfined;
the service logs that as a warning once at start-up.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = None
    cpus: float | None = None  # CPU time per wall second, e.g. 2.0 = two cores

    def scaled(self, share: float) -> Limits:
        return Limits(
            int(self.memory_bytes * share) if self.memory_bytes else None,
            self.cpus * share if self.cpus else None,
        )


def machine_limits() -> Limits:
    """The whole machine: what a local pool's GPU slots share between them."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Limits(memory, float(os.cpu_count() or 1))


def _own_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return "/"


def _is_cgroup2(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(
        len(parts) >= 3 and parts[1] == str(path) and parts[2] == "cgroup2"
        for parts in (line.split() for line in mounts)
    )


def default_parent() -> Path:
    """Beside the service's own cgroup (a cgroup with processes may not hand controllers
    to children), or under the root when the service sits there (the root is exempt)."""
    configured = os.environ.get("ARKWRIGHT_CGROUP_PARENT")
    if configured:
        return Path(configured)
    own = _own_cgroup()
    if own == "/":
        return CGROUP_ROOT / "arkwright-jobs"
    return CGROUP_ROOT / own.lstrip("/") / ".." / "arkwright-jobs"


def _enable(parent: Path, controllers: tuple[str, ...]) -> None:
    wanted = " ".join(f"+{c}" for c in controllers)
    (parent / "cgroup.subtree_control").write_text(wanted)


class Confinement:
    """Makes and removes per-run cgroups under one parent."""

    CONTROLLERS = ("memory", "cpu")

    def __init__(self, parent: Path) -> None:
        self.parent = parent.resolve()

    def leaf(self, name: str) -> Path:
        return self.parent / name

    def create(self, name: str, limits: Limits) -> Path:
        leaf = self.leaf(name)
        leaf.mkdir(exist_ok=True)
        if limits.memory_bytes:
            (leaf / "memory.max").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):  # no swap accounting: nothing to turn off
                (leaf / "memory.swap.max").write_text("0")
        if limits.cpus:
            quota = max(int(limits.cpus * CPU_PERIOD_US), 1000)
            (leaf / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        return leaf

    def remove(self, name: str) -> None:
        leaf = self.leaf(name)
        with contextlib.suppress(OSError):
            (leaf / "cgroup.kill").write_text("1")  # stragglers a job left behind
        with contextlib.suppress(OSError):
            leaf.rmdir()


def probe(parent: Path | None = None) -> tuple[Confinement | None, str]:
    """A working Confinement, or None and the reason runs will not be confined."""
    if not _is_cgroup2(CGROUP_ROOT):
        return None, f"{CGROUP_ROOT} is not cgroup v2 (cgroup v1 or none is mounted)"
    parent = parent or default_parent()
    try:
        parent.mkdir(exist_ok=True)
        above = parent.resolve().parent
        available = (above / "cgroup.controllers").read_text().split()
        missing = [c for c in Confinement.CONTROLLERS if c not in available]
        if missing:
            return None, f"controllers {missing} are not available to {above}"
        enabled = (above / "cgroup.subtree_control").read_text().split()
        if any(c not in enabled for c in Confinement.CONTROLLERS):
            _enable(above, Confinement.CONTROLLERS)
        _enable(parent, Confinement.CONTROLLERS)
        confinement = Confinement(parent)
        test = confinement.create(".probe", Limits(64 << 20, 0.5))
        confinement.remove(test.name)
    except OSError as exc:
        return None, f"cannot write cgroups under {parent}: {exc.strerror or exc}"
    return confinement, ""


def join(leaf: str) -> None:
    """Move the calling process into `leaf` (in the job's child, before it drops root)."""
    with open(os.path.join(leaf, "cgroup.procs"), "w") as procs:
        procs.write("0")


# ------------------------------------------------------------------ private /tmp
#
# What Slurm's job_container/tmpfs does: each run sees its own /tmp and /var/tmp (its run
# directory's `tmp`, the job's own, 0700), so no run reads or plants files in another's
# temporary space, and nothing is left in the machine's /tmp when the run directory goes.
# The runner's child, still root, enters a new mount namespace (unshare(CLONE_NEWNS):
# Python 3.11 has no os.unshare), makes every mount private (nothing it mounts leaks
# back to the machine) and bind-mounts the directory over /tmp and /var/tmp, then drops
# privileges; the job cannot undo it without CAP_SYS_ADMIN.

_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
TMP_MOUNTS = ("/tmp", "/var/tmp")
_PROBE = (
    "import os, sys, tempfile\n"
    "from arkwright.backends.confine import enter_private_tmp\n"
    "mine = tempfile.mkdtemp(dir=sys.argv[1])\n"
    "enter_private_tmp(mine)\n"
    "sys.exit(0 if os.listdir('/tmp') == [] else 3)\n"
)
_tmp_probe: tuple[bool, str] | None = None  # once per process: the machine does not change


_libc: ctypes.CDLL | None = None


def _libc_call(name: str, *args) -> None:
    global _libc
    if _libc is None:  # loaded once; the runner loads it before it forks (load_libc)
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def load_libc() -> None:
    """Before a fork: the child then only calls into an already loaded library."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)


def enter_private_tmp(tmp_dir: str) -> None:
    """In the job's process, before it drops root: its own /tmp and /var/tmp."""
    _libc_call("unshare", _CLONE_NEWNS)
    _libc_call("mount", None, b"/", None, _MS_REC | _MS_PRIVATE, None)
    # /tmp first, from the run's directory; then /var/tmp from the new /tmp (the run's
    # path may itself lie below /tmp, hidden once /tmp is covered).
    source = os.fsencode(tmp_dir)
    for target in TMP_MOUNTS:
        if os.path.isdir(target):
            _libc_call("mount", source, target.encode(), None, _MS_BIND, None)
            source = b"/tmp"


def tmp_is_under_tmp(run_root: Path) -> bool:
    """A run directory below /tmp (or /var/tmp) would be hidden by its own private /tmp."""
    return any(run_root == Path(t) or Path(t) in run_root.parents for t in TMP_MOUNTS)


def probe_private_tmp() -> tuple[bool, str]:
    """(can runs get a private /tmp here, why not): tried once, in a child as the runner
    would, never in this process (it must keep the machine's mounts)."""
    global _tmp_probe
    if _tmp_probe is not None:
        return _tmp_probe
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0:
        _tmp_probe = (False, "the service is not root (a mount namespace needs it)")
        return _tmp_probe
    scratch = tempfile.mkdtemp(prefix="arkwright-tmp-probe-")
    keep = ("PATH", "PYTHONPATH", "LANG")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, scratch],
            env={k: os.environ[k] for k in keep if k in os.environ},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        _tmp_probe = (True, "") if done.returncode == 0 else (False, why)
    except (OSError, subprocess.SubprocessError) as exc:
        _tmp_probe = (False, str(exc))
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    return _tmp_probe

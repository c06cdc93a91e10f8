"""Who the service runs as, and what of it a job can reach.

Slurm splits the work: slurmctld (the scheduler and its state) runs as the unprivileged
SlurmUser; slurmd/slurmstepd keep root only to start each job under its submitter's UID.
Arkwright follows that split inside one service:

- `arkwright serve` as root says so at start-up unless told `--allow-root`
  (`root_warning`). It does not refuse: until the launcher below is a separate
  privileged process (the control plane dropping to a service account after forking
  it), root is the only way local jobs run under their owners' accounts, and refusing
  it would leave a root-only machine (a container, CI) with no isolated local site.
  Without root, local jobs can run only as the service's own account, and the start-up
  log says that such jobs are not isolated from the control plane.
- As root, root is used for one thing: the per-run launcher
  (backends/runner.py) starts each job's process under the account its site maps the
  owner to (setgroups/setgid/setuid before exec, never UID 0), with a clean environment,
  inside a cgroup. The rest of the service never executes job code.
- Whatever it runs as, the service's own files are private (`harden_data_dir`): the
  data directory 0700, every file in it 0600, new files 0600 (umask 077), so a job,
  running under another account, can read neither the database nor the token table nor
  another run's request.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("arkwright.privilege")


def root_warning(allow_root: bool, euid: int | None = None) -> str | None:
    """What `arkwright serve` says at start-up about running as root (None: nothing)."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return None
    if allow_root:
        log.info(
            "running as root (--allow-root): local jobs are started under their owners' "
            "mapped accounts, never as root; the service's files are kept private"
        )
        return None
    return (
        "warning: arkwright serve is running as root. Root is used only to start each "
        "local job under its owner's mapped account (never as root); the database and "
        "tokens are private to root. Run it as a service account to keep the control "
        "plane unprivileged (local jobs then run as that account, unisolated), or pass "
        "--allow-root to say this is intended."
    )


def harden_data_dir(path: Path) -> Path:
    """Make the control plane's data directory private to the service and return it as
    an absolute path. Called at start-up, before the database is opened: the umask makes
    every file created later 0600 too (SQLite's database, journal and WAL included)."""
    os.umask(0o077)
    path = Path(os.path.abspath(path))
    path.mkdir(parents=True, exist_ok=True)
    me = os.geteuid()
    for entry in [path, *path.rglob("*")]:
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != me:
            continue  # a link is not followed; another account's file is not ours to change
        owner_bits = stat.S_IMODE(info.st_mode) & 0o700
        wanted = owner_bits | (0o700 if stat.S_ISDIR(info.st_mode) else 0o600)
        if stat.S_IMODE(info.st_mode) != wanted:
            os.chmod(entry, wanted)
    return path

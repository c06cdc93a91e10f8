"""Who the service runs as, and what of it a job can reach.

Slurm splits the work: slurmctld (the scheduler and its state) runs as the unprivileged
SlurmUser; slurmd/slurmstepd keep root only to start each job under its submitter's UID.
Arkwright does the same (`enter_service`, called by `arkwright serve` at start-up):

- As root (the default): serve forks a privileged launcher that keeps root and owns the
  local backend, then drops itself to a service account (`--service-user`, created on
  first use) before it opens the database, binds the port or starts a thread
  (launcher_split.py). If that cannot be done, serve exits with the reason.
- As root with `--allow-root`: one root process, as before the split (an info log says
  so): the service itself starts local jobs under their owners' accounts. Needed where a
  Slurm site submits as each job's owner (runuser).
- Not root: local jobs can run only as the service's own account, and the start-up log
  says that such jobs are not isolated from the control plane.
- Either way, root is used for one thing: the per-run launcher (backends/runner.py)
  starts each job's process under the account its site maps the owner to
  (setgroups/setgid/setuid before exec, never UID 0), with a clean environment, inside a
  cgroup.
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
from typing import TYPE_CHECKING

from arkwright.core.fleet import Fleet

if TYPE_CHECKING:
    from arkwright.backends.launcher_split import Split

log = logging.getLogger("arkwright.privilege")


def say_root_mode(allow_root: bool, euid: int | None = None) -> bool:
    """Log, at start-up, that serve stays one root process (--allow-root); True if so."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0 or not allow_root:
        return False
    log.info(
        "running as root in one process (--allow-root): local jobs are started under "
        "their owners' mapped accounts, never as root; the service's files are kept private"
    )
    return True


def enter_service(
    fleet: Fleet, data_dir: Path, allow_root: bool, service_user: str, readers: int = 0
) -> tuple[Path, str | None, Split | None]:
    """Start-up for `arkwright serve`, before anything opens the database or a port: the
    data directory made private (and returned, absolute) and, as root without
    --allow-root, the privileges split (launcher_split.py: the service's local backend is
    then the launcher's client; `readers` read-only channels for API workers). Returns
    what to tell the operator, and the split (None when there is none). Raises
    CannotDrop."""
    data_dir = harden_data_dir(data_dir)
    if os.geteuid() != 0 or allow_root:
        say_root_mode(allow_root)
        return data_dir, None, None
    from arkwright.backends import launcher_split

    split = launcher_split.split_privileges(fleet, data_dir, service_user, readers)
    said = (
        f"running as {service_user} (uid {os.getuid()}); a privileged launcher keeps root "
        "to start local jobs under their owners' accounts"
    )
    if split.granted:
        said += f"; {service_user} was given search (x) only on " + ", ".join(
            map(str, split.granted)
        )
    return data_dir, said, split


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

"""`arkwright serve` as root: fork the privileged launcher, then drop to a service account.

The order is the guarantee (as slurmctld runs as SlurmUser and slurmd keeps root):
1. a system account for the service exists (`useradd --system`, no login shell, never
   UID 0) and can reach and read this installation (directories above it that it
   cannot pass get a search-only ACL entry for that one account: a Python under /root);
2. the local runs' records leave the data directory for `<data-dir>-launcher` (root's,
   0700; moved before step 3, and only if root's): the service will own the data
   directory, so it could swap a link in there for any path root writes; for the same
   reason the data directory's parent must not be writable by the service;
3. the data directory and everything in it become the service's (0700 / 0600, through
   descriptors opened without following links), the SQLite database `admin bootstrap`
   made as root included; ancestors it cannot pass get the same search-only ACL entry
   (an operator's 0700 working folder, mktemp's);
4. a socketpair, then fork: the child keeps root and runs the launcher (launcher.py);
5. the service drops: setgroups([]), setgid, setuid (real, effective and saved), checks
   that root cannot be regained, sets no_new_privs, all BEFORE the database is opened,
   the port bound or any thread started (the caller does those afterwards).
Anything that cannot be done is a `CannotDrop` with the reason: serve exits with it
unless `--allow-root` (one root process, as before).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from arkwright.backends.accounts import AccountRefused, create_account
from arkwright.backends.launcher import run_launcher
from arkwright.backends.launcher_client import LauncherClient
from arkwright.backends.local import LocalBackend, default_run_root
from arkwright.core.fleet import Fleet

DEFAULT_SERVICE_USER = "arkwright"
_PR_SET_NO_NEW_PRIVS = 38
_ACL_XATTR = "system.posix_acl_access"
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
)
_ACL_UNDEFINED_ID = 0xFFFFFFFF


class CannotDrop(RuntimeError):
    """serve, as root, cannot run unprivileged beside a launcher: the reason, for the
    operator (fix it, or pass --allow-root to run as one root process)."""


def service_account(name: str) -> pwd.struct_passwd:
    """The service's own account, created on first use; never root."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        try:
            create_account(name, comment="arkwright control plane")
        except AccountRefused as exc:
            raise CannotDrop(f"service account: {exc}") from None
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise CannotDrop(f"service account {name!r} was not created") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise CannotDrop(f"service account {name!r} has uid or gid 0")
    return entry


def _needs_root(fleet: Fleet) -> list[str]:
    """Sites whose backend, not the launcher, needs root: Slurm sites submitting as each
    job's owner (runuser; the account checks)."""
    sites = []
    for site in fleet.sites:
        settings = fleet.backend_settings.get(site.name)
        if site.backend == "slurm" and getattr(settings, "run_as", "") == "owner":
            sites.append(site.name)
    return sites


def _closed(account: pwd.struct_passwd, paths: list[Path], test: str = "-x") -> list[Path]:
    """Those of `paths` that `test <flag>` fails on when run as `account` (no groups but
    its own): one shell for them all (serve's start-up should not pay a process each)."""
    script = f'for p; do test {test} "$p" || printf "%s\\0" "$p"; done'
    try:
        done = subprocess.run(
            ["sh", "-c", script, "sh", *map(str, paths)],
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CannotDrop(f"cannot check what {account.pw_name!r} can reach: {exc}") from None
    return [Path(os.fsdecode(p)) for p in done.stdout.split(b"\0") if p]


def grant_search(path: Path, uid: int) -> None:
    """Add `u:<uid>:x` to a directory's access ACL (as `setfacl -m u:UID:x`): search
    only, no listing, nothing for anyone else. OSError where the filesystem has none."""
    try:
        raw = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError:
        raw = b""
    entries: dict[tuple[int, int], int] = {}
    if len(raw) >= 4 and (len(raw) - 4) % 8 == 0:
        for offset in range(4, len(raw), 8):
            tag, perm, ident = struct.unpack_from("<HHI", raw, offset)
            entries[(tag, ident)] = perm
    else:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        entries = {
            (_ACL_USER_OBJ, _ACL_UNDEFINED_ID): (mode >> 6) & 7,
            (_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID): (mode >> 3) & 7,
            (_ACL_OTHER, _ACL_UNDEFINED_ID): mode & 7,
        }
    entries[(_ACL_USER, uid)] = entries.get((_ACL_USER, uid), 0) | 1
    group_class = (_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP)
    entries[(_ACL_MASK, _ACL_UNDEFINED_ID)] = _union(
        perm for (tag, _), perm in entries.items() if tag in group_class
    )
    body = b"".join(struct.pack("<HHI", t, p, i) for (t, i), p in sorted(entries.items()))
    os.setxattr(path, _ACL_XATTR, struct.pack("<I", 2) + body, follow_symlinks=False)


def _union(perms) -> int:
    out = 0
    for perm in perms:
        out |= perm
    return out


def _open_the_way(account: pwd.struct_passwd, targets: list[Path]) -> list[Path]:
    """Every ancestor of `targets` passable by the service account: the topmost closed
    one gets a search-only ACL entry for it, then the rest are looked at again (returned,
    to be said at start-up)."""
    ancestors = sorted(
        {a for target in targets for a in target.parents}, key=lambda a: len(a.parts)
    )
    granted: list[Path] = []
    for _ in range(len(ancestors) + 1):
        closed = _closed(account, ancestors)
        if not closed:
            return granted
        ancestor = min(closed, key=lambda a: len(a.parts))
        if ancestor in granted:
            break  # an ACL entry that does not open it (a mask, a MAC policy)
        try:
            grant_search(ancestor, account.pw_uid)
        except OSError as exc:
            raise CannotDrop(
                f"the service account {account.pw_name!r} cannot pass {ancestor}, which "
                f"takes no ACL ({exc.strerror}); make it searchable (setfacl -m "
                f"u:{account.pw_name}:x {ancestor}) or choose another place"
            ) from None
        granted.append(ancestor)
    raise CannotDrop(f"the service account {account.pw_name!r} still cannot pass {ancestor}")


def _installation() -> list[Path]:
    """What the service imports after the drop: the interpreter's library (first), this
    package and its dependencies (all read-only to it)."""
    stdlib = Path(sysconfig.get_path("stdlib")).resolve()
    others = {
        Path(sysconfig.get_path("purelib")).resolve(),
        Path(sysconfig.get_path("platlib")).resolve(),
        Path(__file__).resolve().parents[1],
    }
    return [stdlib, *sorted(others - {stdlib})]


def _give_data_dir(account: pwd.struct_passwd, data_dir: Path) -> None:
    """chown/chmod through descriptors opened without following links: the directory may
    have been the service's before (a link it planted there leads nowhere for root)."""
    for entry in [data_dir, *data_dir.rglob("*")]:  # rglob does not descend links
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            raise CannotDrop(f"{entry} is neither a file nor a directory: remove it")
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise CannotDrop(f"cannot open {entry}: {exc.strerror}") from None
        try:
            if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (info.st_ino, info.st_dev):
                raise CannotDrop(f"{entry} changed while it was being given to the service")
            os.fchown(fd, account.pw_uid, account.pw_gid)
            os.fchmod(fd, 0o700 if stat.S_ISDIR(info.st_mode) else 0o600)
        except OSError as exc:
            raise CannotDrop(f"cannot give {entry} to {account.pw_name!r}: {exc}") from None
        finally:
            os.close(fd)


def _records_dir(data_dir: Path) -> Path:
    """Root's record of the local runs, beside the data directory; the records of runs
    started before the split (in `<data-dir>/runs`) move there once, so they are adopted."""
    records = data_dir.parent / f"{data_dir.name}-launcher"
    runs = records / "runs"
    records.mkdir(mode=0o700, exist_ok=True)
    info = records.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise CannotDrop(f"{records} is not a directory of root's")
    os.chmod(records, 0o700)
    old = data_dir / "runs"
    with contextlib.suppress(FileNotFoundError):
        info = old.lstat()
        # Root's own records only: a directory the service made could hold planted links.
        if not runs.exists() and stat.S_ISDIR(info.st_mode) and info.st_uid == 0:
            os.rename(old, runs)
    return runs


def _drop(account: pwd.struct_passwd) -> None:
    uid, gid = account.pw_uid, account.pw_gid
    os.setgroups([])
    os.setgid(gid)  # as root: real, effective and saved gid
    os.setuid(uid)  # as root: real, effective and saved uid
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise CannotDrop("the service account's ids were not all taken")
    if os.getgroups():
        raise CannotDrop("supplementary groups were kept")
    for regain in (os.setuid, os.seteuid):
        try:
            regain(0)
        except PermissionError:
            continue
        raise CannotDrop("root could be regained after the drop")
    libc = ctypes.CDLL(None, use_errno=True)
    # No setuid binary (sudo, su) can give the service back what it dropped.
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise CannotDrop(f"prctl(no_new_privs): {os.strerror(ctypes.get_errno())}")


@dataclass
class Split:
    client: LauncherClient  # the service's local backend
    granted: list[Path]  # directories given a search ACL entry
    readers: list[socket.socket]  # one read-only channel per API worker to come

    def reader_client(self, n: int) -> LauncherClient:
        """In API worker n (1..), after the fork: its own read-only channel; the
        service's channel and the other workers' are closed in this process."""
        self.client.close()
        for i, sock in enumerate(self.readers, 1):
            if i != n:
                sock.close()
        return LauncherClient(self.readers[n - 1])


def split_privileges(fleet: Fleet, data_dir: Path, service_user: str, readers: int = 0) -> Split:
    """Steps 1-5 above, with `readers` extra read-only channels for API workers
    (`serve --workers`). Returns the client the service uses as its local backend; the
    process that returns is the service, unprivileged. Called as root only."""
    needs = _needs_root(fleet)
    if needs:
        raise CannotDrop(
            f"site(s) {', '.join(needs)}: Slurm jobs submitted as their owners (run_as = "
            "'owner') need the service itself to be root"
        )
    account = service_account(service_user)
    installed = _installation()
    granted = _open_the_way(account, installed)
    # The interpreter's library and this package, readable: what it imports after the drop.
    unread = _closed(account, [installed[0] / "os.py", Path(__file__)], "-r")
    unread += _closed(account, [Path(sys.executable).resolve()])
    if unread:
        raise CannotDrop(
            f"the service account {service_user!r} cannot read {unread[0]}: install "
            "Arkwright where that account can read it"
        )
    # Sticky (/tmp): the account may not rename root's entries there, nor pre-make one
    # that _records_dir would accept.
    sticky = data_dir.parent.stat().st_mode & stat.S_ISVTX
    if not sticky and not _closed(account, [data_dir.parent], "-w"):
        raise CannotDrop(
            f"{data_dir.parent} is writable by {service_user!r}: it could replace the "
            "launcher's records beside the data directory; choose a --data-dir whose "
            "parent only root may write"
        )
    runs = _records_dir(data_dir)  # before the data directory is given away
    _give_data_dir(account, data_dir)
    granted += _open_the_way(account, [data_dir / "arkwright.db"])
    run_root = default_run_root(data_dir / "runs")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(readers)]
    pid = os.fork()
    if pid == 0:  # the launcher: root, the whole local backend
        ours.close()
        for mine, _ in pairs:
            mine.close()
        run_launcher(
            theirs,
            lambda: LocalBackend(fleet, runs, run_root=run_root, service_uid=account.pw_uid),
            [other for _, other in pairs],
        )
    theirs.close()
    for _, other in pairs:
        other.close()
    try:
        _drop(account)
    except BaseException:
        with contextlib.suppress(OSError):
            ours.close()  # the launcher sees EOF and ends
        raise
    return Split(LauncherClient(ours, pid), granted, [mine for mine, _ in pairs])

"""From a site's identity mapping to a real OS account on this machine, checked.

The fleet file says which account name a user maps to (fleets/identity.py); here that
name becomes a uid, gid and groups, created on first use where the site asks for it, and
refused when it would be root, the service's own account, or an account this process
cannot switch to. Slurm's rule is the model: a job runs under its submitter's UID, never
the daemon's, never 0.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from arkwright.backends.base import StartRefused
from arkwright.fleets.identity import LOCAL_DEFAULT, IdentitySettings, NoAccount

log = logging.getLogger("arkwright.accounts")


class AccountRefused(StartRefused):
    """The job's owner has no usable account on this site (unmapped, missing, root, the
    service's own, or one a non-root service cannot switch to). The site answered; the job
    goes back to the queue with this reason. The control plane avoids it by placing jobs
    only where `sites_that_can_run` says their owner has an account."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str  # the account's home if it exists, else "" (the run directory stands in)

    @classmethod
    def from_pwd(cls, entry: pwd.struct_passwd) -> Account:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        home = entry.pw_dir if entry.pw_dir and Path(entry.pw_dir).is_dir() else ""
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, home)


def _nologin() -> str:
    for shell in ("/usr/sbin/nologin", "/sbin/nologin"):
        if Path(shell).exists():
            return shell
    return "/bin/false"


def create_account(
    name: str, timeout_s: float = 30.0, comment: str = "arkwright job account"
) -> None:
    """A system account: no home, no login shell, its own group."""
    useradd = shutil.which("useradd")
    if useradd is None:
        raise AccountRefused(f"cannot create account {name!r}: useradd is not installed")
    done = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            _nologin(),
            "--user-group",
            "--comment",
            comment,
            name,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    # 9: the name is taken, by a concurrent start or an operator: either way it exists now.
    if done.returncode not in (0, 9):
        raise AccountRefused(f"cannot create account {name!r}: {done.stderr.strip()}")
    log.info("created account %s (%s)", name, comment)


class AccountResolver:
    """One site's users -> accounts on this machine.

    `service_uid` is the account that owns the control plane's files (the database, the
    token table, the runs' records): jobs never run as it when they can run as anyone
    else. A service that is not root can run jobs only as itself, so then every mapping
    must resolve to its own account and any other is refused with that reason."""

    def __init__(
        self, site: str, identity: IdentitySettings | None, service_uid: int | None = None
    ) -> None:
        self.site = site
        self.identity = identity
        self.euid = os.geteuid()
        self.service_uid = self.euid if service_uid is None else service_uid
        self._create_lock = threading.Lock()

    @property
    def can_switch(self) -> bool:
        return self.euid == 0

    def warnings(self) -> list[str]:
        """What an operator should hear at start-up about this site's isolation."""
        if self.can_switch:
            return []
        return [
            f"site {self.site}: the service runs as uid {self.euid}, not root, so it cannot "
            "start jobs under other accounts: every job runs as the service's own account "
            "and can read the control plane's files. Run the service with --allow-root "
            "(the runner drops privileges per job) for isolation."
        ]

    def resolve(self, user: str, tenant: str) -> Account:
        if not self.can_switch and self.identity is None:
            # The development default: the only account a non-root service can use.
            return Account.from_pwd(pwd.getpwuid(self.euid))
        identity = self.identity or LOCAL_DEFAULT
        try:
            name = identity.account_for(user, tenant)
        except NoAccount as exc:
            raise AccountRefused(f"site {self.site}: {exc}") from None
        entry = self._lookup(name, identity.create)
        return self._checked(Account.from_pwd(entry), user)

    def _lookup(self, name: str, create: bool) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        if not create:
            raise AccountRefused(f"site {self.site}: account {name!r} does not exist here")
        if not self.can_switch:
            raise AccountRefused(
                f"site {self.site}: cannot create account {name!r}: the service is not root"
            )
        with self._create_lock:
            try:
                return pwd.getpwnam(name)
            except KeyError:
                create_account(name)
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise AccountRefused(f"site {self.site}: account {name!r} was not created") from None

    def _checked(self, account: Account, user: str) -> Account:
        if account.uid == 0 or account.gid == 0:
            raise AccountRefused(
                f"site {self.site}: user {user!r} maps to {account.name!r}, which has "
                "uid or gid 0: jobs never run as root"
            )
        if not self.can_switch and account.uid != self.euid:
            raise AccountRefused(
                f"site {self.site}: user {user!r} maps to {account.name!r}, but the service "
                f"runs as uid {self.euid} (not root) and can start jobs only as itself"
            )
        if self.can_switch and account.uid == self.service_uid:
            raise AccountRefused(
                f"site {self.site}: user {user!r} maps to {account.name!r}, the service's "
                "own account, which owns the control plane's files"
            )
        return account

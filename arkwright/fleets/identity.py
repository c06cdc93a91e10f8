"""Who a job runs as on a site: the `[sites.identity]` table of a fleet file.

Every Arkwright user who may run on a `local` or `slurm` site maps to an OS account
there, as Slurm runs each job under its submitter's UID. Three ways to say which:

    [sites.identity]
    map = { alice = "alice", bob = "bsmith" }   # explicit: user -> account (checked first)
    template = "ark-{tenant}-{user}"            # otherwise: an account named from the user
    create = true                               # local sites: create missing accounts
    run_root = "/var/lib/arkwright-runs"        # local sites: where run directories go

A user neither `map` nor `template` covers has no account on the site: the site refuses
to start that user's jobs, and a job no eligible site can run is rejected at submission
(`sites_that_can_run`). Without a table, a local site runs jobs under the service's own
account when the service is not root (the only account it can use; start-up warns that
such jobs are not isolated from the control plane), and under `ark-{tenant}-{user}`
accounts created on first use when it is root. A Slurm site without a table submits
under the user's own name (`{user}`), as the cluster's accounts are its users'.

Whether an account exists, and that it is never root, is checked by the backend at
start (arkwright/backends/accounts.py); this module is pure: configuration only.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

# POSIX portable user names, as useradd accepts them by default (32 characters at most).
ACCOUNT_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
TEMPLATE_FIELDS = {"user", "tenant"}
DEFAULT_TEMPLATE = "ark-{tenant}-{user}"
FORBIDDEN_ACCOUNTS = {"root"}  # never, whatever the file says; UID 0 is checked at start too


class NoAccount(LookupError):
    """This user has no account on this site (nothing maps them, or the name a template
    gives is not a valid account name). Not the site's fault: the start is refused."""


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class IdentitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    map: dict[str, str] = {}
    template: str | None = None
    create: bool = False
    run_root: str | None = None  # absolute; default: a sibling `<data-dir>-runs`

    @field_validator("map")
    @classmethod
    def _valid_accounts(cls, mapping: dict[str, str]) -> dict[str, str]:
        for user, account in mapping.items():
            if not ACCOUNT_NAME.match(account):
                raise ValueError(f"map.{user}: {account!r} is not a valid account name")
            if account in FORBIDDEN_ACCOUNTS:
                raise ValueError(f"map.{user}: jobs never run as {account!r}")
        return mapping

    @field_validator("template")
    @classmethod
    def _known_fields(cls, template: str | None) -> str | None:
        if template is None:
            return None
        try:
            fields = _template_fields(template)
        except ValueError as exc:
            raise ValueError(f"template {template!r}: {exc}") from None
        unknown = fields - TEMPLATE_FIELDS
        if unknown or "" in fields:
            raise ValueError(
                f"template {template!r} may use only the fields {{user}} and {{tenant}}"
            )
        if "user" not in fields:
            # One account for a whole programme would let its users read each other's runs.
            raise ValueError(f"template {template!r} must contain {{user}}")
        return template

    @field_validator("run_root")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_absolute():
            raise ValueError(f"run_root {value!r} must be an absolute path")
        return value

    @model_validator(mode="after")
    def _create_needs_names(self) -> IdentitySettings:
        if self.create and self.template is None:
            object.__setattr__(self, "template", DEFAULT_TEMPLATE)
        return self

    def account_for(self, user: str, tenant: str) -> str:
        """The account name `user` of `tenant` runs as, or NoAccount saying why not."""
        if not user:
            raise NoAccount("the job has no owner, so no account can be chosen for it")
        if user in self.map:
            return self.map[user]
        if self.template is None:
            raise NoAccount(f"no account for user {user!r}: [sites.identity] does not map them")
        name = self.template.format(user=user, tenant=tenant).lower()
        if not ACCOUNT_NAME.match(name) or name in FORBIDDEN_ACCOUNTS:
            raise NoAccount(
                f"no account for user {user!r}: the template gives {name!r}, "
                "which is not a valid account name"
            )
        return name


# What a site without a table means (see the module docstring); `create` only acts as root.
LOCAL_DEFAULT = IdentitySettings(template=DEFAULT_TEMPLATE, create=True)
SLURM_DEFAULT = IdentitySettings(template="{user}")


class LocalSettings(BaseModel):
    """What a `local` site's backend reads from the fleet file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: IdentitySettings | None = None  # None: no [sites.identity] table


def identity_of(fleet, site_name: str) -> IdentitySettings | None:
    """The site's `[sites.identity]` table as the loader stored it, or None."""
    return getattr(fleet.backend_settings.get(site_name), "identity", None)


def effective_identity(fleet, site_name: str) -> IdentitySettings | None:
    """The mapping that applies on a site: its table or its backend's default; None for
    sites that run nothing real (simulated)."""
    site = fleet.site_by_name[site_name]
    if site.backend not in ("local", "slurm"):
        return None
    table = identity_of(fleet, site_name)
    if table is not None:
        return table
    return LOCAL_DEFAULT if site.backend == "local" else SLURM_DEFAULT


def sites_that_can_run(fleet, user: str, tenant: str) -> frozenset[str]:
    """The sites where `user` of `tenant` has an account (by configuration), so where the
    control plane may place their jobs. Simulated sites run no processes: all of them.
    Pure: whether the account exists on the machine is checked at start."""
    able = set()
    for site in fleet.sites:
        identity = effective_identity(fleet, site.name)
        if identity is None:
            able.add(site.name)
            continue
        try:
            identity.account_for(user, tenant)
        except NoAccount:
            continue
        able.add(site.name)
    return frozenset(able)


def backend_settings(sites: list) -> dict[str, object]:
    """Per-site backend settings for the Fleet: a Slurm site's `[sites.slurm]` (with its
    identity table) and a local site's LocalSettings."""
    from arkwright.fleets.slurm_settings import SlurmSettings

    settings: dict[str, object] = {}
    for site in sites:
        if site.backend == "slurm":
            slurm = site.slurm or SlurmSettings()
            settings[site.name] = slurm.model_copy(update={"identity": site.identity})
        elif site.backend == "local":
            settings[site.name] = LocalSettings(identity=site.identity)
    return settings

"""Test fleets whose local site maps users to `arkt-…` accounts (created on first use when
the tests run as root, as CI does; test accounts are reused, never left half-made)."""

from __future__ import annotations

import os
import pwd
import tomllib
from importlib import resources

from arkwright.backends.accounts import create_account
from arkwright.core.fleet import Fleet
from arkwright.fleets.loader import parse_fleet

TEST_TEMPLATE = "arkt-{tenant}-{user}"
IS_ROOT = os.geteuid() == 0


def local_fleet_with_identity(**identity) -> Fleet:
    """The `local` preset with a `[sites.identity]` table on its local site."""
    raw = tomllib.loads(resources.files("arkwright.fleets").joinpath("local.toml").read_text())
    table = {"template": TEST_TEMPLATE, "create": True, **identity}
    for site in raw["sites"]:
        if site.get("backend") == "local":
            site["identity"] = table
    return parse_fleet(raw, "test fleet")


def ensure_account(name: str) -> int:
    """A test account (created once, reused after): its uid."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        create_account(name)
        return pwd.getpwnam(name).pw_uid

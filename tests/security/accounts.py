"""Test fleets whose local site maps users to `arkt-…` accounts (created on first use when
the tests run as root, as CI does; test accounts are reused, never left half-made)."""

from __future__ import annotations

import dataclasses
import os
import pwd
import tomllib
from importlib import resources

from arkwright.backends.accounts import create_account
from arkwright.core.fleet import Fleet
from arkwright.fleets.loader import parse_fleet
from arkwright.service.control import ControlPlane
from arkwright.service.db import JobRow, UserRow

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


def carry_owner(control: ControlPlane) -> None:
    """Give each RunRequest its owner's name, as the control plane's `_request_for` does
    once the merge adds `owner=` to it (this wrapper then changes nothing)."""
    original = control._request_for

    def with_owner(start):
        request = original(start)
        if request.owner:
            return request
        with control.sessions() as session:
            row = session.get(JobRow, start.job.job_id)
            user = session.get(UserRow, row.user_id)
        return dataclasses.replace(request, owner=user.name)

    control._request_for = with_owner  # type: ignore[method-assign]


def ensure_account(name: str) -> int:
    """A test account (created once, reused after): its uid."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        create_account(name)
        return pwd.getpwnam(name).pw_uid

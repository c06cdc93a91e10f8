"""[sites.identity]: parsing, which sites can run a user, and the accounts never used."""

from __future__ import annotations

import os
import pwd
import tomllib
from importlib import resources

import pytest

from arkwright.backends.accounts import Account, AccountRefused, AccountResolver
from arkwright.fleets.identity import (
    IdentitySettings,
    NoAccount,
    identity_of,
    sites_that_can_run,
)
from arkwright.fleets.loader import FleetFileError, parse_fleet
from tests.security.accounts import IS_ROOT, local_fleet_with_identity


def raw_local() -> dict:
    text = resources.files("arkwright.fleets").joinpath("local.toml").read_text()
    return tomllib.loads(text)


def with_identity(table: dict, backend: str = "local") -> dict:
    raw = raw_local()
    site = next(s for s in raw["sites"] if s.get("backend") == backend or backend != "local")
    site["identity"] = table
    return raw


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"template": "ark-{programme}"}, "may use only the fields"),
        ({"template": "ark-{tenant}"}, "must contain {user}"),
        ({"map": {"alice": "root"}}, "never run as 'root'"),
        ({"map": {"alice": "Alice Smith"}}, "not a valid account name"),
        ({"run_root": "runs"}, "must be an absolute path"),
        ({"shell": "/bin/sh"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_identity_table_is_refused_naming_the_key(table, message):
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(with_identity(table), "f.toml")
    text = str(caught.value)
    assert "sites['workstation'].identity" in text and message in text, text


def test_map_comes_first_then_the_template():
    identity = IdentitySettings(map={"alice": "asmith"}, template="ark-{tenant}-{user}")
    assert identity.account_for("alice", "research") == "asmith"
    assert identity.account_for("Bob", "nhs") == "ark-nhs-bob"
    with pytest.raises(NoAccount, match="not a valid account name"):
        identity.account_for("bob.smith@uni", "nhs")
    with pytest.raises(NoAccount, match="does not map them"):
        IdentitySettings(map={"alice": "asmith"}).account_for("bob", "nhs")
    with pytest.raises(NoAccount, match="no owner"):
        identity.account_for("", "nhs")
    # create = true without a template names accounts ark-{tenant}-{user}
    assert IdentitySettings(create=True).account_for("eve", "nhs") == "ark-nhs-eve"


def test_sites_that_can_run_are_those_mapping_the_user():
    fleet = parse_fleet(with_identity({"map": {"alice": "alice"}}), "f.toml")
    everywhere = {s.name for s in fleet.sites}
    assert sites_that_can_run(fleet, "alice", "research") == everywhere
    # bob has no account on the local site; the simulated sites run no processes
    assert sites_that_can_run(fleet, "bob", "research") == everywhere - {"workstation"}
    assert identity_of(fleet, "workstation") == IdentitySettings(map={"alice": "alice"})
    assert identity_of(fleet, "remote-uk") is None


def test_the_service_never_runs_a_job_as_root_or_as_itself():
    resolver = AccountResolver("workstation", IdentitySettings(template="{user}"))
    resolver.euid = 0  # as the root service would be
    root = Account("toor", 0, 0, (0,), "")
    with pytest.raises(AccountRefused, match="jobs never run as root"):
        resolver._checked(root, "mallory")
    resolver.service_uid = 4242  # a service account owning the data directory
    with pytest.raises(AccountRefused, match="the service's own account"):
        resolver._checked(Account("arkwright", 4242, 4242, (), ""), "mallory")
    with pytest.raises(AccountRefused, match="not a valid account name"):
        resolver.resolve("root", "x")  # a template that would give "root"


def test_a_service_that_is_not_root_can_run_jobs_only_as_itself():
    me = pwd.getpwuid(os.geteuid())
    other = next(p for p in pwd.getpwall() if p.pw_uid not in (0, os.geteuid()))
    resolver = AccountResolver("workstation", IdentitySettings(map={"alice": other.pw_name}))
    resolver.euid = 4242 if IS_ROOT else resolver.euid  # pretend not to be root
    resolver.service_uid = resolver.euid
    with pytest.raises(AccountRefused, match=r"not root.*only as itself"):
        resolver.resolve("alice", "research")
    assert (
        resolver.warnings() and "cannot start jobs under other accounts" in (resolver.warnings()[0])
    )
    # Without a table, a non-root service runs jobs as its own account (and says so).
    own = AccountResolver("workstation", None)
    own.euid = own.service_uid = me.pw_uid
    if me.pw_uid != 0:
        assert own.resolve("anyone", "research").uid == me.pw_uid


def test_create_on_first_use_makes_a_system_account_without_login():
    if not IS_ROOT:
        pytest.skip("creating accounts needs root (CI runs the suite as root)")
    fleet = local_fleet_with_identity()
    resolver = AccountResolver("workstation", identity_of(fleet, "workstation"))
    account = resolver.resolve("frank", "nhs")
    entry = pwd.getpwnam("arkt-nhs-frank")
    assert (account.uid, account.gid) == (entry.pw_uid, entry.pw_gid) and account.uid != 0
    assert entry.pw_shell.endswith(("nologin", "false")) and account.home == ""
    assert resolver.resolve("frank", "nhs") == account  # reused, not created twice
    unmapped = AccountResolver("workstation", IdentitySettings(map={"x": "arkt-absent-user"}))
    with pytest.raises(AccountRefused, match="does not exist here"):
        unmapped.resolve("x", "nhs")

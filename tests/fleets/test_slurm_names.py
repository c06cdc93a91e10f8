"""The fleet's [slurm_names]: parsing (errors name the key), each kind of mapping, the
--constraint grammar, default and UNLIMITED time limits, intersections, hostile input."""

from __future__ import annotations

import contextlib
import copy
import functools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arkwright.core.job import PriorityClass
from arkwright.fleets import FleetFileError, load_fleet, preset_names
from arkwright.fleets.loader import parse_fleet
from arkwright.fleets.slurm_constraint import ConstraintError, evaluate
from arkwright.fleets.slurm_names import SlurmNames
from arkwright.fleets.slurm_resolve import NamesRequest, SlurmNameError, resolve
from arkwright.timefmt import parse_duration

DAY = 86400.0


def _pool(name: str, gpu: str, **extra) -> dict:
    return {
        "name": name,
        "gpu": gpu,
        "gpus_per_node": 4,
        "nodes": 2,
        "price_gbp_per_gpu_hour": 1.0,
        **extra,
    }


def _site(name: str, pools: list[dict], **extra) -> dict:
    return {
        "name": name,
        "region": "uk",
        "jurisdiction": "UK",
        "operator": "o",
        "carbon_g_per_kwh": 100,
        "pools": pools,
        **extra,
    }


FLEET = {
    "name": "names-test",
    "tenants": [{"name": "research"}, {"name": "nhs"}],
    "sites": [
        _site(
            "isambard",
            [_pool("gh200", "GH200", default_time="4:00:00")],
            max_job_hours=24,
            backend="slurm",
            slurm={"partitions": {"gh200": "workq"}, "gres_types": {"gh200": "gh200_96g"}},
        ),
        _site("cloud", [_pool("a100", "A100"), _pool("h100", "H100")]),
    ],
    "slurm_names": {
        "partitions": {
            "gpu": ["isambard/gh200", "cloud/h100"],
            "debug": {"pools": ["isambard"], "default_time": "30:00", "max_time": "1:00:00"},
            "ampere": "*/a100",
        },
        "accounts": {"proj123": "research", "nhs-*": "nhs"},
        "qos": {"debug": "urgent", "standard": "normal"},
        "features": {"80gb": ["A100", "H100"], "ib": "*"},
        "gres_types": {"a100_80gb": "A100"},
    },
}


def fleet_with(**names) -> object:
    raw = copy.deepcopy(FLEET)
    raw["slurm_names"].update(names)
    return parse_fleet(raw, "t.toml")


@functools.cache
def _fleet():
    return parse_fleet(copy.deepcopy(FLEET), "t.toml")


def run(fleet=None, **fields):
    fleet = fleet or _fleet()
    assert isinstance(fleet.slurm_names, SlurmNames)
    return resolve(
        NamesRequest(**fields), fleet.pools, fleet.slurm_names, frozenset(fleet.tenant_by_name)
    )


def refused(fleet=None, **fields) -> str:
    with pytest.raises(SlurmNameError) as exc:
        run(fleet, **fields)
    return str(exc.value)


# ----------------------------------------------------------------- parsing


def _error(mutate) -> str:
    raw = copy.deepcopy(FLEET)
    mutate(raw)
    with pytest.raises(FleetFileError) as exc:
        parse_fleet(raw, "t.toml")
    return str(exc.value)


@pytest.mark.parametrize(
    ("mutate", "where", "what"),
    [
        (lambda r: r["slurm_names"].update(bogus=1), "slurm_names.bogus", "Extra inputs"),
        (
            lambda r: r["slurm_names"]["partitions"].update(x=["nowhere/p"]),
            "slurm_names.partitions.x.pools[0]",
            "'nowhere/p' names no pool",
        ),
        (
            lambda r: r["slurm_names"]["accounts"].update(p1="Research!"),
            "slurm_names.accounts.p1",
            "not a programme name",
        ),
        (
            lambda r: r["slurm_names"]["qos"].update(gold="super"),
            "slurm_names.qos.gold",
            "unknown priority 'super'",
        ),
        (
            lambda r: r["slurm_names"]["features"].update(v100=["V100"]),
            "slurm_names.features.v100",
            "unknown GPU model 'V100'",
        ),
        (
            lambda r: r["slurm_names"]["partitions"].update(GPU=["cloud"]),
            "slurm_names.partitions",
            "differ only in case",
        ),
        (
            lambda r: r["slurm_names"]["partitions"].update(
                short={"pools": ["cloud"], "default_time": "2:00:00", "max_time": "1:00:00"}
            ),
            "slurm_names.partitions.short",
            "longer than max_time",
        ),
        (
            lambda r: r["slurm_names"].update(default_time=3600),
            "slurm_names.default_time",
            "valid string",
        ),
        (
            lambda r: r["slurm_names"].update(default_time="soon"),
            "slurm_names.default_time",
            "not a duration",
        ),
        (
            lambda r: r["slurm_names"].update(unknown_partition="maybe"),
            "slurm_names.unknown_partition",
            "'warn' or 'error'",
        ),
        (
            lambda r: r["sites"][0]["pools"][0].update(default_time="2-00:00:00"),
            "sites['isambard'].pools['gh200'].default_time",
            "longer than the site's maximum",
        ),
    ],
)
def test_file_errors_name_the_key(mutate, where, what):
    message = _error(mutate)
    assert f"t.toml: {where}" in message and what in message, message


def test_every_preset_parses_its_names():
    for name in preset_names():
        assert isinstance(load_fleet(name).slurm_names, SlurmNames), name


def test_uk_2026_reads_isambard_ai_scripts():
    fleet = load_fleet("uk-2026")
    script = run(fleet, partition="workq", account="brics.a5k", qos="debug")
    assert script.pools == ("isambard-ai/gh200",) and script.tenant == "research"
    assert script.priority is PriorityClass.HIGH and script.time == "1-00:00:00"
    assert run(fleet, partition="debug").time == "00:30:00"
    assert run(fleet, constraint="nvl72", time="1h").gpu_types == ("GB200", "GB300")
    assert run(fleet, account="nhs-trials", time="1h").tenant == "public-services"


def test_the_slurm_site_example_refuses_unknown_partitions_and_defaults_by_pool():
    fleet = load_fleet(Path(__file__).parents[2] / "examples" / "slurm-site.toml")
    assert run(fleet, partition="gpu").time == "04:00:00"  # the gh200 pool's default_time
    assert refused(fleet, partition="gpu-a100", time="1h").startswith("partition:")


# ----------------------------------------------------------------- partitions


def test_partition_alias_maps_to_its_pools_and_a_comma_list_to_any_of_them():
    assert run(partition="gpu", time="1h").pools == ("cloud/h100", "isambard/gh200")
    assert run(partition="ampere,debug", time="1h").pools == ("cloud/a100", "isambard/gh200")


@pytest.mark.parametrize(
    ("name", "pools"),
    [
        ("cloud", ("cloud/a100", "cloud/h100")),  # a site
        ("cloud/a100", ("cloud/a100",)),  # a pool's full name
        ("h100", ("cloud/h100",)),  # a pool's short name
        ("workq", ("isambard/gh200",)),  # the Slurm site's real partition ([sites.slurm])
        ("GPU", ("cloud/h100", "isambard/gh200")),  # any case
    ],
)
def test_names_the_fleet_already_has_are_partitions(name, pools):
    result = run(partition=name, time="1h")
    assert result.pools == pools and result.warnings == ()


def test_an_unknown_partition_is_a_hint_warned_and_ignored():
    result = run(partition="gpu,nosuch", time="1h")
    assert result.pools == ("cloud/h100", "isambard/gh200")
    assert result.warnings == ("partition: 'nosuch' not a partition of this fleet; ignored",)
    alone = run(partition="nosuch", time="1h")
    assert alone.pools is None and len(alone.warnings) == 1


def test_an_unknown_partition_is_an_error_by_setting():
    message = refused(fleet_with(unknown_partition="error"), partition="gpu,nosuch", time="1h")
    assert message.startswith("partition: 'nosuch' not a partition") and "'debug'" in message


def test_an_empty_partition_list_is_refused():
    assert refused(partition=" , ,", time="1h").startswith("partition:")


# ----------------------------------------------------------------- accounts


@pytest.mark.parametrize(
    ("account", "tenant"),
    [
        ("proj123", "research"),  # mapped
        ("PROJ123", "research"),  # accounts have no case in Slurm
        ("nhs-genomics", "nhs"),  # a glob
        ("research", "research"),  # a programme's own name
    ],
)
def test_accounts_name_programmes(account, tenant):
    assert run(account=account, time="1h").tenant == tenant


def test_account_at_hardware_charges_the_programme_and_narrows_the_hardware():
    on_partition = run(account="proj123@debug", time="1h")
    assert (on_partition.tenant, on_partition.pools) == ("research", ("isambard/gh200",))
    on_feature = run(account="proj123@80gb", time="1h")
    assert on_feature.tenant == "research" and on_feature.gpu_types == ("A100", "H100")
    message = refused(account="proj123@v100", time="1h")
    assert message.startswith("account: 'proj123@v100'") and "'v100'" in message


def test_an_unknown_account_is_refused_naming_it():
    message = refused(account="chem42", time="1h")
    assert message.startswith("account: 'chem42'")


def test_an_account_of_another_programme_than_the_tenant_is_refused():
    message = refused(account="proj123", tenant="nhs", time="1h")
    assert message.startswith("account:") and "'research'" in message and "'nhs'" in message
    assert run(account="proj123", tenant="research", time="1h").tenant == "research"


# ----------------------------------------------------------------- QoS


def test_qos_maps_to_a_priority_class():
    assert run(qos="debug", time="1h").priority is PriorityClass.URGENT
    assert run(qos="HIGH", time="1h").priority is PriorityClass.HIGH  # a class's own name


def test_an_unknown_qos_is_warned_and_ignored_or_an_error_by_setting():
    result = run(qos="gold", time="1h")
    assert result.priority is None and result.warnings == (
        "qos: 'gold' is not a QoS of this fleet; ignored",
    )
    assert refused(fleet_with(unknown_qos="error"), qos="gold", time="1h").startswith("qos:")


def test_a_qos_against_an_explicit_priority_is_refused():
    message = refused(qos="debug", priority=PriorityClass.LOW, time="1h")
    assert message.startswith("qos:") and "urgent" in message and "low" in message
    assert run(qos="debug", priority=PriorityClass.URGENT, time="1h").priority.name == "URGENT"


# ----------------------------------------------------------------- constraint / GRES


@pytest.mark.parametrize(
    ("constraint", "models"),
    [
        ("a100", ("A100",)),  # a model's name, any case
        ("80gb", ("A100", "H100")),  # a mapped feature
        ("80gb&h100", ("H100",)),
        ("gh200|a100", ("A100", "GH200")),
        ("gh200|a100&80gb", ("A100",)),  # left to right: (gh200|a100)&80gb, as Slurm
        ("gh200|(a100&80gb)", ("A100", "GH200")),  # parentheses group
        ("[gh200|h100]", ("GH200", "H100")),  # matching OR: one pool is one model
        ("ib&gh200", ("GH200",)),  # "*": a feature every model has narrows nothing
        (" a100 | h100 ", ("A100", "H100")),
    ],
)
def test_constraint_features_map_to_gpu_models(constraint, models):
    assert run(constraint=constraint, time="1h").gpu_types == models


def test_a_constraint_every_model_meets_is_no_restriction():
    assert run(constraint="ib", time="1h").gpu_types is None


@pytest.mark.parametrize(
    ("constraint", "reason"),
    [
        ("a100*2", "counts"),
        ("[a100*2&h100*4]", "counts"),
        ("[a100&h100]", "holds only names joined by |"),
        ("a100,h100", "',' is not part of a constraint"),
        ("(a100|h100", "is not closed"),
        ("a100|", "ends where a name should follow"),
        ("&a100", "where a name should be"),
        ("a100 h100", "expected & or |"),
        ("a100&h100", "matches no GPU model"),
        ("skylake", "'skylake' is not a feature"),
        ("(" * 40 + "a100" + ")" * 40, "nested deeper than"),
    ],
)
def test_constraints_refused_say_why(constraint, reason):
    message = refused(constraint=constraint, time="1h")
    assert message.startswith("constraint:") and reason in message, message


def test_an_unknown_feature_may_be_warned_and_ignored_by_setting():
    result = run(fleet_with(unknown_feature="warn"), constraint="skylake&a100", time="1h")
    assert result.gpu_types == ("A100",)
    assert result.warnings == ("constraint: 'skylake' not features of this fleet; ignored",)


@pytest.mark.parametrize(
    ("gres", "models"),
    [
        ("a100_80gb", ("A100",)),  # a mapped spelling
        ("H100", ("H100",)),  # a model's name
        ("gh200_96g", ("GH200",)),  # the Slurm site's own GRES type ([sites.slurm])
    ],
)
def test_gres_types_map_to_gpu_models(gres, models):
    assert run(gres_type=gres, time="1h").gpu_types == models


def test_a_gres_type_no_pool_has_is_refused_naming_the_field():
    # "amd" is a vendor (MI300X), but no pool of this fleet has one.
    assert refused(gres_type="amd", time="1h").startswith("gres_type: no pool")


def test_a_bare_nvidia_gres_type_allows_every_nvidia_model():
    models = run(gres_type="nvidia", time="1h").gpu_types
    assert {"A100", "H100", "GH200"} <= set(models) and "MI300X" not in models


def test_an_unknown_gres_type_is_refused():
    assert refused(gres_type="tesla_v100", time="1h").startswith("gres_type: 'tesla_v100'")


# ----------------------------------------------------------------- intersections


def test_restrictions_combine_by_intersection():
    both = run(partition="gpu", sites=["cloud"], time="1h")
    assert both.pools == ("cloud/h100",)
    narrowed = run(partition="gpu", constraint="80gb", time="1h")
    assert (narrowed.pools, narrowed.gpu_types) == (("cloud/h100",), ("H100",))
    assert run(pools=["cloud/a100"], gpu_type=["A100"], gres_type="a100_80gb", time="1h").pools


@pytest.mark.parametrize(
    ("fields", "first", "second"),
    [
        ({"partition": "debug", "pools": ["cloud/a100"]}, "pools", "partition 'debug'"),
        ({"partition": "debug", "sites": ["cloud"]}, "sites", "partition 'debug'"),
        ({"gpu_type": ["A100"], "constraint": "gh200"}, "constraint", "gpu_type 'A100'"),
        ({"constraint": "80gb", "gres_type": "gh200_96g"}, "gres_type", "constraint '80gb'"),
        ({"partition": "debug", "constraint": "a100"}, "constraint", "partition 'debug'"),
        ({"account": "proj123@debug", "partition": "ampere"}, "partition", "account"),
    ],
)
def test_an_empty_intersection_names_both(fields, first, second):
    message = refused(time="1h", **fields)
    assert message.startswith(f"{first}:") and second in message, message


def test_unknown_pools_are_refused_and_unknown_sites_left_to_the_intake():
    assert refused(pools=["cloud/v100"], time="1h").startswith("pools: 'cloud/v100'")
    assert run(sites=["mars"], partition="debug", time="1h").pools == ("isambard/gh200",)


def test_gpu_type_alone_is_left_to_the_core():
    # No Slurm name involved: the core's eligibility owns "no pool has that model".
    result = run(gpu_type=["B300"], time="1h")
    assert result.gpu_types is None and result.pools is None


def test_sites_alone_write_no_pools():
    assert run(sites=["cloud"], time="1h").pools is None


# ----------------------------------------------------------------- time


def test_a_given_time_is_kept():
    result = run(partition="gpu", time="2-00:00:00")
    assert result.time == "2-00:00:00" and result.warnings == ()


def test_no_time_takes_the_fleet_default_with_a_warning():
    result = run()
    assert result.time == "1-00:00:00"
    assert result.warnings == (
        "time: none given; the fleet's default 1-00:00:00 applies (set --time to choose)",
    )


def test_no_time_takes_the_smallest_default_of_the_named_pools():
    gpu = run(partition="gpu")  # isambard/gh200 says 4 h; cloud/h100 says nothing
    assert gpu.time == "04:00:00" and "pool isambard/gh200's default" in gpu.warnings[0]
    assert run(partition="debug").time == "00:30:00"  # the partition's own default
    assert run(partition="gpu,debug").time == "00:30:00"
    assert run(pools=["isambard/gh200"]).time == "04:00:00"
    assert run(pools=["cloud/a100"]).time == "1-00:00:00"  # no pool default: the fleet's


def test_a_default_is_cut_to_the_longest_the_pools_allow():
    raw = copy.deepcopy(FLEET)
    raw["slurm_names"]["default_time"] = "3-00:00:00"
    del raw["sites"][0]["pools"][0]["default_time"]
    result = run(parse_fleet(raw, "t.toml"), partition="isambard")  # a 24 h maximum
    assert result.time == "1-00:00:00" and "cut to the longest" in result.warnings[0]


@pytest.mark.parametrize("unlimited", ["UNLIMITED", "infinite", "0", 0])
def test_unlimited_is_the_longest_the_pools_allow(unlimited):
    assert run(partition="gh200", time=unlimited).time == "1-00:00:00"  # max_job_hours 24
    assert run(partition="debug", time=unlimited).time == "01:00:00"  # partition max_time
    everywhere = run(time=unlimited)  # cloud has no limit: the fleet's max_time
    assert everywhere.time == "365-00:00:00" and "longest" in everywhere.warnings[0]


def test_a_time_longer_than_the_partition_allows_is_refused():
    message = refused(partition="debug", time="2:00:00")
    assert message.startswith("time: '2:00:00'") and "'debug'" in message
    assert run(partition="debug,gpu", time="2:00:00").time == "2:00:00"  # gpu allows it


# ----------------------------------------------------------------- hostile input


def test_a_huge_comma_list_is_read_once_and_not_echoed_whole():
    names = ",".join(f"x{i}" for i in range(5000)) + ",gpu," * 100
    result = run(partition=names, time="1h")
    assert result.pools == ("cloud/h100", "isambard/gh200")
    assert len(result.warnings) == 1 and "and 4992 more" in result.warnings[0]
    assert len(result.warnings[0]) < 300


def test_globs_cannot_explode():
    # Many stars against a long near-miss: exponential in a backtracking matcher.
    fleet = fleet_with(accounts={"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b": "research"})
    assert refused(fleet, account="a" * 4000, time="1h").startswith("account:")
    # A target glob expands to at most every pool.
    assert run(fleet_with(partitions={"all": "*"}), partition="all", time="1h").pools == (
        "cloud/a100",
        "cloud/h100",
        "isambard/gh200",
    )


# ----------------------------------------------------------------- properties

FEATURES = {
    "a100": {"A100"},
    "h100": {"H100"},
    "gh200": {"GH200"},
    "80gb": {"A100", "H100"},
}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(FEATURES)), min_size=1, max_size=8),
    st.lists(st.sampled_from("&|"), min_size=7, max_size=7),
)
def test_constraints_fold_left_to_right(names, ops):
    text = names[0] + "".join(op + name for op, name in zip(ops, names[1:], strict=False))
    expected = set(FEATURES[names[0]])
    for op, name in zip(ops, names[1:], strict=False):
        expected = expected & FEATURES[name] if op == "&" else expected | FEATURES[name]
    lookup = lambda n: frozenset(FEATURES[n])  # noqa: E731
    assert evaluate(text, lookup) == expected
    assert evaluate(f"({text})", lookup) == expected


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_constraint_text_is_read_or_refused_by_name(text):
    with contextlib.suppress(ConstraintError):  # anything else escaping is a bug
        evaluate(text, lambda n: frozenset({"A100"}))


PARTITIONS = ["gpu", "debug", "ampere", "cloud", "h100", "workq", "nosuch", "other"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(PARTITIONS), min_size=1, max_size=12),
    st.sampled_from([None, "1h", "UNLIMITED"]),
    st.booleans(),
)
def test_partition_lists_mean_any_of_the_known(names, time, upper):
    fleet = _fleet()
    written = ",".join(n.upper() if upper else n for n in names)
    known = [fleet.slurm_names.partitions[n] for n in names if n in fleet.slurm_names.partitions]
    result = run(partition=written, time=time)
    if known:
        assert set(result.pools) == set().union(*(p.pools for p in known))
    else:
        assert result.pools is None
    usable = [p for p in fleet.pools if result.pools is None or p.name in result.pools]
    longest = max(p.site.max_job_duration_s or 365 * DAY for p in usable)
    assert 0 < parse_duration(result.time) <= longest
    if time is None:
        assert parse_duration(result.time) <= DAY


def test_limits_are_wall_clock_times_the_job_s_speed():
    # The core reads a time in reference-GPU seconds and runs a job time / speed on a
    # pool: the longest time a pool admits is its wall-clock limit times that speed.
    fleet = _fleet()
    half = {"GH200": 0.5, "A100": 0.25, "H100": 1.0}
    result = resolve(
        NamesRequest(partition="isambard", time="UNLIMITED"),
        fleet.pools,
        fleet.slurm_names,
        frozenset(),
        lambda pool: half[pool.gpu_model],
    )
    assert result.time == "12:00:00" and "1-00:00:00 on isambard/gh200" in result.warnings[0]
    # 45 minutes of reference time fit debug's 1 h at full speed (test above) but are
    # 90 minutes of wall-clock where the job runs at half speed: longer than debug allows.
    assert run(partition="debug", time="45:00").time == "45:00"
    with pytest.raises(SlurmNameError, match=r"^time: '45:00'"):
        resolve(
            NamesRequest(partition="debug", time="45:00"),
            fleet.pools,
            fleet.slurm_names,
            frozenset(),
            lambda pool: half[pool.gpu_model],
        )


def _names_or_text(known: list[str]):
    return st.none() | st.sampled_from(known) | st.text(min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    partition=_names_or_text(["gpu", "debug,ampere", "workq", "nosuch,gpu", "cloud"]),
    account=_names_or_text(["proj123", "nhs-x", "research", "proj123@debug", "x@y"]),
    qos=_names_or_text(["debug", "high", "gold"]),
    constraint=_names_or_text(["80gb", "gh200|a100", "(a100&80gb)|h100", "a*2"]),
    gres_type=_names_or_text(["a100_80gb", "nvidia", "amd"]),
    time=st.none() | st.sampled_from(["UNLIMITED", "0", "30:00", "2-00:00:00", 0, 60]),
    pools=st.none() | st.lists(st.sampled_from(["cloud/a100", "cloud/h100", "isambard/gh200"])),
    sites=st.none() | st.lists(st.sampled_from(["cloud", "isambard", "mars"]), max_size=2),
    tenant=st.none() | st.sampled_from(["research", "nhs"]),
)
def test_any_request_resolves_within_the_fleet_or_is_refused_by_field(**fields):
    fleet = _fleet()
    try:
        result = run(**fields)
    except SlurmNameError as exc:
        field = str(exc).split(":", 1)[0]
        assert field in {
            "partition",
            "account",
            "qos",
            "constraint",
            "gres_type",
            "time",
            "pools",
            "sites",
            "gpu_type",
        }, str(exc)
        return
    names = {p.name for p in fleet.pools}
    assert result.pools is None or (result.pools and set(result.pools) <= names)
    if fields["pools"] and result.pools is not None:
        assert set(result.pools) <= set(fields["pools"])
    assert 0 < parse_duration(result.time) <= 365 * DAY
    assert result.tenant in (None, "research", "nhs")

import copy

import pytest

from arkwright.core.policy_data import Classification
from arkwright.fleets import FleetFileError, load_fleet, preset_names
from arkwright.fleets.loader import parse_fleet

BASE = {
    "name": "f",
    "sites": [
        {
            "name": "a",
            "region": "uk",
            "jurisdiction": "uk",
            "operator": "o",
            "accreditations": ["OFFICIAL", "OFFICIAL-SENSITIVE"],
            "carbon_g_per_kwh": 100,
            "pools": [
                {
                    "name": "p",
                    "gpu": "H100",
                    "gpus_per_node": 8,
                    "nodes": 2,
                    "price_gbp_per_gpu_hour": 2.0,
                }
            ],
        }
    ],
}


def test_presets_are_listed_and_load():
    assert {"uk-2026", "tiny"} <= set(preset_names())
    for name in preset_names():
        assert load_fleet(name).total_gpus > 0


def test_uk_2026_carries_the_public_figures():
    fleet = load_fleet("uk-2026")
    isambard = fleet.pools_at("isambard-ai")[0]
    assert (isambard.gpu_model, isambard.gpus) == ("GH200", 5448)
    assert sum(p.gpus for p in fleet.pools_at("nebius-london")) == 4000
    assert sum(p.gpus for p in fleet.pools_at("nscale-loughton")) == 10000
    partners = (
        "nscale-loughton",
        "microsoft-uk-south",
        "coreweave-scotland",
        "coreweave-crawley",
        "openai-stargate-uk",
    )
    assert sum(p.gpus for s in partners for p in fleet.pools_at(s)) == 60000
    assert any("Indicative" in a for a in fleet.assumptions)


def test_site_fields_are_normalised():
    fleet = parse_fleet(BASE, "x.toml")
    site = fleet.sites[0]
    assert site.jurisdiction == "UK"
    assert site.max_classification is Classification.OFFICIAL_SENSITIVE
    assert fleet.pools[0].name == "a/p" and fleet.pools[0].watts_per_gpu == 700


def broken(path: list, value):
    raw = copy.deepcopy(BASE)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "raw, needles",
    [
        (
            broken(["sites", 0, "pools", 0, "gpu"], "Z900"),
            ["x.toml", "sites['a'].pools['p'].gpu", "unknown GPU model 'Z900'"],
        ),
        (
            broken(["sites", 0, "pools", 0, "nodes"], -3),
            ["sites['a'].pools['p'].nodes", "greater than 0", "-3"],
        ),
        (broken(["sites", 0, "pue"], 0.5), ["sites['a'].pue", "0.5"]),
        (broken(["sites", 0, "colour"], "red"), ["sites['a'].colour", "Extra inputs"]),
        (broken(["sites", 0, "carbon_hourly"], [1, 2]), ["24 values"]),
        (broken(["sites"], BASE["sites"] * 2), ["duplicate site 'a'"]),
    ],
)
def test_validation_names_file_key_and_problem(raw, needles):
    with pytest.raises(FleetFileError) as info:
        parse_fleet(raw, "x.toml")
    for needle in needles:
        assert needle in str(info.value)


def test_bad_toml_and_unknown_names(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(FleetFileError, match=r"bad\.toml: not valid TOML"):
        load_fleet(bad)
    with pytest.raises(FleetFileError, match="no fleet file or preset named 'atlantis'"):
        load_fleet("atlantis")


def test_tenant_site_restrictions_must_name_real_sites():
    raw = copy.deepcopy(BASE)
    raw["tenants"] = [{"name": "t", "allowed_sites": ["nowhere"]}]
    with pytest.raises(FleetFileError, match="unknown site 'nowhere'"):
        parse_fleet(raw, "x.toml")

import pytest

from arkwright.core.throughput import spec_ratio
from arkwright.fleets.loader import parse_fleet
from arkwright.sim.throughput_file import (
    ThroughputFileError,
    default_table,
    load_table,
    missing_cells,
    parse_table,
    table_for,
)
from tests.conftest import one_pool_fleet


def test_default_table_has_every_job_type_and_model():
    table = default_table()
    assert table.reference == "H100"
    for job_type in ("llm-pretrain", "llm-finetune", "inference", "vision", "science-sim"):
        assert table.speed(job_type, "H100") == 1.0
    assert table.speed("science-sim", "GH200") > table.speed("science-sim", "GB300")
    assert table.speed("inference", "GB300") > table.speed("inference", "H100")
    assert not table.fallbacks


def test_missing_cell_falls_back_to_spec_ratio_and_is_recorded():
    table = parse_table({"speeds": {"inference": {"H100": 1.0}}}, "t.toml")
    assert table.speed("inference", "B200") == pytest.approx(spec_ratio("B200"))
    assert ("inference", "B200") in table.fallbacks
    assert missing_cells(table, {"inference"}, {"H100", "B200"}) == ["inference/B200"]


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"speeds": {"inference": {"Z900": 1.0}}}, "t.toml: speeds.inference.Z900: unknown GPU"),
        ({"speeds": {"inference": {"H100": -2}}}, "speeds.inference.H100: must be a positive"),
        ({"speeds": {"inference": {"H100": "fast"}}}, "must be a number, got 'fast'"),
        ({"speeds": {"inference": 3}}, "speeds.inference must be a table"),
        ({"reference": "Z1"}, "reference: unknown GPU model 'Z1'"),
        ({"speedz": {}}, "unknown key(s) speedz"),
    ],
)
def test_bad_tables_name_the_cell(raw, needle):
    with pytest.raises(ThroughputFileError) as info:
        parse_table(raw, "t.toml")
    assert needle in str(info.value)


def test_user_file_and_fleet_override_in_that_order(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[speeds.inference]\nB200 = 9.0\nH100 = 1.0\n")
    assert load_table(path).speed("inference", "B200") == 9.0
    assert load_table(path).speed("vision", "B200") == default_table().speed("vision", "B200")
    fleet = parse_fleet({**_raw_fleet(), "throughput": {"inference": {"B200": 5.0}}}, "f")
    assert table_for(fleet, path).speed("inference", "B200") == 5.0


def test_bad_user_file_is_reported(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("speeds = [")
    with pytest.raises(ThroughputFileError, match=r"broken\.toml: not valid TOML"):
        load_table(path)


def _raw_fleet():
    fleet = one_pool_fleet()
    return {
        "name": "f",
        "sites": [
            {
                "name": "s",
                "region": "r",
                "jurisdiction": "UK",
                "operator": "o",
                "carbon_g_per_kwh": 1,
                "pools": [
                    {
                        "name": "p",
                        "gpu": "B200",
                        "gpus_per_node": 8,
                        "nodes": 1,
                        "price_gbp_per_gpu_hour": 1,
                    }
                ],
            }
        ],
        "tenants": [{"name": t.name} for t in fleet.tenants],
    }

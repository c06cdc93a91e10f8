import pytest

from arkwright.sim.carbon_file import CarbonFileError, read_carbon_csv, with_carbon_series
from arkwright.sim.recorder import CarbonClock


def write(tmp_path, text):
    path = tmp_path / "carbon.csv"
    path.write_text(text)
    return path


def test_series_replaces_named_sites_only(tmp_path, tiny):
    series = read_carbon_csv(write(tmp_path, "hour,uk-a\n0,100\n1,50\n2,25\n"), tiny)
    fleet = with_carbon_series(tiny, series)
    uk = fleet.site_by_name["uk-a"]
    assert [uk.carbon_at(h * 3600) for h in range(4)] == [100, 50, 25, 100]  # repeats
    assert fleet.site_by_name["eu-b"].carbon_hourly is None
    assert all(p.site is fleet.site_by_name[p.site.name] for p in fleet.pools)


def test_clock_integrates_a_series_exactly(tmp_path, tiny):
    fleet = with_carbon_series(tiny, {"uk-a": (100.0, 50.0, 25.0)})
    clock = CarbonClock(fleet.site_by_name["uk-a"])
    # 30 min at 100 + 1 h at 50 + 1 h at 25 + 30 min at 100 (wrapped)
    assert clock.integral(1800, 1800 + 3 * 3600) == pytest.approx(50 + 50 + 25 + 50)
    assert clock.mean() == pytest.approx(175 / 3)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("time,uk-a\n0,1\n", "line 1: the first column must be 'hour'"),
        ("hour,atlantis\n0,1\n", "line 1: unknown site 'atlantis'"),
        ("hour,uk-a\n0,1\n2,1\n", "line 3: hour '2', expected 1"),
        ("hour,uk-a\n0,dirty\n", "line 2: uk-a: intensity must be a number >= 0, got 'dirty'"),
        ("hour,uk-a\n0,-4\n", "got '-4'"),
        ("hour,uk-a,eu-b\n0,1\n", "line 2: 2 values, header has 3"),
        ("hour,uk-a\n", "no hourly rows"),
    ],
)
def test_bad_files_name_line_and_column(tmp_path, tiny, text, needle):
    with pytest.raises(CarbonFileError) as info:
        read_carbon_csv(write(tmp_path, text), tiny)
    assert needle in str(info.value)

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.timefmt import (
    format_duration,
    is_unlimited,
    parse_duration,
    slurm_time_limit,
)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("45m", 2700),
        ("2h", 7200),
        ("1.5d", 129600),
        (3600, 3600),
        ("30", 1800),  # Slurm: a bare number is minutes
        ("30:15", 1815),
        ("02:00:00", 7200),
        ("1-12", 129600),
        ("1-12:30", 131400),
        ("2-00:00:01", 172801),
        ("1-", 86400),  # Slurm: days alone
    ],
)
def test_slurm_and_plain_formats(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["soon", "", "x-1", "1:2:3:4", "-5", 0, "UNLIMITED", True, ":5", "5:", "1-:30"]
)
def test_bad_durations_name_the_value(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_matches_slurm():
    assert format_duration(93784) == "1-02:03:04"
    assert format_duration(59) == "00:00:59"


# What sbatch -v --test-only --time=... printed on the test cluster (Slurm 22.05).
@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1-", 86400),
        ("0:30", 60),  # rounded up to a whole minute
        ("30:15", 1860),
        ("00:00:00", None),  # zero minutes: no limit
        ("0", None),
        ("-1", None),
        ("UNLIMITED", None),
        ("infinite", None),
        ("2-12", 216000),
        ("1-06:30", 109800),
    ],
)
def test_time_limits_as_sbatch_reads_them(text, seconds):
    assert slurm_time_limit(text) == seconds


@pytest.mark.parametrize("text", ["1-:30", "5:", ":5", "soon", "1:2:3:4", "1-2-3", "-5", ""])
def test_time_limits_sbatch_refuses(text):
    with pytest.raises(ValueError, match="invalid time"):
        slurm_time_limit(text)


@pytest.mark.parametrize("text", ["UNLIMITED", "Infinite", "0", "-1", " unlimited "])
def test_unlimited_words(text):
    assert is_unlimited(text)


@given(st.integers(0, 400), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_days_hours_minutes_seconds_round_up_to_minutes(days, hours, minutes, seconds):
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    expected = -(-total // 60) * 60 or None
    assert slurm_time_limit(f"{days}-{hours}:{minutes}:{seconds}") == expected


@given(st.integers(1, 400 * 24 * 60))
def test_formatted_limits_read_back(minutes):
    assert slurm_time_limit(format_duration(minutes * 60)) == minutes * 60

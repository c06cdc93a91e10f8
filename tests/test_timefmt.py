import pytest

from arkwright.timefmt import format_duration, parse_duration


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
    ],
)
def test_slurm_and_plain_formats(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "1-", "x-1", "1:2:3:4", "-5", 0, "UNLIMITED", True])
def test_bad_durations_name_the_value(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_matches_slurm():
    assert format_duration(93784) == "1-02:03:04"
    assert format_duration(59) == "00:00:59"

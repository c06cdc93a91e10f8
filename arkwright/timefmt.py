"""Durations as people write them: Slurm's time formats and plain units.

Slurm (src/common/parse_time.c, time_str2secs): "minutes", "minutes:seconds",
"hours:minutes:seconds", "days-hours", "days-hours:minutes", "days-hours:minutes:seconds",
and "days-" (whole days); "UNLIMITED", "INFINITE" and "-1" mean no limit, and a time
limit that comes to zero minutes ("0", "00:00:00") does too. Plain: "90s", "45m", "2h",
"1.5d", or a bare number of seconds when given as a number.
"""

from __future__ import annotations

import math
import re

_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Slurm's shapes: digits, at most one '-' (days, before any ':'), at most two ':'.
_SLURM = re.compile(r"^(?:(\d+)-)?(\d+)?(?::(\d+))?(?::(\d+))?$")

UNLIMITED_WORDS = ("unlimited", "infinite")


def is_unlimited(value: str | float | int | None) -> bool:
    """Slurm's `UNLIMITED`, `INFINITE`, `-1` and `0` for a time limit: the site's maximum."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return value == 0
    return value.strip().lower() in (*UNLIMITED_WORDS, "0", "-1")


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration; raises ValueError naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    seconds = float(value) if isinstance(value, int | float) else _parse_text(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def slurm_time_limit(text: str) -> int | None:
    """A time limit as sbatch's --time reads it: seconds rounded up to whole minutes (as
    time_str2mins does), or None for no limit (UNLIMITED, INFINITE, -1, or zero minutes).
    Raises ValueError naming the value for anything Slurm would refuse."""
    raw = text.strip()
    if raw.lower() in (*UNLIMITED_WORDS, "-1"):
        return None
    seconds = _slurm_seconds(raw)
    if seconds is None:
        raise ValueError(
            f"invalid time {text!r} (Slurm's forms: minutes, minutes:seconds, "
            "hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds)"
        )
    minutes = -(-seconds // 60)
    return None if minutes == 0 else minutes * 60


def _slurm_seconds(raw: str) -> int | None:
    """Seconds in one of Slurm's colon/dash forms, or None if it is not one."""
    match = _SLURM.match(raw)
    if not match or not raw:
        return None
    days_text, first, second, third = match.groups()
    if days_text is None and first is None:
        return None  # ":5" and the like: no leading number
    if days_text is None and second is None and third is not None:
        return None
    numbers = [int(n) if n is not None else None for n in (first, second, third)]
    if days_text is not None:
        if first is None and (second is not None or third is not None):
            return None  # "1-:30"
        hours, minutes, seconds = (n or 0 for n in numbers)
        return ((int(days_text) * 24 + hours) * 60 + minutes) * 60 + seconds
    if third is not None:  # hours:minutes:seconds
        hours, minutes, seconds = (n or 0 for n in numbers)
        return (hours * 60 + minutes) * 60 + seconds
    minutes, seconds = numbers[0] or 0, numbers[1] or 0  # minutes[:seconds]
    return minutes * 60 + seconds


def _parse_text(text: str) -> float:
    match = _UNIT.match(text)
    if match:
        return float(match.group(1)) * _SECONDS[match.group(2).lower()]
    raw = text.strip()
    if raw.lower() in UNLIMITED_WORDS:
        raise ValueError(f"duration {text!r}: a time limit must be finite")
    seconds = _slurm_seconds(raw)
    if seconds is None:
        raise ValueError(
            f"not a duration: {text!r} (use e.g. 90s, 45m, 2h, 1-12:00:00 or HH:MM:SS)"
        )
    return float(seconds)


def format_duration(seconds: float) -> str:
    """Slurm's D-HH:MM:SS (or HH:MM:SS under a day)."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock

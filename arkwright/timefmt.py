"""Durations as people write them: Slurm's time formats and plain units.

Slurm: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
"days-hours:minutes", "days-hours:minutes:seconds". Plain: "90s", "45m", "2h", "1.5d",
or a bare number of seconds when given as a number.
"""

from __future__ import annotations

import math
import re

_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


UNLIMITED_WORDS = ("unlimited", "infinite")


def is_unlimited(value: str | float | int | None) -> bool:
    """Slurm's `UNLIMITED`, `INFINITE` and `0` for a time limit: the site's maximum."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return value == 0
    return value.strip().lower() in (*UNLIMITED_WORDS, "0")


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration; raises ValueError naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    seconds = float(value) if isinstance(value, int | float) else _parse_text(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    match = _UNIT.match(text)
    if match:
        return float(match.group(1)) * _SECONDS[match.group(2).lower()]
    raw = text.strip()
    if raw.lower() in ("infinite", "unlimited"):
        raise ValueError(f"duration {text!r}: a time limit must be finite")
    days = 0
    if "-" in raw:
        day_text, _, raw = raw.partition("-")
        if not day_text.isdigit():
            raise ValueError(f"not a duration: {text!r}")
        days = int(day_text)
        if not raw:
            raise ValueError(f"not a duration: {text!r} (hours must follow the '-')")
        parts = raw.split(":")
        if not all(p.isdigit() for p in parts) or len(parts) > 3:
            raise ValueError(f"not a duration: {text!r}")
        hours, minutes, seconds = ([int(p) for p in parts] + [0, 0])[:3]
    else:
        parts = raw.split(":")
        if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
            raise ValueError(
                f"not a duration: {text!r} (use e.g. 90s, 45m, 2h, 1-12:00:00 or HH:MM:SS)"
            )
        numbers = [int(p) for p in parts]
        if len(numbers) == 1:
            hours, minutes, seconds = 0, numbers[0], 0
        elif len(numbers) == 2:
            hours, minutes, seconds = 0, numbers[0], numbers[1]
        else:
            hours, minutes, seconds = numbers
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def format_duration(seconds: float) -> str:
    """Slurm's D-HH:MM:SS (or HH:MM:SS under a day)."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock

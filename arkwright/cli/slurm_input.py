"""What people type at Slurm's commands, read as Slurm reads it: times (sacct's
--starttime/--endtime) and job ids (ID, ID_TASK, ID_[1-3,7]). Pure; errors are
`SlurmFormatError`s naming the bad value."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

from arkwright.cli.slurm_format import SlurmFormatError

# ---------------------------------------------------------------- times people type

_RELATIVE = re.compile(
    r"^now(?:(?P<sign>[+-])(?P<count>\d{1,9})(?P<unit>seconds|minutes|hours|days|weeks)?)?$"
)
_UNIT_S = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_SLASH = re.compile(
    r"^(\d{1,2})([/.])(\d{1,2})(?:\2(\d{2}|\d{4}))?(?:-(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_MMDD = re.compile(r"^(\d{2})(\d{2})(\d{2})?(?:-(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(AM|PM)?$", re.IGNORECASE)


def parse_time(text: str, now: datetime, tz: tzinfo | None = None) -> datetime:
    """A time as sacct's --starttime/--endtime take one, in the reader's zone:
    YYYY-MM-DD[THH:MM[:SS]], MM/DD[/YY][-HH:MM[:SS]], MM.DD[.YY][-...],
    MMDD[YY][-HH:MM[:SS]], HH:MM[:SS][AM|PM] (today), today, midnight, noon,
    now[{+|-}count[seconds|minutes|hours|days|weeks]]. Raises SlurmFormatError."""
    local_now = now.astimezone(tz)
    word = text.strip()
    lower = word.lower()
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        if lower in ("today", "midnight"):
            return midnight
        if lower == "noon":
            return midnight.replace(hour=12)
        if lower == "tomorrow":
            return midnight + timedelta(days=1)
        if match := _RELATIVE.match(lower):
            if not match.group("sign"):
                return local_now
            step = int(match.group("count")) * _UNIT_S[match.group("unit") or "seconds"]
            return local_now + timedelta(seconds=step if match.group("sign") == "+" else -step)
        if match := _ISO.match(word):
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
            return local_now.replace(
                year=y, month=mo, day=d, hour=h, minute=mi, second=s, microsecond=0
            )
        if match := _SLASH.match(word):
            mo, _sep, d, y, h, mi, s = match.groups()
            return _dated(local_now, mo, d, y, h, mi, s)
        if match := _MMDD.match(word):
            mo, d, y, h, mi, s = match.groups()
            return _dated(local_now, mo, d, y, h, mi, s)
        if match := _CLOCK.match(word):
            h, mi, s, half = match.groups()
            hour = int(h)
            if half:
                if not 1 <= hour <= 12:
                    raise ValueError("hour")
                hour = hour % 12 + (12 if half.upper() == "PM" else 0)
            return midnight.replace(hour=hour, minute=int(mi), second=int(s or 0))
    except (ValueError, OverflowError):
        pass
    raise SlurmFormatError(
        f"invalid time specification: {word!r} (e.g. 2026-12-01T09:00, 12/01-09:00, "
        "09:00, today, now-2hours)"
    )


def _dated(
    now: datetime, mo: str, d: str, y: str | None, h: str | None, mi: str | None, s: str | None
) -> datetime:
    year = now.year if y is None else int(y) + (2000 if len(y) == 2 else 0)
    return now.replace(
        year=year,
        month=int(mo),
        day=int(d),
        hour=int(h or 0),
        minute=int(mi or 0),
        second=int(s or 0),
        microsecond=0,
    )


# ---------------------------------------------------------------- job ids people type

_ID_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}(?:_\d{1,9})?$")
_TASK_SET = re.compile(r"^(?P<job>[A-Za-z0-9][A-Za-z0-9.-]{0,63})_\[(?P<tasks>[\d,\-]+)\]$")
MAX_TASKS_NAMED = 10_000  # the most tasks one ID_[a-b] may name


def parse_job_ids(words: Iterable[str]) -> list[str]:
    """Job ids as Slurm's commands take them: space- or comma-separated ids, ID_TASK
    for one task of an array, ID_[1-3,7] for several (an array's own id stands for
    all its tasks). Returns the API's id tokens; raises SlurmFormatError naming a bad
    one."""
    tokens: list[str] = []
    for word in words:
        for item in _split_outside_brackets(word):
            if _ID_TOKEN.match(item):
                tokens.append(item)
                continue
            match = _TASK_SET.match(item)
            if match is None:
                raise SlurmFormatError(f"invalid job id {item[:64]!r}")
            tokens.extend(f"{match.group('job')}_{t}" for t in _task_numbers(item, match))
    return list(dict.fromkeys(tokens))


def _split_outside_brackets(word: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in word:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [i.strip() for i in items if i.strip()]


def _task_numbers(item: str, match: re.Match) -> list[int]:
    numbers: list[int] = []
    for part in match.group("tasks").split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise SlurmFormatError(f"invalid job id {item[:64]!r}")
        first, last = int(low), int(high or low)
        if last < first or len(numbers) + last - first + 1 > MAX_TASKS_NAMED:
            raise SlurmFormatError(f"invalid job id {item[:64]!r}")
        numbers.extend(range(first, last + 1))
    return numbers

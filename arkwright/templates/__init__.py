"""Jinja2 templates shared by the dashboard and the simulation reports."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("arkwright", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a missing value is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda value: f"{value:,.0f}"
    env.filters["percent"] = lambda value: f"{value * 100:.0f}%"
    env.filters["when"] = when
    env.filters["shell"] = shlex.join  # a command as you would type it
    return env


def when(moment: datetime | float | None) -> str:
    """A moment as UTC text; naive datetimes (SQLite gives those back) are taken as UTC."""
    if moment is None:
        return "–"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(name: str, **context) -> str:
    return environment().get_template(name).render(**context)

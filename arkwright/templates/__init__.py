"""Jinja2 templates shared by the dashboard and the simulation reports."""

from __future__ import annotations

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
    return env


def render(name: str, **context) -> str:
    return environment().get_template(name).render(**context)

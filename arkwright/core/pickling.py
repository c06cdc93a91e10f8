"""Pickling the core's frozen dataclasses by their constructor.

Compiled with mypyc, a frozen dataclass cannot be unpickled the default way (pickle
sets each field, which the frozen class forbids), yet fleets, jobs and configs cross
process boundaries (`sim/compare.py` runs each policy in its own process). Rebuilding
from the fields `__init__` takes works on both paths, and `__post_init__` recomputes
whatever is derived.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def by_constructor(obj: Any) -> tuple[type, tuple[Any, ...]]:
    """`__reduce__` for a frozen dataclass: its class and its `__init__` fields, in order."""
    return (type(obj), tuple(getattr(obj, f.name) for f in fields(obj) if f.init))

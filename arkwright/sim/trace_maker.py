"""Making a million Jobs: one generated function that sets every slot, checked against Job().

A trace knows which fields it gives per row, which come from a short list of repeated
combinations and which keep their defaults, so a function written for exactly that
shape (`object.__new__`, one store per field, the repeated combination unpacked from
one tuple, NaN read as "absent") does what `Job(...)` does with fewer steps, and the
caller need not spread the combinations into seven columns nor turn NaN into None
first. It is generated from Job's own field list (as `dataclasses` writes `__init__`),
never by hand, so a field Job gains is set too.

It is used only where it builds what `Job(...)` builds:
- Job is a plain Python class (not the compiled core's: `arkwright/compiled.py`);
- Job is a dataclass whose `__init__` is the one `dataclasses` wrote (no `__post_init__`,
  not frozen), and `__init__` sets every field (`init=True` throughout);
- on every call the first row is built both ways and compared slot by slot.
Otherwise `make_jobs` says None and the caller uses `Job(...)` itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from functools import cache

from arkwright.core.job import Job

Maker = Callable[..., Job]
_FIELDS = dataclasses.fields(Job)
_NAMES = tuple(f.name for f in _FIELDS)


def _plain_dataclass() -> bool:
    """True while Job.__init__ only sets each field from its argument or default, and
    Job is a class of plain Python (a compiled one cannot be made by object.__new__)."""
    try:
        object.__new__(Job)
    except TypeError:
        return False
    params = getattr(Job, "__dataclass_params__", None)
    init = Job.__dict__.get("__init__")
    return (
        params is not None
        and params.init
        and not params.frozen
        and not hasattr(Job, "__post_init__")
        and all(f.init for f in _FIELDS)
        # dataclasses compiles __init__ from text: a hand-written one has a real file.
        and getattr(getattr(init, "__code__", None), "co_filename", "") == "<string>"
    )


@cache
def _maker(per_row: tuple[str, ...], repeated: tuple[str, ...], optional: frozenset) -> Maker:
    """A function of one argument per `per_row` field, then one `combo` tuple (`repeated`).

    Fields in `optional` arrive as floats, NaN for "absent", and are stored as None.
    """
    params = [f"v{i}" for i in range(len(per_row))] + (["combo"] if repeated else [])
    body = ["    job = _new(_Job)"]
    if repeated:
        targets = ", ".join(f"job.{name}" for name in repeated)
        body.append(f"    {targets}{',' if len(repeated) == 1 else ''} = combo")
    env: dict[str, object] = {"_new": object.__new__, "_Job": Job}
    for f in _FIELDS:
        if f.name in repeated:
            continue
        if f.name in per_row:
            arg = f"v{per_row.index(f.name)}"
            # NaN is the only float unequal to itself.
            value = f"({arg} if {arg} == {arg} else None)" if f.name in optional else arg
        elif f.default is not dataclasses.MISSING:
            env[f"_d_{f.name}"] = f.default  # one shared object, as __init__ shares it
            value = f"_d_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_f_{f.name}"] = f.default_factory  # called per job, as __init__ does
            value = f"_f_{f.name}()"
        else:
            raise TypeError(f"Job.{f.name} has no default and no column")
        body.append(f"    job.{f.name} = {value}")
    source = f"def make({', '.join(params)}):\n" + "\n".join(body) + "\n    return job\n"
    exec(source, env)  # the text is built above from Job's own field names only
    return env["make"]  # type: ignore[return-value]


def _same(a: Job, b: Job) -> bool:
    for name in _NAMES:
        x, y = getattr(a, name), getattr(b, name)
        if type(x) is not type(y) or not (x is y or x == y):
            return False
    return True


def make_jobs(
    per_row: dict[str, Sequence],
    rows: int,
    *,
    repeated: tuple[str, ...] = (),
    combo: Sequence[tuple] = (),
    optional: Iterable[str] = (),
) -> list[Job] | None:
    """One Job per row, or None where the fast maker cannot be trusted (use Job()).

    `per_row` maps field names to `rows` values each (an `optional` field's as floats,
    NaN for absent); `combo` holds one tuple per row of the `repeated` fields' values,
    in that order (rows sharing a combination share the tuple). Fields given neither
    way keep their defaults. TypeError if a field without a default is not given.
    """
    if not _plain_dataclass():
        return None
    names = tuple(per_row)
    unknown = (set(names) | set(repeated)) - set(_NAMES)
    if unknown:
        raise TypeError(f"Job has no field(s) {', '.join(sorted(unknown))}")
    optional = frozenset(optional)
    make = _maker(names, repeated, optional)
    if not rows:
        return []
    columns = [per_row[name] for name in names] + ([combo] if repeated else [])
    kwargs = {name: per_row[name][0] for name in names}
    for name in kwargs.keys() & optional:
        if math.isnan(kwargs[name]):
            kwargs[name] = None
    if repeated:
        kwargs |= dict(zip(repeated, combo[0], strict=True))
    if not _same(make(*(column[0] for column in columns)), Job(**kwargs)):
        return None
    return list(map(make, *columns))

"""One heterogeneous component's options (the last given of each wins, as in sbatch:
script, then SBATCH_* environment, then command line) turned into its part of a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from arkwright.core.arrays import parse_array_spec
from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.sbatch.errors import SbatchError
from arkwright.sbatch.getopt import Given
from arkwright.sbatch.options import Handling
from arkwright.sbatch.request import (
    GpuAsk,
    Shape,
    gpu_spec,
    gres_gpus,
    shape,
    task_layout,
    tres_per_task_gpus,
)
from arkwright.timefmt import format_duration, slurm_time_limit

_MODELS = {model.lower(): model for model in GPU_CATALOGUE}
_ARRAY_ITEM = r"\d+(?:-\d+(?::\d+)?)?"
_ARRAY = re.compile(rf"^{_ARRAY_ITEM}(?:,{_ARRAY_ITEM})*(?:%\d+)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Options whose value is fixed per job: a later hetjob component may repeat them only
# unchanged (Arkwright submits one request).
JOB_LEVEL = (
    "job-name",
    "time",
    "partition",
    "account",
    "qos",
    "constraint",
    "dependency",
    "kill-on-invalid-dep",
    "array",
    "output",
    "error",
    "export",
)
# Options that share one setting in Slurm (the same getopt value).
_SAME_AS = {"tasks-per-node": "ntasks-per-node"}
# Options whose value the client acts on rather than sends.
CLIENT_SIDE = ("parsable", "test-only", "wait", "quiet", "verbose", "parse-only", "wrap")
# Values sbatch checks for the optional-argument options (their setters in slurm_opt.c).
_CHOICES = {
    "exclusive": ("exclusive", "allocation", "oversubscribe", "user", "mcs", "topo"),
    "no-kill": ("set", "off", "no"),
    "requeue": ("expedite",),
    "kill-on-invalid-dep": ("yes", "no"),
    "open-mode": ("append", "truncate"),
}


@dataclass
class Component:
    """The options of one component, by canonical long name."""

    options: dict[str, Given] = field(default_factory=dict)

    def set(self, given: Given) -> None:
        name = _SAME_AS.get(given.option.name, given.option.name)
        self.options[name] = given

    def get(self, name: str) -> Given | None:
        return self.options.get(name)


@dataclass(frozen=True)
class Part:
    """A component's request: its GPU shape (None: it asks for no GPUs) and the job-level
    fields it sets, with where each came from."""

    shape: Shape | None
    fields: dict[str, object]
    where: dict[str, str]
    no_gpus_said: str | None  # "--gres=gpu:0" when the options explicitly ask for none


def check_values(component: Component, warnings: list[str]) -> None:
    """Refuse what Arkwright cannot do; warn for what it ignores; check the values sbatch
    checks for the flags with optional arguments."""
    for name, given in component.options.items():
        option = given.option
        choices = _CHOICES.get(name)
        if choices and given.value is not None and given.value.lower() not in choices:
            raise SbatchError(f"Invalid --{name} specification", given.where)
        if option.handling is Handling.REFUSED:
            if name == "begin" and (given.value or "").lower() == "now":
                continue  # --begin=now asks for no delay
            raise SbatchError(f"--{name}: {option.note}", given.where)
        if option.handling is Handling.WARNED:
            shown = f"--{name}" + (f"={given.value}" if given.value is not None else "")
            warnings.append(f"{given.where}: {shown} ignored: {option.note}")


def build_part(component: Component, warnings: list[str]) -> Part:
    check_values(component, warnings)
    gpu_shape, no_gpus_said = _gpus(component, warnings)
    fields: dict[str, object] = {}
    where: dict[str, str] = {}
    for name in JOB_LEVEL:
        given = component.get(name)
        if given is None:
            continue
        value = _field_value(name, given, warnings)
        if value is None:
            continue
        key = name.replace("-", "_")
        fields[key] = value
        where[key] = given.where
    return Part(gpu_shape, fields, where, no_gpus_said)


def _gpus(component: Component, warnings: list[str]) -> tuple[Shape | None, str | None]:
    """The component's GPU shape, and what asked for none when something explicitly did."""
    get = component.get
    gres, per_node, per_task = get("gres"), get("gpus-per-node"), get("gpus-per-task")
    tres_per_task, total = get("tres-per-task"), get("gpus")
    from_gres = gres_gpus(gres, warnings) if gres is not None else None
    if from_gres is not None and per_node is not None:
        raise SbatchError("--gpus-per-node and --gres=gpu are mutually exclusive.", gres.where)
    asks: dict[str, GpuAsk | None] = {
        "per_node": gpu_spec(per_node) if per_node is not None else from_gres,
        "per_task": gpu_spec(per_task) if per_task is not None else None,
        "total": gpu_spec(total) if total is not None else None,
    }
    if per_task is None and tres_per_task is not None:
        asks["per_task"] = tres_per_task_gpus(tres_per_task, warnings)
    said = None
    for key, ask in asks.items():
        if ask is not None and ask.count == 0:
            said = f"--{ask.given.option.name}={ask.given.value}"
            asks[key] = None  # a count of 0 asks for none of it, as Slurm reads it
    layout = task_layout(get("nodes"), get("ntasks"), get("ntasks-per-node"), warnings)
    return shape(layout, asks["per_node"], asks["per_task"], asks["total"]), said


def _field_value(name: str, given: Given, warnings: list[str]) -> object:
    value = given.value or ""
    if name == "time":
        try:
            seconds = slurm_time_limit(value)
        except ValueError:
            raise SbatchError("Invalid --time specification", given.where) from None
        return "UNLIMITED" if seconds is None else format_duration(seconds)
    if name == "kill-on-invalid-dep":
        return value.lower() == "yes"
    if name == "array":
        _check_array(value, given.where)
        return value
    if name == "export":
        return _export(value, given.where, warnings)
    if name == "dependency" and not value:
        return None
    return value


def _check_array(spec: str, where: str) -> None:
    """Refused here, in sbatch's words, when the core would refuse it (one parser of
    `--array`, the core's; sbatch's syntax is the stricter, with no blanks)."""
    try:
        if not _ARRAY.match(spec):
            raise ValueError(spec)
        parse_array_spec(spec)
    except ValueError:
        raise SbatchError(
            f"Invalid job array specification {spec!r} (use e.g. 0-15, 1,3,5, 0-15:4 or 0-99%10)",
            where,
        ) from None


def _export(spec: str, where: str, warnings: list[str]) -> dict[str, str]:
    """--export: ALL, NONE, NIL, [ALL,]NAME[=value],... . Arkwright never copies the
    submitting shell's environment, so only NAME=value items carry anything."""
    env: dict[str, str] = {}
    for item in [part for part in spec.split(",") if part]:
        word = item.upper()
        if word in ("NONE", "NIL"):
            continue
        if word == "ALL":
            warnings.append(
                f"{where}: --export=ALL: Arkwright does not copy your environment into the "
                "job; give NAME=value items"
            )
            continue
        name, eq, value = item.partition("=")
        if not _ENV_NAME.match(name):
            raise SbatchError(f"--export: {name!r} is not a variable name", where)
        if not eq:
            warnings.append(
                f"{where}: --export={name}: Arkwright does not copy your environment; "
                f"give {name}=value"
            )
            continue
        env[name] = value
    return env


def gpu_fields(gpu_shape: Shape) -> dict[str, object]:
    """The request's GPU fields: gpus, nodes, and the type as a catalogue model in
    `gpu_type` or, when it is not one, as written in `gres_type` (the fleet maps a
    site's spellings and vendor names to models)."""
    fields: dict[str, object] = {"gpus": gpu_shape.gpus}
    if gpu_shape.nodes is not None:
        fields["nodes"] = gpu_shape.nodes
    kind = gpu_shape.gpu_type
    if kind is None:
        return fields
    model = _MODELS.get(kind.lower())
    if model is not None:
        fields["gpu_type"] = [model]
    else:
        fields["gres_type"] = kind
    return fields

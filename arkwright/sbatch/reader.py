"""A command line and a batch script in, one Arkwright job request out, as sbatch reads them.

Order of reading (src/sbatch/opt.c): the command line's options up to the script (the
first non-option; all after it are the script's own arguments, whatever they look like);
then for each heterogeneous component its #SBATCH directives, the SBATCH_* environment,
and its command-line options (groups separated by ":"), each overriding the one before.

Heterogeneous jobs become one request when they can (decided here, documented in
docs/sbatch.md): components' GPUs add up; when every component fixes its node shape and
all have the same GPUs per node, the nodes add up too; when none fixes a shape, only the
total is sent. Components that ask for no GPUs ride along (warned). Anything else, and
job-level options (time, partition, ...) that differ between components, is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from arkwright.sbatch.component import (
    CLIENT_SIDE,
    Component,
    Part,
    build_part,
    gpu_fields,
)
from arkwright.sbatch.directives import check_script, read_directives
from arkwright.sbatch.errors import SbatchError
from arkwright.sbatch.getopt import Given, Word, parse_words
from arkwright.sbatch.options import BY_NAME, ENVIRONMENT, ArgKind
from arkwright.sbatch.request import Shape

COMMAND_LINE = "command line"
MAX_SCRIPT_BYTES = 1 << 20  # what the API's JobSubmit.script takes
WRAP_HEADER = "#!/bin/sh\n# This script was created by sbatch --wrap.\n\n"


@dataclass(frozen=True)
class CommandLine:
    groups: list[list[Given]]  # the command line's options, per heterogeneous component
    script: str | None  # the script's path; None: read it from standard input
    args: list[str]  # the script's arguments

    def leader(self, name: str) -> Given | None:
        found = [g for g in self.groups[0] if g.option.name == name]
        return found[-1] if found else None


@dataclass(frozen=True)
class Submission:
    body: dict
    warnings: list[str]
    client: dict[str, Given] = field(default_factory=dict)  # --parsable, --wait, ...

    def flag(self, name: str) -> bool:
        return name in self.client


def parse_command_line(argv: list[str]) -> CommandLine:
    words = [Word(text, COMMAND_LINE) for text in argv]
    groups: list[list[Given]] = [[]]
    i = 0
    while True:
        parsed = parse_words(words[i:])
        groups[-1].extend(parsed.given)
        i += parsed.rest
        if i < len(words) and words[i].text == ":" and not parsed.dashes:
            groups.append([])
            i += 1
            continue
        break
    script = argv[i] if i < len(argv) else None
    args = argv[i + 1 :] if script is not None else []
    return CommandLine(groups, script, args)


def wrap_script(command: str) -> str:
    """The script sbatch makes of --wrap."""
    return f"{WRAP_HEADER}{command}\n"


def read_submission(
    cli: CommandLine,
    script_text: str,
    environ: Mapping[str, str] | None = None,
) -> Submission:
    """The request `script_text` becomes with the command line `cli`."""
    environ = os.environ if environ is None else environ
    wrap = cli.leader("wrap")
    if wrap is not None and cli.script is not None:
        raise SbatchError("Script arguments not permitted with --wrap option", COMMAND_LINE)
    if len(script_text.encode()) > MAX_SCRIPT_BYTES:
        raise SbatchError(f"the script is over {MAX_SCRIPT_BYTES} bytes, the API's limit")
    check_script(script_text)
    warnings: list[str] = []
    script_words, directive_warnings = read_directives(script_text)
    warnings += directive_warnings
    count = max(len(script_words), len(cli.groups))
    components = []
    for index in range(count):
        component = Component()
        words = script_words[index] if index < len(script_words) else []
        parsed = parse_words(words)
        if parsed.rest < len(words):
            left = words[parsed.rest]
            raise SbatchError(f"Invalid directive found in batch script: {left.text}", left.where)
        for item in parsed.given:
            component.set(item)
        for item in _environment(environ):
            component.set(item)
        for item in cli.groups[index] if index < len(cli.groups) else []:
            component.set(item)
        components.append(component)
    client = {name: given for name in CLIENT_SIDE if (given := components[0].get(name)) is not None}
    for component in components:
        for name in CLIENT_SIDE:
            component.options.pop(name, None)
    parts = [build_part(component, warnings) for component in components]
    if wrap is not None:
        default_name = "wrap"
    elif cli.script is None:
        default_name = "sbatch"  # as sbatch names a script read from standard input
    else:
        default_name = cli.script.rsplit("/", 1)[-1]
    body = _body(parts, default_name, cli.args, script_text, warnings)
    return Submission(body, warnings, client)


def _environment(environ: Mapping[str, str]) -> list[Given]:
    given = []
    for variable, name in ENVIRONMENT.items():
        if variable in environ:
            option = BY_NAME[name]
            value = None if option.arg is ArgKind.NONE else environ[variable]
            given.append(Given(option, value, variable))
    return given


def _body(
    parts: list[Part], default_name: str, args: list[str], script: str, warnings: list[str]
) -> dict:
    fields = _job_fields(parts)
    shape = _merged_shape(parts, warnings)
    gpu = gpu_fields(shape)
    body: dict = {"name": fields.pop("job_name", default_name), **gpu}
    if "time" not in fields:
        warnings.append("no --time: the pool's default time limit applies (the server says which)")
    for key in ("time", "partition", "account", "qos", "constraint", "dependency"):
        if key in fields:
            body[key] = fields[key]
    for key in ("kill_on_invalid_dep", "array", "output", "error"):
        if key in fields:
            body[key] = fields[key]
    if fields.get("export"):
        body["env"] = fields["export"]
    body["script"] = script
    body["command"] = list(args)
    return body


def _job_fields(parts: list[Part]) -> dict[str, object]:
    """The leader's job-level fields; a later component may repeat one only unchanged."""
    fields = dict(parts[0].fields)
    for number, part in enumerate(parts[1:], start=2):
        for key, value in part.fields.items():
            if key == "array":
                raise SbatchError(
                    "--array: heterogeneous job arrays are not supported", part.where[key]
                )
            if key in fields and fields[key] != value:
                raise SbatchError(
                    f"hetjob component {number} sets {key.replace('_', '-')} to "
                    f"{value!r}, component 1 to {fields[key]!r}; Arkwright runs a "
                    "heterogeneous job as one request",
                    part.where[key],
                )
            fields.setdefault(key, value)
    if len(parts) > 1 and "array" in fields:
        raise SbatchError(
            "--array: heterogeneous job arrays are not supported", parts[0].where["array"]
        )
    return fields


def _merged_shape(parts: list[Part], warnings: list[str]) -> Shape:
    shapes = [part.shape for part in parts]
    asking = [s for s in shapes if s is not None]
    if not asking:
        said = next((p.no_gpus_said for p in parts if p.no_gpus_said), None)
        reason = f" ({said} asks for none)" if said else ""
        raise SbatchError(
            f"no GPUs requested{reason}: add --gpus=N, --gpus-per-node=N or --gres=gpu:N "
            "(Arkwright schedules GPU work)"
        )
    if len(shapes) == 1:
        return asking[0]
    for number, part_shape in enumerate(shapes, start=1):
        if part_shape is None:
            warnings.append(
                f"hetjob component {number} asks for no GPUs; Arkwright does not schedule "
                "it separately (its tasks share the job's GPU nodes)"
            )
    return _sum_components(asking)


def _sum_components(asking: list[Shape]) -> Shape:
    types = {s.gpu_type.lower() for s in asking if s.gpu_type}
    if len(types) > 1:
        raise SbatchError(
            f"hetjob components name different GPU types ({', '.join(sorted(types))}); "
            "Arkwright runs a heterogeneous job as one request of one GPU model"
        )
    gpu_type = next((s.gpu_type for s in asking if s.gpu_type), None)
    total = sum(s.gpus for s in asking)
    shaped = [s for s in asking if s.nodes is not None]
    if not shaped:
        return Shape(total, None, gpu_type, asking[0].where)
    per_node = {s.gpus // s.nodes for s in shaped}  # type: ignore[operator]
    if len(shaped) != len(asking) or len(per_node) > 1:
        said = ", ".join(
            f"{s.gpus // s.nodes} per node on {s.nodes}" if s.nodes else f"{s.gpus} anywhere"
            for s in asking
        )
        raise SbatchError(
            f"hetjob components ask for different node shapes ({said}); Arkwright runs a "
            "heterogeneous job as one request with the same GPUs on every node"
        )
    return Shape(total, sum(s.nodes for s in shaped), gpu_type, asking[0].where)  # type: ignore[misc]

"""Read a Slurm batch script's #SBATCH directives into an Arkwright submission.

Researchers keep their scripts: `arkwright sbatch job.sh [sbatch options]` reads the
directives as sbatch does (only the comment block before the first command; options on
the command line win over the script), and Arkwright may place the job on any eligible
site. Directives that don't apply to Arkwright are reported with their line and ignored;
malformed ones are errors naming the line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.timefmt import parse_duration

# Long name -> (short flag, takes a value)
SUPPORTED = {
    "job-name": "J",
    "gres": None,
    "gpus": "G",
    "gpus-per-node": None,
    "nodes": "N",
    "ntasks-per-node": None,
    "time": "t",
    "partition": "p",
    "account": "A",
    "output": "o",
    "error": "e",
    "array": "a",
}
# Accepted and ignored: they describe things Arkwright's placement does not take from a script.
IGNORED = {
    "mem",
    "mem-per-cpu",
    "mem-per-gpu",
    "cpus-per-task",
    "cpus-per-gpu",
    "ntasks",
    "exclusive",
    "mail-type",
    "mail-user",
    "qos",
    "constraint",
    "hint",
    "chdir",
    "export",
    "requeue",
    "no-requeue",
    "signal",
    "open-mode",
    "distribution",
    "reservation",
    "begin",
}
FLAGS = {"exclusive", "requeue", "no-requeue"}  # options that take no value
SHORT = {short: name for name, short in SUPPORTED.items() if short}
_GPU_NAMES = {model.lower(): model for model in GPU_CATALOGUE}


class SbatchError(ValueError):
    pass


@dataclass
class BatchJob:
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)  # option -> "line N" or "command line"

    def submissions(self, script_path: str, script_text: str) -> list[dict]:
        """The API bodies: one job, or one per array task."""
        d = self.directives
        nodes = _count(d.get("nodes", "1"), "nodes", self.where.get("nodes"))
        models: set[str] = set()
        gpus = 0
        if "gpus" in d:
            model, gpus = _gpu_spec(d["gpus"], "gpus", self.where["gpus"])
            models |= model
        elif "gpus-per-node" in d:
            model, per_node = _gpu_spec(
                d["gpus-per-node"], "gpus-per-node", self.where["gpus-per-node"]
            )
            models |= model
            gpus = per_node * nodes
        elif "gres" in d:
            model, per_node = _gres(d["gres"], self.where["gres"])
            models |= model
            gpus = per_node * nodes
        if gpus <= 0:
            raise SbatchError(
                "no GPUs requested: add --gpus=N, --gpus-per-node=N or "
                "--gres=gpu:N (Arkwright schedules GPU work)"
            )
        body: dict = {
            "name": d.get("job-name", script_path.rsplit("/", 1)[-1]),
            "gpus": gpus,
            "command": ["bash", "-c", script_text, script_path],
        }
        if models:
            body["gpu_type"] = sorted(models)
        if "time" in d:
            try:
                parse_duration(d["time"])
            except ValueError as exc:
                raise SbatchError(f"{self.where['time']}: --time: {exc}") from None
            body["time"] = d["time"]
        if "account" in d:
            body["tenant"] = d["account"]
        env = {}
        for name in ("output", "error"):
            if name in d:
                env[f"SLURM_STD{'OUT' if name == 'output' else 'ERR'}_PATTERN"] = d[name]
        if "partition" in d:
            body["sites"] = [p.strip() for p in d["partition"].split(",") if p.strip()]
        tasks = _array(d["array"], self.where["array"]) if "array" in d else [None]
        bodies = []
        for task in tasks:
            job = {**body, "env": dict(env)}
            if task is not None:
                job["name"] = f"{body['name']}_{task}"
                job["env"]["SLURM_ARRAY_TASK_ID"] = str(task)
            if not job["env"]:
                del job["env"]
            bodies.append(job)
        return bodies


def parse_script(text: str, overrides: list[str] | None = None) -> BatchJob:
    """Directives from the script, then command-line `overrides` (sbatch-style arguments)."""
    job = BatchJob()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if number == 1 and stripped.startswith("#!"):
            continue
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#SBATCH")):
            continue
        if not stripped.startswith("#SBATCH"):
            break  # sbatch stops reading directives at the first command
        body = stripped[len("#SBATCH") :].split(" #", 1)[0].strip()
        try:
            words = shlex.split(body)
        except ValueError as exc:
            raise SbatchError(f"line {number}: cannot read {stripped!r}: {exc}") from None
        _apply(job, words, f"line {number}")
    if overrides:
        _apply(job, list(overrides), "command line")
    return job


def _apply(job: BatchJob, words: list[str], where: str) -> None:
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if name in FLAGS:
                value, eq = "yes", "="
        elif word.startswith("-") and len(word) >= 2:
            name, value, eq = SHORT.get(word[1], word[1]), word[2:], "=" if word[2:] else ""
        else:
            raise SbatchError(f"{where}: expected an option, got {word!r}")
        if not eq:
            if i + 1 >= len(words):
                raise SbatchError(f"{where}: --{name} needs a value")
            i += 1
            value = words[i]
        i += 1
        if name in SUPPORTED:
            job.directives[name] = value
            job.where[name] = where
        elif name in IGNORED:
            job.warnings.append(f"{where}: --{name} is not used by Arkwright; ignored")
        else:
            job.warnings.append(f"{where}: unknown option --{name}; ignored")


def _count(text: str, option: str, where: str | None) -> int:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if not match or int(match.group(1)) <= 0:
        raise SbatchError(
            f"{where or 'default'}: --{option}: expected a positive number, got {text!r}"
        )
    return int(match.group(1))  # a range asks for at least its minimum


def _model(name: str, where: str) -> str:
    model = _GPU_NAMES.get(name.lower())
    if model is None:
        raise SbatchError(f"{where}: unknown GPU type {name!r} (known: {', '.join(GPU_CATALOGUE)})")
    return model


def _gpu_spec(text: str, option: str, where: str) -> tuple[set[str], int]:
    """`N` or `type:N`."""
    parts = text.strip().split(":")
    if len(parts) == 1:
        return set(), _count(parts[0], option, where)
    if len(parts) == 2:
        return {_model(parts[0], where)}, _count(parts[1], option, where)
    raise SbatchError(f"{where}: --{option}: expected N or TYPE:N, got {text!r}")


def _gres(text: str, where: str) -> tuple[set[str], int]:
    """`gpu:N` or `gpu:type:N` (other generic resources are not GPUs and are refused)."""
    for item in text.split(","):
        parts = item.strip().split(":")
        if parts[0] != "gpu":
            continue
        if len(parts) == 2:
            return set(), _count(parts[1], "gres", where)
        if len(parts) == 3:
            return {_model(parts[1], where)}, _count(parts[2], "gres", where)
        raise SbatchError(f"{where}: --gres: expected gpu:N or gpu:TYPE:N, got {item!r}")
    raise SbatchError(f"{where}: --gres={text!r} asks for no GPUs")


def _array(text: str, where: str) -> list[int]:
    """Slurm array specs: `0-9`, `1,3,5`, `0-15:4`, with an optional `%limit` (ignored)."""
    spec = text.split("%", 1)[0]
    tasks: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not match:
            raise SbatchError(
                f"{where}: --array: cannot read {part!r} (use e.g. 0-9, 1,3,5 or 0-15:4)"
            )
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if last < first or step <= 0:
            raise SbatchError(f"{where}: --array: {part!r} is an empty range")
        tasks.extend(range(first, last + 1, step))
    if len(tasks) > 10_000:
        raise SbatchError(f"{where}: --array asks for {len(tasks)} tasks; the limit is 10,000")
    return tasks

"""GPU and task arithmetic: the GPUs a component asks for and the node shape they fix.

Slurm's meanings (sbatch(1); src/common/slurm_opt.c, proc_args.c, slurm_protocol_defs.c):

- `--gres=gpu[:TYPE][:N]` and `--gpus-per-node=[TYPE:]N` are per node (no N: one);
  `--gpus=[TYPE:]N` is the job's total; `--gpus-per-task=[TYPE:]N` (and `--tres-per-task`
  with gres/gpu) is per task. A count of 0 asks for none of that resource.
- Tasks: `--ntasks`, else nodes x `--ntasks-per-node`, else one per node.
- Nodes: `--nodes` (a range or a list of sizes: its minimum); with `--ntasks` and
  `--ntasks-per-node` and no `--nodes`, ceil(ntasks / ntasks-per-node); more nodes than
  tasks are cut to the task count, as sbatch does, with its warning.

The shape Arkwright can honour is `nodes` nodes with the same GPUs on each. When the
options fix the GPUs per node, the shape is sent; when they give only a total
(`--gpus=N`, or tasks without a node count) Arkwright chooses. Options that disagree,
or that would need different GPUs on different nodes, are refused naming them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from arkwright.sbatch.errors import SbatchError
from arkwright.sbatch.getopt import Given

_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_COUNT = re.compile(r"^(\d+)([kmgtp]?)$", re.IGNORECASE)
_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class GpuAsk:
    """One way of asking for GPUs, as written: a count per unit, and a model."""

    count: int
    gpu_type: str | None
    given: Given


@dataclass(frozen=True)
class Shape:
    """What a component asks for: total GPUs, an exact node count or None (Arkwright
    chooses), the GPU type as written (None: any), and where the count came from."""

    gpus: int
    nodes: int | None
    gpu_type: str | None
    where: str


def _number(text: str) -> int | None:
    match = _COUNT.match(text)
    if not match:
        return None
    return int(match.group(1)) * _SUFFIX[match.group(2).lower()]


def positive_int(given: Given) -> int:
    """sbatch's parse_int for --ntasks and the like: a whole number above zero."""
    text = given.value or ""
    if not text.isdigit() or int(text) <= 0:
        raise SbatchError(f'Invalid numeric value "{text}" for --{given.option.name}.', given.where)
    if int(text) >= _INT_MAX:
        raise SbatchError(
            f"Numeric argument ({text}) too large for --{given.option.name}.", given.where
        )
    return int(text)


def node_count(given: Given) -> tuple[int, str | None]:
    """The minimum of `N`, `MIN-MAX` or a list of sizes (`2,4,8`, `2-8:2`), with a
    warning when there was a choice (Arkwright asks for the minimum)."""
    text = (given.value or "").strip()
    sizes = re.split(r"[,:-]", text)
    numbers = [_node_number(part) for part in sizes]
    if not text or any(n is None for n in numbers):
        bad = next((p for p, n in zip(sizes, numbers, strict=True) if n is None), text)
        raise SbatchError(f'"{bad}" is not a valid node count', given.where)
    counts = [n for n in numbers if n is not None]
    if "," not in text and ":" not in text and "-" in text and counts[1] < counts[0]:
        raise SbatchError(
            f"Maximum node count {counts[1]} is less than minimum node count {counts[0]}",
            given.where,
        )
    low = min(counts)
    if low <= 0:
        raise SbatchError(f"--nodes={text}: a GPU job needs at least one node", given.where)
    warning = None
    if len(set(counts)) > 1:
        warning = f"{given.where}: --nodes={text}: Arkwright asks for the minimum, {low}"
    return low, warning


def _node_number(part: str) -> int | None:
    match = re.fullmatch(r"(\d+)([kKmM]?)", part)
    if not match:
        return None
    return int(match.group(1)) * _SUFFIX[match.group(2).lower()]


def gpu_spec(given: Given) -> GpuAsk:
    """`N` or `TYPE:N` (--gpus, --gpus-per-node, --gpus-per-task)."""
    items = [item for item in (given.value or "").split(",") if item]
    if len(items) != 1:
        raise SbatchError(
            f"--{given.option.name}={given.value}: one GPU count, N or TYPE:N "
            "(Arkwright asks for one GPU model per job)",
            given.where,
        )
    parts = items[0].split(":")
    if parts[0].lower() == "gpu" and len(parts) > 1:
        parts = parts[1:]  # gpu:TYPE:N, as --gres writes it
    count = _number(parts[-1])
    if count is None or len(parts) > 2 or (len(parts) == 2 and not parts[0]):
        raise SbatchError(f"--{given.option.name}={given.value}: expected N or TYPE:N", given.where)
    return GpuAsk(count, parts[0] if len(parts) == 2 else None, given)


def gres_gpus(given: Given, warnings: list[str]) -> GpuAsk | None:
    """The GPUs in `--gres` (per node), or None when it names none; other generic
    resources are warned and ignored."""
    text = given.value or ""
    if text.lower() == "none":
        return None
    found: list[GpuAsk] = []
    for item in [part for part in text.split(",") if part]:
        name, count, gpu_type = _tres_item(item.removeprefix("gres/"), given)
        if name != "gpu":
            warnings.append(f"{given.where}: --gres={item}: not a GPU; Arkwright does not count it")
            continue
        found.append(GpuAsk(count, gpu_type, given))
    if len(found) > 1:
        raise SbatchError(
            f"--gres={text}: names GPUs more than once; Arkwright asks for one GPU model per job",
            given.where,
        )
    return found[0] if found else None


def tres_per_task_gpus(given: Given, warnings: list[str]) -> GpuAsk | None:
    """The gres/gpu item of `--tres-per-task` (per task), as Slurm turns it into
    --gpus-per-task; cpu= and other items are warned."""
    text = given.value or ""
    found: list[GpuAsk] = []
    for item in [part for part in text.split(",") if part]:
        if not item.startswith("gres/gpu"):
            warnings.append(f"{given.where}: --tres-per-task={item}: Arkwright does not count it")
            continue
        _, count, gpu_type = _tres_item(item.removeprefix("gres/"), given)
        found.append(GpuAsk(count, gpu_type, given))
    if len(found) > 1:
        raise SbatchError(f"--tres-per-task={text}: names GPUs more than once", given.where)
    return found[0] if found else None


def _tres_item(item: str, given: Given) -> tuple[str, int, str | None]:
    """NAME[:TYPE][:COUNT] or NAME[:TYPE]=COUNT, as slurm_get_next_tres reads one."""
    bad = SbatchError(f"--{given.option.name}: invalid GRES specification {item!r}", given.where)
    if "=" in item:
        head, _, tail = item.rpartition("=")
        count = _number(tail)
        if count is None or not head:
            raise bad
        parts = head.split(":")
    else:
        parts = item.split(":")
        count = _number(parts[-1]) if len(parts) > 1 else None
        if count is not None:
            parts = parts[:-1]
        elif parts[-1] == "":
            raise bad  # "gpu:"
        else:
            count = 1
    if len(parts) > 2 or not parts[0] or (len(parts) == 2 and not parts[1]):
        raise bad
    return parts[0].lower(), count, parts[1] if len(parts) == 2 else None


@dataclass(frozen=True)
class Tasks:
    nodes: int | None  # fixed by the options, or None
    tasks: int
    per_node: int | None  # --ntasks-per-node


def task_layout(
    nodes: Given | None, ntasks: Given | None, per_node: Given | None, warnings: list[str]
) -> Tasks:
    count = None
    if nodes is not None:
        count, warning = node_count(nodes)
        if warning:
            warnings.append(warning)
    tasks = positive_int(ntasks) if ntasks else None
    tasks_per_node = positive_int(per_node) if per_node else None
    if ntasks is not None and count is not None and tasks is not None and tasks < count:
        warnings.append(
            f"{ntasks.where}: can't run {tasks} processes on {count} nodes, setting nnodes "
            f"to {tasks}"
        )
        count = tasks
    if count is None and tasks is not None and tasks_per_node is not None:
        count = -(-tasks // tasks_per_node)
    if tasks is None:
        tasks = (count or 1) * (tasks_per_node or 1)
    return Tasks(count, tasks, tasks_per_node)


def shape(
    layout: Tasks,
    per_node: GpuAsk | None,
    per_task: GpuAsk | None,
    total: GpuAsk | None,
) -> Shape | None:
    """The one shape all the given GPU options agree on, or None if none was given."""
    candidates: list[Shape] = []
    if per_node is not None:
        nodes = layout.nodes or 1
        candidates.append(
            Shape(per_node.count * nodes, nodes, per_node.gpu_type, per_node.given.where)
        )
    if per_task is not None:
        candidates.append(_per_task_shape(layout, per_task))
    if total is not None:
        nodes = layout.nodes
        if nodes is not None and total.count % nodes:
            raise SbatchError(
                f"--gpus={total.given.value} does not split evenly over {nodes} nodes; "
                "Arkwright places the same GPUs on every node",
                total.given.where,
            )
        candidates.append(Shape(total.count, nodes, total.gpu_type, total.given.where))
    if not candidates:
        return None
    return _agree(candidates)


def _per_task_shape(layout: Tasks, ask: GpuAsk) -> Shape:
    where = ask.given.where
    gpus = layout.tasks * ask.count
    nodes = layout.nodes
    if nodes is None:
        return Shape(gpus, None, ask.gpu_type, where)
    if layout.per_node is not None and layout.tasks != nodes * layout.per_node:
        raise SbatchError(
            f"{layout.tasks} tasks at most {layout.per_node} per node leave {nodes} nodes "
            "with different task counts; Arkwright places the same GPUs on every node "
            "(make --ntasks a multiple of --ntasks-per-node)",
            where,
        )
    if layout.tasks % nodes:
        raise SbatchError(
            f"{layout.tasks} tasks do not split evenly over {nodes} nodes; Arkwright "
            "places the same GPUs on every node",
            where,
        )
    return Shape(gpus, nodes, ask.gpu_type, where)


def _agree(candidates: list[Shape]) -> Shape:
    first = candidates[0]
    gpus = {c.gpus for c in candidates}
    nodes = {c.nodes for c in candidates if c.nodes is not None}
    types = {c.gpu_type.lower() for c in candidates if c.gpu_type}
    if len(gpus) > 1 or len(nodes) > 1:
        said = "; ".join(
            f"{c.where}: {c.gpus} GPUs" + (f" on {c.nodes} nodes" if c.nodes else "")
            for c in candidates
        )
        raise SbatchError(f"the GPU options disagree ({said})")
    if len(types) > 1:
        raise SbatchError(
            f"the GPU options name different GPU types ({', '.join(sorted(types))}); "
            "Arkwright asks for one GPU model per job"
        )
    gpu_type = next((c.gpu_type for c in candidates if c.gpu_type), None)
    return Shape(first.gpus, next(iter(nodes), None), gpu_type, first.where)

"""Read a throughput table from TOML (the shipped default, or a user's override).

A bad cell is an error that names the file, the job type and the GPU model; a missing
cell is not: it falls back to the spec ratio and is reported as a warning.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path

from arkwright.core.fleet import Fleet
from arkwright.core.gpus import GPU_CATALOGUE
from arkwright.core.throughput import ThroughputTable


class ThroughputFileError(ValueError):
    pass


def parse_table(raw: dict, source: str) -> ThroughputTable:
    problems: list[str] = []
    reference = raw.get("reference", "H100")
    if reference not in GPU_CATALOGUE:
        problems.append(f"{source}: reference: unknown GPU model {reference!r}")
    speeds = raw.get("speeds", {})
    if not isinstance(speeds, dict):
        raise ThroughputFileError(f"{source}: speeds must be a table of job types")
    unknown_keys = sorted(set(raw) - {"reference", "speeds"})
    if unknown_keys:
        problems.append(f"{source}: unknown key(s) {', '.join(unknown_keys)}")
    clean: dict[str, dict[str, float]] = {}
    for job_type, row in speeds.items():
        if not isinstance(row, dict):
            problems.append(f"{source}: speeds.{job_type} must be a table of GPU = speed")
            continue
        clean[job_type] = {}
        for model, value in row.items():
            where = f"{source}: speeds.{job_type}.{model}"
            if model not in GPU_CATALOGUE:
                problems.append(f"{where}: unknown GPU model {model!r}")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{where}: must be a number, got {value!r}")
            elif not math.isfinite(value) or value <= 0:
                problems.append(f"{where}: must be a positive number, got {value!r}")
            else:
                clean[job_type][model] = float(value)
    if problems:
        raise ThroughputFileError("\n".join(problems))
    return ThroughputTable(clean, reference=reference)


def default_table() -> ThroughputTable:
    text = (resources.files("arkwright.data") / "throughput.toml").read_text()
    return parse_table(tomllib.loads(text), "default throughput table")


def load_table(path: str | Path | None) -> ThroughputTable:
    """The default table, with any cells in `path` overriding it."""
    table = default_table()
    if path is None:
        return table
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ThroughputFileError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThroughputFileError(f"{path}: not valid TOML: {exc}") from None
    override = parse_table(raw, str(path))
    merged = {jt: dict(row) for jt, row in table.speeds.items()}
    for job_type, row in override.speeds.items():
        merged.setdefault(job_type, {}).update(row)
    return ThroughputTable(merged, reference=override.reference)


def table_for(fleet: Fleet, path: str | Path | None = None) -> ThroughputTable:
    """The default table, then a user's file, then the fleet file's own cells on top."""
    table = load_table(path)
    if not fleet.throughput:
        return table
    merged = {jt: dict(row) for jt, row in table.speeds.items()}
    for job_type, row in fleet.throughput.items():
        merged.setdefault(job_type, {}).update(row)
    return ThroughputTable(merged, reference=table.reference)


def missing_cells(table: ThroughputTable, job_types: set[str], models: set[str]) -> list[str]:
    """Cells the table lacks for this workload and fleet (they will use the spec ratio)."""
    return sorted(
        f"{jt}/{model}"
        for jt in job_types
        for model in models
        if model not in table.speeds.get(jt, table.speeds.get("default", {}))
    )

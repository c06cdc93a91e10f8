"""The trace columns that tie jobs together: `dependency`, `array_id`, `array_limit`.

- `dependency`: sbatch's --dependency syntax over the trace's own job ids
  (`afterok:17:18`, `afterany:3?afternotok:4`); empty: none. Every job it names must be
  in the trace and submitted before the dependent (an earlier submit_time, or the same
  one on an earlier line), as Slurm refuses a dependency on a job it does not know.
  `singleton` is refused: a trace has no user or job name for it to group by.
- `array_id`: tasks of one array share it; empty: not an array task.
- `array_limit`: the array's throttle (sbatch --array=...%N), a whole number; 0 or
  empty: none. Every task of an array must give the same limit, as one array has one
  throttle; a limit without an array_id is refused.

Each reader parses the cells with `dependency_cell` and checks the whole trace with
`LinkCheck`, taking rows in submit order, so all of them accept and refuse alike.
"""

from __future__ import annotations

from arkwright.core.dependencies import Dependency, parse_dependency

LINK_COLUMNS = ("dependency", "array_id", "array_limit")


def dependency_cell(text: str) -> Dependency | None:
    """One `dependency` cell (stripped); ValueError naming the column if it is bad."""
    if not text:
        return None
    found = parse_dependency(text)  # DependencyError (a ValueError) names the column
    if found.singleton:
        raise ValueError(
            "dependency: singleton is not supported in traces (a trace has no user or "
            "job name to group by)"
        )
    return found


def dependency_text(dependency: Dependency | None) -> str:
    """The cell that `dependency_cell` reads back as this dependency.

    For `,` (all of), neighbouring clauses of one kind share one (`afterok:1:2`), so a
    dependency of one kind needs no comma and so no CSV quotes; `?` alternatives are
    written one a clause (`afterok:1?afterok:2`), which never needs quotes. (One clause
    reads back as "all of", which means the same as "any of" it.)
    """
    if dependency is None:
        return ""
    if dependency.any_of:
        return "?".join(f"{kind}:{parent}" for kind, parent in dependency.clauses)
    parts: list[str] = []
    last = None
    for kind, parent in dependency.clauses:
        if kind == last:
            parts[-1] += f":{parent}"
        else:
            parts.append(f"{kind}:{parent}")
        last = kind
    return ",".join(parts)


class LinkCheck:
    """The checks across rows, given every job id in submit order.

    Only rows with a link cell need `check`ing (in submit order); the others are fine
    by construction. A job refused here is remembered as refused, so its own
    dependents are refused in turn, as they could never be submitted.
    """

    def __init__(self, ids: list[str]) -> None:
        self._position = dict(zip(ids, range(len(ids)), strict=True))
        self._refused: set[str] = set()
        self._limits: dict[str, int] = {}

    def check(
        self,
        at: int,
        job_id: str,
        dependency: Dependency | None,
        array_id: str | None,
        limit: int,
    ) -> str | None:
        """None if job `job_id`, at this position, is fine, else why not (naming the column)."""
        why = self._why(at, dependency, array_id, limit)
        if why is not None:
            self._refused.add(job_id)
        return why

    def _why(
        self, at: int, dependency: Dependency | None, array_id: str | None, limit: int
    ) -> str | None:
        if dependency is not None:
            for _, parent in dependency.clauses:
                where = self._position.get(parent)
                if where is None:
                    return f"dependency: job {parent!r} is not in the trace (or its row is bad)"
                if where == at:
                    return f"dependency: job {parent!r} cannot wait on itself"
                if where > at:
                    return f"dependency: job {parent!r} is not submitted before this job"
                if parent in self._refused:
                    return f"dependency: job {parent!r} is refused itself (see its line)"
        if array_id is None:
            if limit:
                return "array_limit: given without an array_id"
        else:
            first = self._limits.setdefault(array_id, limit)
            if first != limit:
                return (
                    f"array_limit: {limit} differs from {first}, the limit an earlier "
                    f"task of array {array_id!r} gives"
                )
        return None

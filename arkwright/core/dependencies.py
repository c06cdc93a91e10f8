"""Job dependencies as Slurm defines them (sbatch --dependency), held outside the queue.

A job that waits on others is accepted but not queued: it costs a pass nothing until
the jobs it names start or end. Each named job ("parent") keeps the list of clauses that
wait on it, so a start or an ending touches only its own dependents.

Semantics (sbatch(1)):
- `after:A` — A has started (or was cancelled, or has ended);
- `afterany:A` — A has ended, however;
- `afterok:A` — A completed successfully; if A failed or was cancelled, never;
- `afternotok:A` — A ended in any way other than success; if A succeeded, never;
- clauses joined by `,` must all be satisfied; joined by `?`, any one (mixing is refused,
  as Slurm does);
- `singleton` — every earlier job of the same user and name has ended (the scheduler
  turns it into `afterany` on those jobs when the job arrives).
A job whose dependency can never be satisfied stays pending with reason
`DependencyNeverSatisfied`, or is cancelled if it asked for --kill-on-invalid-dep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class DepKind(StrEnum):
    AFTER = "after"
    AFTER_ANY = "afterany"
    AFTER_OK = "afterok"
    AFTER_NOT_OK = "afternotok"


class Ended(StrEnum):
    """How a job ended, as far as dependencies care."""

    OK = "ok"  # completed with exit status 0
    FAILED = "failed"  # non-zero exit, time limit, node failure, rejected
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Dependency:
    clauses: tuple[tuple[DepKind, str], ...] = ()
    any_of: bool = False  # joined by `?`: one satisfied clause is enough
    singleton: bool = False
    kill_on_invalid: bool = False  # --kill-on-invalid-dep=yes

    def __str__(self) -> str:
        parts = [f"{kind}:{parent}" for kind, parent in self.clauses]
        if self.singleton:
            parts.append("singleton")
        return ("?" if self.any_of else ",").join(parts)


class DependencyError(ValueError):
    pass


_CLAUSE = re.compile(r"^(after|afterany|afterok|afternotok):(.+)$")
MAX_CLAUSES = 1000  # one job waiting on more than this is a mistake, or an attack


def parse_dependency(text: str, kill_on_invalid: bool = False) -> Dependency:
    """Slurm's --dependency syntax; job ids are taken as written (the caller resolves them)."""
    text = text.strip()
    if not text:
        raise DependencyError("dependency: empty")
    if "," in text and "?" in text:
        raise DependencyError(
            f"dependency: {text!r} mixes ',' (all of) and '?' (any of); Slurm allows one"
        )
    any_of = "?" in text
    clauses: list[tuple[DepKind, str]] = []
    singleton = False
    for part in text.split("?" if any_of else ","):
        part = part.strip()
        if part == "singleton":
            singleton = True
            continue
        match = _CLAUSE.match(part)
        if not match:
            kind = part.split(":", 1)[0]
            if kind in ("aftercorr", "afterburstbuffer"):
                raise DependencyError(f"dependency: {kind!r} is not supported by Arkwright")
            raise DependencyError(
                f"dependency: cannot read {part!r} (use after, afterany, afterok or "
                "afternotok:JOBID[:JOBID...], or singleton)"
            )
        kind = DepKind(match.group(1))
        for parent in match.group(2).split(":"):
            parent = parent.strip()
            if "+" in parent:
                raise DependencyError(
                    f"dependency: {part!r}: a delay after a job (+minutes) is not supported"
                )
            if not parent:
                raise DependencyError(f"dependency: {part!r} has an empty job id")
            clauses.append((kind, parent))
    if len(clauses) > MAX_CLAUSES:
        raise DependencyError(f"dependency: {len(clauses)} jobs; at most {MAX_CLAUSES}")
    if singleton and any_of:
        raise DependencyError("dependency: singleton cannot be one of '?' alternatives")
    return Dependency(tuple(clauses), any_of, singleton, kill_on_invalid)


# A clause's verdict once its parent has moved on.
SATISFIED, WAITING, NEVER = "satisfied", "waiting", "never"


def verdict(kind: DepKind, started: bool, ended: Ended | None) -> str:
    if ended is None:
        return SATISFIED if kind is DepKind.AFTER and started else WAITING
    if kind is DepKind.AFTER_OK:
        return SATISFIED if ended is Ended.OK else NEVER
    if kind is DepKind.AFTER_NOT_OK:
        return NEVER if ended is Ended.OK else SATISFIED
    return SATISFIED  # after, afterany: any ending will do


@dataclass(slots=True)
class _Waiting:
    dependency: Dependency
    open: dict[int, DepKind] = field(default_factory=dict)  # clause index -> kind, unresolved
    satisfied: int = 0
    never: int = 0


class DependencyBook:
    """Who waits on whom. Owned by the scheduler; the jobs themselves stay in its `jobs`."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiting] = {}
        self._by_parent: dict[str, list[tuple[str, int]]] = {}  # parent -> (child, clause)

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._waiting

    def add(self, job_id: str, dependency: Dependency, state_of) -> str:
        """Register a job's dependency. `state_of(parent)` -> (started, Ended | None) for a
        parent the caller knows, or None for one it has never heard of (never satisfied).
        Returns the job's verdict now: SATISFIED, WAITING or NEVER."""
        waiting = _Waiting(dependency)
        for index, (kind, parent) in enumerate(dependency.clauses):
            state = state_of(parent)
            now = NEVER if state is None else verdict(kind, *state)
            if now is SATISFIED:
                waiting.satisfied += 1
            elif now is NEVER:
                waiting.never += 1
            else:
                waiting.open[index] = kind
        result = self._overall(waiting)
        if result is WAITING:
            self._waiting[job_id] = waiting
            for index in waiting.open:
                parent = dependency.clauses[index][1]
                self._by_parent.setdefault(parent, []).append((job_id, index))
        return result

    def dependents(self, parent: str) -> bool:
        return parent in self._by_parent

    def parent_moved(
        self, parent: str, started: bool, ended: Ended | None
    ) -> list[tuple[str, str]]:
        """A parent started or ended: the (child, verdict) pairs that are now decided."""
        waiters = self._by_parent.get(parent)
        if not waiters:
            return []
        decided: list[tuple[str, str]] = []
        still: list[tuple[str, int]] = []
        for child, index in waiters:
            waiting = self._waiting.get(child)
            if waiting is None or index not in waiting.open:
                continue  # the child went away, or this clause was settled
            now = verdict(waiting.open[index], started, ended)
            if now is WAITING:
                still.append((child, index))
                continue
            del waiting.open[index]
            if now is SATISFIED:
                waiting.satisfied += 1
            else:
                waiting.never += 1
            result = self._overall(waiting)
            if result is not WAITING:
                self._forget(child)
                decided.append((child, result))
        if still:
            self._by_parent[parent] = still
        else:
            del self._by_parent[parent]
        return decided

    def remove(self, job_id: str) -> None:
        """The waiting job itself went away (cancelled)."""
        self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        waiting = self._waiting.pop(job_id, None)
        if waiting is None:
            return
        for index in waiting.open:
            parent = waiting.dependency.clauses[index][1]
            waiters = self._by_parent.get(parent)
            if waiters is not None:
                left = [w for w in waiters if w[0] != job_id]
                if left:
                    self._by_parent[parent] = left
                else:
                    del self._by_parent[parent]

    @staticmethod
    def _overall(waiting: _Waiting) -> str:
        total = len(waiting.dependency.clauses)
        if waiting.dependency.any_of:
            if waiting.satisfied:
                return SATISFIED
            return NEVER if waiting.never == total else WAITING
        if waiting.never:
            return NEVER
        return SATISFIED if waiting.satisfied == total else WAITING

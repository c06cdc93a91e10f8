"""A submission's --dependency resolved against the jobs that exist, at intake.

Ids are written as Arkwright prints them (`j-0000012`), as their bare number (`12`, so
`sbatch --parsable` output works unchanged), or as an array task (`12_3`,
`j-0000012_3`). An array's id stands for every task of the array, as in Slurm. A
dependency may name only jobs of the submitter's own programme: anything else is
answered exactly as a job that does not exist, so the answer tells a hostile tenant
nothing about another programme's jobs.

The stored form names every job by its full id (what the core reads back).
"""

from __future__ import annotations

import re

from arkwright.core.dependencies import Dependency, DependencyError, Ended, parse_dependency
from arkwright.service.errors import AdmissionError
from arkwright.service.states import RunState
from arkwright.service.store import Store, job_id_for

_REF = re.compile(r"^(?:j-)?(\d{1,18})(?:_(\d{1,9}))?$")

# A stored job's state, as far as a dependency on it cares (live states: absent).
ENDED_BY_STATE = {
    RunState.COMPLETED: Ended.OK,
    RunState.FAILED: Ended.FAILED,
    RunState.REJECTED: Ended.FAILED,
    RunState.CANCELLED: Ended.CANCELLED,
}


def resolve_dependency(store: Store, tenant: str, text: str, kill_on_invalid: bool) -> str:
    """The dependency with every id made a full job id; AdmissionError naming the part."""
    try:
        dependency = parse_dependency(text, kill_on_invalid)
    except DependencyError as exc:
        raise AdmissionError(str(exc)) from None
    refs: dict[str, tuple[str, int | None]] = {}
    for _, written in dependency.clauses:
        match = _REF.match(written)
        if not match:
            raise AdmissionError(f"dependency: {written!r} is not a job id (e.g. j-0000012, 12)")
        number, task = match.groups()
        refs[written] = (job_id_for(int(number)), None if task is None else int(task))
    whole = sorted({job for job, task in refs.values() if task is None})
    tasks = sorted({(job, task) for job, task in refs.values() if task is not None})
    found = store.jobs_for_dependency(tenant, whole, tasks)
    by_id = {job_id for job_id, _, _ in found}
    by_array: dict[str, list[str]] = {}
    by_task: dict[tuple[str, int], str] = {}
    for job_id, array, task in found:
        if array is not None:
            by_array.setdefault(array, []).append(job_id)
            if task is not None:
                by_task[(array, task)] = job_id
    clauses = []
    for kind, written in dependency.clauses:
        job, task = refs[written]
        if task is not None:
            named = [by_task[(job, task)]] if (job, task) in by_task else []
        elif job in by_array:
            named = sorted(by_array[job])  # an array's id: all of its tasks
        else:
            named = [job] if job in by_id else []
        if not named:
            raise AdmissionError(f"dependency: no job {written!r} in programme {tenant!r}")
        clauses += [(kind, parent) for parent in named]
    return str(Dependency(tuple(clauses), dependency.any_of, dependency.singleton, kill_on_invalid))


def parents_ended(store: Store, specs: list[dict]) -> dict[str, Ended]:
    """How the jobs these submissions' dependencies name ended, for those that have."""
    parents = sorted(
        {
            parent
            for spec in specs
            if spec.get("dependency")
            for _, parent in parse_dependency(spec["dependency"]).clauses
        }
    )
    states = store.states_of(parents)
    ended = {}
    for job_id, (state, exit_code) in states.items():
        how = ENDED_BY_STATE.get(state)
        if how is Ended.OK and exit_code not in (None, 0):
            how = Ended.FAILED
        if how is not None:
            ended[job_id] = how
    return ended

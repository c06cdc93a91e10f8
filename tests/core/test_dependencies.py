"""Dependencies (sbatch --dependency) and array throttles (--array=...%N) in the core:
examples for each kind, then properties over random dependency graphs in simulation."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.decisions import Cancelled, Held, Reject, Start
from arkwright.core.dependencies import DependencyError, DepKind, Ended, parse_dependency
from arkwright.core.job import Job
from arkwright.core.policy import PolicySpec
from arkwright.core.scheduler import Scheduler
from arkwright.fleets.loader import load_fleet
from arkwright.sim.simulator import Simulator
from tests.core.test_properties import POLICIES, fleets, traces

# ------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "clauses", "any_of", "singleton"),
    [
        ("afterok:12", [("afterok", "12")], False, False),
        (
            "afterok:1:2,afterany:3",
            [("afterok", "1"), ("afterok", "2"), ("afterany", "3")],
            False,
            False,
        ),
        ("afterok:1?afternotok:2", [("afterok", "1"), ("afternotok", "2")], True, False),
        ("after:j-0000007", [("after", "j-0000007")], False, False),
        ("singleton", [], False, True),
        ("afterany:4,singleton", [("afterany", "4")], False, True),
    ],
)
def test_slurm_dependency_syntax(text, clauses, any_of, singleton):
    dependency = parse_dependency(text)
    assert [(str(k), p) for k, p in dependency.clauses] == clauses
    assert (dependency.any_of, dependency.singleton) == (any_of, singleton)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("afterok:1,afterok:2?afterok:3", "mixes"),
        ("afterok", "cannot read 'afterok'"),
        ("afterok:", "cannot read"),
        ("afterok:1::2", "empty job id"),
        ("before:1", "cannot read 'before:1'"),
        ("aftercorr:5", "'aftercorr' is not supported"),
        ("after:5+10", "delay"),
        ("", "empty"),
    ],
)
def test_bad_dependencies_are_refused_naming_the_part(text, named):
    with pytest.raises(DependencyError, match="dependency") as caught:
        parse_dependency(text)
    assert named in str(caught.value)


# ------------------------------------------------------------------ examples


def scheduler() -> Scheduler:
    return Scheduler(load_fleet("tiny"), PolicySpec.parse("backfill"))


def job(job_id: str, dependency: str | None = None, **fields) -> Job:
    fields = {"gpus": 1, **fields}
    made = Job(job_id, "research", duration_s=100.0, submit_time=0.0, **fields)
    if dependency is not None:
        made.dependency = parse_dependency(dependency)
    return made


def started(decisions) -> list[str]:
    return [d.job.job_id for d in decisions if isinstance(d, Start)]


def held(decisions) -> dict[str, str]:
    return {d.job.job_id: d.reason for d in decisions if isinstance(d, Held)}


def test_afterok_waits_for_success_and_never_runs_after_a_failure():
    s = scheduler()
    s.submit(job("a"), 0.0)
    assert held(s.submit(job("b", "afterok:a"), 0.0)) == {"b": "Dependency"}
    assert started(s.schedule(0.0)) == ["a"]  # b is not in the queue at all
    assert s.pending == 0 and s.held == 1
    s.finish("a", 100.0)
    decisions = s.schedule(100.0)
    assert held(decisions) == {"b": ""} and started(decisions) == ["b"]
    # The same chain where the first job fails: the second waits for good.
    s = scheduler()
    s.submit(job("a"), 0.0)
    s.submit(job("b", "afterok:a"), 0.0)
    s.schedule(0.0)
    s.finish("a", 50.0, succeeded=False)
    assert held(s.schedule(50.0)) == {"b": "DependencyNeverSatisfied"}
    assert s.held == 1 and s.jobs["b"].held == "DependencyNeverSatisfied"
    s.cancel("b", 60.0)  # and can still be cancelled
    assert s.held == 0 and "b" not in s.jobs


def test_kill_on_invalid_dep_cancels_the_job_that_can_never_run():
    s = scheduler()
    s.submit(job("a"), 0.0)
    b = job("b")
    b.dependency = parse_dependency("afterok:a", kill_on_invalid=True)
    s.submit(b, 0.0)
    s.schedule(0.0)
    s.finish("a", 10.0, succeeded=False)
    [cancelled] = [d for d in s.schedule(10.0) if isinstance(d, Cancelled)]
    assert cancelled.job.job_id == "b" and "DependencyNeverSatisfied" in cancelled.reason
    assert "b" not in s.jobs and s.held == 0


@pytest.mark.parametrize(
    ("dependency", "ending", "runs"),
    [
        ("afternotok:a", Ended.FAILED, True),
        ("afternotok:a", Ended.OK, False),
        ("afternotok:a", Ended.CANCELLED, True),
        ("afterany:a", Ended.FAILED, True),
        ("afterany:a", Ended.CANCELLED, True),
        ("afterok:a", Ended.CANCELLED, False),
        ("afterok:a?afternotok:a", Ended.FAILED, True),
        ("afterok:a,afternotok:a", Ended.OK, False),
    ],
)
def test_each_kind_against_each_ending(dependency, ending, runs):
    s = scheduler()
    s.submit(job("a"), 0.0)
    s.submit(job("b", dependency), 0.0)
    s.schedule(0.0)
    if ending is Ended.CANCELLED:
        s.cancel("a", 10.0)
    else:
        s.finish("a", 10.0, succeeded=ending is Ended.OK)
    assert ("b" in started(s.schedule(10.0))) is runs


def test_after_waits_only_for_the_start():
    s = scheduler()
    for pool in s.fleet.pools:  # fill the fleet
        s.submit(job(f"blocker-{pool.name}", gpus=pool.gpus, pools=frozenset({pool.name})), 0.0)
    s.schedule(0.0)
    s.submit(job("a"), 1.0)
    s.submit(job("b", "after:a"), 1.0)
    assert started(s.schedule(1.0)) == []  # a cannot start yet, so b waits
    assert s.jobs["b"].held == "Dependency"
    first = s.fleet.pools[0].name
    s.finish(f"blocker-{first}", 50.0)
    decisions = s.schedule(50.0)
    # a starts; that alone lets b in (it need not wait for a to end).
    assert started(decisions)[0] == "a"
    assert "b" in started(decisions) or s.jobs["b"].held == ""


def test_a_dependency_on_a_job_the_core_forgot_uses_what_the_driver_says():
    s = scheduler()
    assert held(s.submit(job("b", "afterok:gone"), 0.0)) == {"b": "DependencyNeverSatisfied"}
    s.submit(job("c", "afterok:old"), 0.0, ended={"old": Ended.OK})
    assert started(s.schedule(0.0)) == ["c"]
    assert held(s.submit(job("d", "afterok:d"), 0.0)) == {"d": "DependencyNeverSatisfied"}


def test_singleton_runs_one_job_of_a_user_and_name_at_a_time():
    s = scheduler()
    for name in ("x1", "x2", "x3"):
        s.submit(job(name, "singleton", owner_name="ada\0train"), 0.0)
    s.submit(job("other", "singleton", owner_name="bob\0train"), 0.0)
    assert sorted(started(s.schedule(0.0))) == ["other", "x1"]
    s.finish("x1", 10.0)
    assert started(s.schedule(10.0)) == ["x2"]
    s.finish("x2", 20.0)
    assert started(s.schedule(20.0)) == ["x3"]


def test_an_array_throttle_lets_n_tasks_run_and_lets_the_next_in_as_each_ends():
    s = scheduler()
    for task in range(5):
        s.submit(job(f"t{task}", array_id="arr", array_limit=2), 0.0)
    assert s.pending == 2 and s.held == 3
    assert started(s.schedule(0.0)) == ["t0", "t1"]
    s.cancel("t3", 1.0)  # a waiting task cancelled frees nothing
    s.finish("t0", 10.0)
    decisions = s.schedule(10.0)
    assert held(decisions) == {"t2": ""} and started(decisions) == ["t2"]
    s.finish("t1", 20.0)
    assert started(s.schedule(20.0)) == ["t4"]
    assert s.held == 0


# ---------------------------------------------------------------- properties


@st.composite
def dependent_traces(draw):
    jobs = sorted(draw(traces()), key=lambda j: j.submit_time)
    kinds = [DepKind.AFTER, DepKind.AFTER_ANY, DepKind.AFTER_OK, DepKind.AFTER_NOT_OK]
    limits = draw(st.lists(st.integers(1, 3), min_size=3, max_size=3))  # one per array
    out = []
    for index, made in enumerate(jobs):
        made = dataclasses.replace(made, job_id=f"j{index}")
        if index and draw(st.booleans()):
            parents = draw(st.sets(st.integers(0, index - 1), min_size=1, max_size=3))
            kind = draw(st.sampled_from(kinds))
            any_of = draw(st.booleans())
            text = ("?" if any_of else ",").join(f"{kind}:j{p}" for p in sorted(parents))
            made.dependency = parse_dependency(text)
        if draw(st.integers(0, 3)) == 0:
            made.array_id, made.array_limit = f"a{index % 3}", limits[index % 3]
        out.append(made)
    return out


@given(fleet=fleets(), jobs=dependent_traces(), policy=st.sampled_from(POLICIES))
def test_no_job_starts_before_its_dependency_allows_and_throttles_hold(fleet, jobs, policy):
    first_start: dict[str, float] = {}
    ends: dict[str, float] = {}
    running_by_array: dict[str, set[str]] = {}

    def observe(decision, scheduler):
        if isinstance(decision, Reject):  # ended without a start: after/afterany/notok hold
            ends[decision.job.job_id] = first_start[decision.job.job_id] = -1.0
        if isinstance(decision, Start):
            made = decision.job
            first_start.setdefault(made.job_id, decision.at)
            if made.array_id and made.array_limit:
                active = running_by_array.setdefault(made.array_id, set())
                active.add(made.job_id)
                live = {j for j in active if j in scheduler.jobs}
                assert len(live) <= made.array_limit
            if made.dependency:
                ok = [
                    (first_start.get(p) if k is DepKind.AFTER else ends.get(p))
                    for k, p in made.dependency.clauses
                ]
                satisfied = [t is not None and t <= decision.at for t in ok]
                assert any(satisfied) if made.dependency.any_of else all(satisfied)

    class Recording:
        """A Scheduler that notes when each job finishes. It wraps rather than derives:
        the compiled core's classes cannot be subclassed by interpreted code."""

        def __init__(self, *args, **kwargs):
            self._scheduler = Scheduler(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._scheduler, name)

        def finish(self, job_id, now, succeeded=True):
            ends[job_id] = now
            return self._scheduler.finish(job_id, now, succeeded)

    simulator = Simulator(
        fleet,
        PolicySpec.parse(policy),
        tick_s=600,
        audit=True,
        observer=observe,
        scheduler_factory=Recording,
    )
    summary = simulator.run([j.spec_copy() for j in jobs]).summary
    assert summary["eligibility_violations"] == 0
    # Everything accepted ends up run, rejected, or held because a parent was rejected:
    # in simulation every run succeeds, so afterok/after/afterany always come true.
    done = {j for j, t in first_start.items() if t >= 0}
    for made in jobs:
        if made.job_id in first_start or made.dependency is None:  # ran, or was rejected
            continue
        kinds = {k for k, _ in made.dependency.clauses}
        assert DepKind.AFTER_NOT_OK in kinds or any(
            p not in done for _, p in made.dependency.clauses
        ), made.job_id

"""Fault injection at the control plane's boundaries: the database, the backends, itself.

Each test drives a ControlPlane step by step (no loop thread unless it says so) over
fake backends that do what the test tells them, and checks afterwards that the core and
the database tell the same story.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from arkwright.backends.base import Ending, Outcome
from arkwright.core.job import JobState
from arkwright.core.policy import PolicySpec
from arkwright.fleets import load_fleet
from arkwright.service.control import ControlPlane
from arkwright.service.db import (
    JobEventRow,
    JobRow,
    PoolStateRow,
    RunStopRow,
    TenantRow,
    UsageRow,
    make_engine,
    migrate,
    session_factory,
)
from arkwright.service.dispatch import RetryPolicy
from arkwright.service.errors import IdempotencyConflict, StoreUnavailable
from arkwright.service.schema import JobSubmit
from arkwright.service.server import ServiceConfig, bootstrap_admin
from arkwright.service.shares import entitled_shares
from arkwright.service.states import ACTIVE, RunState

WAIT_S = 30.0  # the bound on every wait below; none is expected to come near it


class FakeBackend:
    """Runs nothing; records what it was asked. `block_cancel` makes cancels wait on an
    Event (a 30 s scancel); `start_error` makes starts raise; `lose` makes every run
    vanish at the next poll."""

    name = "fake"
    time_scale = 1.0

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.cancelled: list[str] = []
        self.running: dict[str, dict] = {}
        self.start_error: Exception | None = None
        self.lose = False
        self.block_cancel = False
        self.cancel_entered = threading.Event()
        self.cancel_release = threading.Event()
        self.recover_error: Exception | None = None

    def start(self, request) -> dict:
        if self.start_error is not None:
            raise self.start_error
        self.started.append((request.job.job_id, request.attempt))
        handle = {"run": f"{request.job.job_id}/{request.attempt}"}
        self.running[request.job.job_id] = handle
        return handle

    def poll(self, now: float) -> list[Outcome]:
        if not self.lose:
            return []
        lost = [
            Outcome(job_id, Ending.LOST, now, None, f"runner killed ({handle['run']})")
            for job_id, handle in self.running.items()
        ]
        self.running.clear()
        return lost

    def cancel(self, job_id: str, handle: dict) -> None:
        if self.block_cancel:
            self.cancel_entered.set()
            assert self.cancel_release.wait(WAIT_S), "the test never released the cancel"
        self.cancelled.append(job_id)
        self.running.pop(job_id, None)

    def recover(self, job_id, handle, attempt, now):
        if self.recover_error is not None:
            raise self.recover_error
        return handle if job_id in self.running else None

    def log_path(self, job_id, handle, stream):
        return None


@pytest.fixture
def rig(db_url: str, tmp_path: Path):
    bootstrap_admin(db_url)  # user 1 submits
    fleet = load_fleet("tiny")
    engine = make_engine(db_url)
    migrate(engine)
    fake = FakeBackend()
    control = ControlPlane(
        fleet,
        PolicySpec.parse("fairshare+backfill"),
        session_factory(engine),
        {site.name: fake for site in fleet.sites},
        retry=RetryPolicy(backoff_s=0.01, backoff_max_s=0.05),
        site_rest_s=0.01,
    )
    control.ensure_tenants()
    control.recover()
    yield control, fake
    fake.cancel_release.set()
    control.stop()


def submit(control: ControlPlane, key: str | None = None, **spec) -> str:
    body = {"gpus": 1, "time": "1h", "command": ["true"], **spec}
    row, _ = control.submit(JobSubmit(**body), "research", 1, "test", key)
    return row.id


def rows(control: ControlPlane) -> dict[str, JobRow]:
    with control.sessions() as session:
        return {r.id: r for r in session.scalars(select(JobRow))}


def count(control: ControlPlane, table) -> int:
    with control.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def assert_core_matches_database(control: ControlPlane) -> None:
    """Every job the core holds is active in the database in the same place, and every
    active job in the database is in the core (or backing off beside it)."""
    stored = rows(control)
    core = control.scheduler.jobs
    for job_id, job in core.items():
        row = stored[job_id]
        if job.state is JobState.RUNNING:
            assert row.state in (RunState.STARTING, RunState.RUNNING), (job_id, row.state)
            assert row.pool == control.fleet.pools[job.pool_index].name
        else:
            assert row.state == RunState.PENDING, (job_id, row.state)
    for job_id, row in stored.items():
        if row.state in ACTIVE:
            assert job_id in core or job_id in control._held, (job_id, row.state)
    control.scheduler.check_invariants()


def step_until(control: ControlPlane, done, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, what
        control.step()
        time.sleep(0.01)


def test_a_commit_that_fails_mid_pass_leaves_core_and_database_agreeing(rig, monkeypatch):
    control, fake = rig
    jobs = [submit(control) for _ in range(3)]
    real_write = control.store.write

    def failing_write(writes):
        if any(u.get("state") == RunState.STARTING for u in writes.updates):
            raise StoreUnavailable("database write failed: injected")
        return real_write(writes)

    monkeypatch.setattr(control.store, "write", failing_write)
    with pytest.raises(StoreUnavailable):
        control.step()
    assert fake.started == [], "nothing may start on a backend before its commit"
    assert control.scheduler.running == 0 and control.scheduler.pending == 3
    assert {rows(control)[j].state for j in jobs} == {RunState.PENDING}
    assert_core_matches_database(control)

    monkeypatch.setattr(control.store, "write", real_write)
    control._last_full = 0.0
    step_until(control, lambda: len(fake.started) == 3, "the jobs never started")
    assert {rows(control)[j].state for j in jobs} == {RunState.RUNNING}
    assert_core_matches_database(control)


def test_preemption_victims_are_cancelled_only_once_committed(rig, monkeypatch):
    control, fake = rig
    victim = submit(control, gpus=8, gpu_type=["B200"], priority="low")
    step_until(control, lambda: victim in fake.running, "the victim never started")
    urgent = submit(control, gpus=8, gpu_type=["B200"], priority="urgent", preemptible=False)
    real_write = control.store.write

    def failing_write(writes):
        if writes.stops:
            raise StoreUnavailable("database write failed: injected")
        return real_write(writes)

    monkeypatch.setattr(control.store, "write", failing_write)
    with pytest.raises(StoreUnavailable):
        control.step()
    assert fake.cancelled == [] and victim in fake.running
    assert rows(control)[victim].state == RunState.RUNNING
    assert_core_matches_database(control)

    monkeypatch.setattr(control.store, "write", real_write)
    control._last_full = 0.0
    step_until(control, lambda: urgent in fake.running, "the urgent job never started")
    deadline = time.monotonic() + WAIT_S
    while victim not in fake.cancelled or count(control, RunStopRow):
        assert time.monotonic() < deadline, "the victim's run was never cancelled"
        time.sleep(0.01)
    assert rows(control)[victim].state == RunState.PENDING
    assert_core_matches_database(control)


def test_a_blocking_cancel_holds_up_nobody(rig):
    control, fake = rig
    job_id = submit(control)
    step_until(control, lambda: job_id in fake.running, "the job never started")
    fake.block_cancel = True
    assert control.cancel(job_id, "alice") == RunState.CANCELLED  # returns; the stop waits
    assert fake.cancel_entered.wait(WAIT_S), "the backend was never asked to cancel"
    read = threading.Event()

    def healthz() -> None:  # what /healthz reads, under the same lock
        with control.lock:
            _ = (control.scheduler.pending, control.scheduler.running, control.stats.passes)
        read.set()

    reader = threading.Thread(target=healthz)
    reader.start()
    assert read.wait(WAIT_S), "a read waited on the backend's cancel"
    assert not fake.cancel_release.is_set(), "the cancel must still be blocked here"
    other = submit(control)  # submissions and passes go on meanwhile
    step_until(control, lambda: other in fake.running, "scheduling stalled behind the cancel")
    marked = threading.Event()
    threading.Thread(
        target=lambda: (control.set_site_down("uk-a", True, "x", "t"), marked.set())
    ).start()
    assert marked.wait(WAIT_S), "marking a site down waited on the backend"
    fake.cancel_release.set()
    deadline = time.monotonic() + WAIT_S
    while count(control, RunStopRow):
        assert time.monotonic() < deadline, "the stop never completed"
        time.sleep(0.01)
    assert job_id in fake.cancelled
    assert rows(control)[job_id].state == RunState.CANCELLED
    reader.join(WAIT_S)


def test_an_idempotent_retry_during_a_failed_commit_gets_the_failure(rig, monkeypatch):
    control, _ = rig
    control.intake.start()  # the writer thread, as when serving
    entered, release = threading.Event(), threading.Event()
    real_insert = control.store.insert_submissions

    def failing_insert(batch, actors):
        entered.set()
        assert release.wait(WAIT_S)
        raise StoreUnavailable("database write failed: injected")

    monkeypatch.setattr(control.store, "insert_submissions", failing_insert)
    errors: list[Exception] = []

    def attempt() -> None:
        try:
            submit(control, key="k-1")
        except Exception as exc:
            errors.append(exc)

    first = threading.Thread(target=attempt)
    first.start()
    assert entered.wait(WAIT_S)
    retry = threading.Thread(target=attempt)  # the client retries while the commit hangs
    retry.start()
    time.sleep(0.05)
    release.set()
    first.join(WAIT_S)
    retry.join(WAIT_S)
    assert len(errors) == 2 and all(isinstance(e, StoreUnavailable) for e in errors), errors
    assert count(control, JobRow) == 0, "no job may be reported that was never stored"
    monkeypatch.setattr(control.store, "insert_submissions", real_insert)
    row, created = control.submit(
        JobSubmit(gpus=1, time="1h", command=["true"]), "research", 1, "test", "k-1"
    )
    assert created and count(control, JobRow) == 1
    again, created = control.submit(
        JobSubmit(gpus=1, time="1h", command=["true"]), "research", 1, "test", "k-1"
    )
    assert not created and again.id == row.id


def test_the_writer_survives_an_unexpected_exception(rig, monkeypatch):
    control, _ = rig
    control.intake.start()
    real_insert = control.store.insert_submissions
    calls = []

    def buggy_insert(batch, actors):
        calls.append(len(batch))
        if len(calls) == 1:
            raise ZeroDivisionError("a bug")
        return real_insert(batch, actors)

    monkeypatch.setattr(control.store, "insert_submissions", buggy_insert)
    with pytest.raises(StoreUnavailable):
        submit(control)
    assert control.intake.serving, "the writer thread died"
    job_id = submit(control)
    assert rows(control)[job_id].state == RunState.PENDING


def test_a_start_that_raises_gives_its_gpus_back(rig):
    control, fake = rig
    fake.start_error = ValueError("env name with '=' in it")
    job_id = submit(control, gpus=8)
    step_until(control, lambda: rows(control)[job_id].state == RunState.FAILED, "never failed")
    assert "env name with '=' in it" in rows(control)[job_id].reason
    assert sum(control.scheduler.busy_gpus(p.index) for p in control.fleet.pools) == 0
    assert count(control, UsageRow) == 0, "no usage for a run that never started"
    assert_core_matches_database(control)
    fake.start_error = None
    later = submit(control, gpus=8)
    step_until(control, lambda: later in fake.running, "the freed GPUs were not reused")


def test_a_run_lost_again_and_again_fails_after_n_with_every_reason(rig):
    control, fake = rig
    fake.lose = True
    job_id = submit(control)
    step_until(control, lambda: rows(control)[job_id].state == RunState.FAILED, "never failed")
    row = rows(control)[job_id]
    limit = control.retry.max_lost_runs
    assert [a for j, a in fake.started if j == job_id] == list(range(1, limit + 1))
    assert row.reason.startswith(f"lost {limit} times: 1) runner killed ({job_id}/1)")
    for attempt in range(1, limit + 1):
        assert f"runner killed ({job_id}/{attempt})" in row.reason
    with control.sessions() as session:
        kinds = list(session.scalars(select(JobEventRow.kind).where(JobEventRow.job_id == job_id)))
    assert kinds.count("requeued") == limit - 1
    assert_core_matches_database(control)


def test_an_admin_cordon_survives_its_site_going_down_and_up(rig):
    control, _ = rig
    pool = control.fleet.pools_at("uk-a")[0]
    control.set_pool_cordoned(pool.name, True, "maintenance", "admin")
    control.set_site_down("uk-a", True, "power cut", "admin")
    control.set_site_down("uk-a", False, "power back", "admin")
    assert control.scheduler.cordoned_mask >> pool.index & 1, "site up lifted an admin cordon"
    other = control.fleet.pools_at("uk-a")[1]
    assert not control.scheduler.cordoned_mask >> other.index & 1
    with control.sessions() as session:
        assert session.get(PoolStateRow, pool.name).cordoned
    control.set_pool_cordoned(pool.name, False, "", "admin")
    assert not control.scheduler.cordoned_mask >> pool.index & 1


def test_a_programmes_new_weight_takes_effect_at_once(rig):
    control, _ = rig
    with control.sessions() as session, session.begin():
        session.add(TenantRow(name="newcomers", weight=5.0, description=""))
    control.refresh_tenants()
    scheduler = control.scheduler
    assert scheduler.weights["newcomers"] == 5.0
    shares = entitled_shares(scheduler.weights)
    for name, nominal in scheduler.nominal_gpus.items():
        assert nominal == pytest.approx(shares[name] * control.fleet.total_gpus)
    assert control.entitled_shares() == shares


def test_recovery_keeps_a_live_run_when_its_backend_has_no_answer(rig, db_url):
    control, fake = rig
    job_id = submit(control)
    step_until(control, lambda: job_id in fake.running, "the job never started")
    fake.recover_error = RuntimeError("a bug in the backend's recover")
    counts = control.recover()  # as a restart would
    assert counts["unanswered"] == 1 and fake.cancelled == []
    assert rows(control)[job_id].state == RunState.RUNNING
    assert control.scheduler.jobs[job_id].state is JobState.RUNNING
    fake.recover_error = None
    control.step()  # asks again; now the run is found
    assert not control._unrecovered and rows(control)[job_id].state == RunState.RUNNING
    assert fake.cancelled == []


def test_relative_data_directories_are_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ServiceConfig(load_fleet("local"), Path("arkwright-data"), "sqlite:///x/a.db")
    assert config.data_dir == tmp_path / "arkwright-data"
    assert config.url == f"sqlite:///{tmp_path / 'x' / 'a.db'}"


def test_the_same_key_stored_first_by_another_replica_answers_with_its_job(rig, monkeypatch):
    control, _ = rig
    first = submit(control, key="k-2")
    # This replica looked before the other's commit (the race window), then inserts.
    monkeypatch.setattr(control.store, "by_idempotency_key", _none_once(control.store))
    row, created = control.submit(
        JobSubmit(gpus=1, time="1h", command=["true"]), "research", 1, "test", "k-2"
    )
    assert row.id == first and not created and count(control, JobRow) == 1
    different = JobSubmit(gpus=2, time="1h", command=["true"])
    monkeypatch.setattr(control.store, "by_idempotency_key", _none_once(control.store))
    with pytest.raises(IdempotencyConflict):
        control.submit(different, "research", 1, "test", "k-2")


def _none_once(store):
    real = type(store).by_idempotency_key.__get__(store)
    calls = []

    def lookup(user_id, key):
        calls.append(key)
        return None if len(calls) == 1 else real(user_id, key)

    return lookup


def test_a_failed_commit_of_a_starts_answer_keeps_its_handle(rig, monkeypatch):
    control, fake = rig
    job_id = submit(control)
    real_write = control.store.write

    def failing_write(writes):
        if any(u.get("state") == RunState.RUNNING for u in writes.updates):
            raise StoreUnavailable("database write failed: injected")
        return real_write(writes)

    monkeypatch.setattr(control.store, "write", failing_write)
    with pytest.raises(StoreUnavailable):
        control.step()
    assert job_id in fake.running and rows(control)[job_id].state == RunState.STARTING
    assert_core_matches_database(control)  # the rebuilt core holds its GPUs
    monkeypatch.setattr(control.store, "write", real_write)
    control.step()
    row = rows(control)[job_id]
    assert row.state == RunState.RUNNING and row.handle == fake.running[job_id]
    assert fake.started == [(job_id, 1)], "it must not start a second time"
    assert_core_matches_database(control)

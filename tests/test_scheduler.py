"""SPEC §4 scheduler: real `mutualaid scheduler` processes against one database. One is
active, the others stand by and take over when it dies; a missed run is caught up once."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import select

from claims.db import make_engine, session_scope
from claims.models import Batch, Claim, JobRun, SchedulerLease
from workflows.jobs import load_schedules
from workflows.leader import PostgresLeader
from workflows.scheduler import JOBSTORE_TABLE, _Scheduler, run_scheduled_job

MUTUALAID = Path(sys.executable).with_name("mutualaid")
HOST = socket.gethostname()
LEASE_SECONDS = 3.0
# A process needs a few seconds to import and build its app; more on a busy machine.
STARTUP = 45.0
EVERY_2_SECONDS = "[weekly_batch]\nsecond = '*/2'\n"
MONDAY_9 = "[weekly_batch]\nday_of_week = 'mon'\nhour = 9\nminute = 0\n"


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll until `condition()` is truthy; its value, or a failure after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")


class World:
    """The test's view of the database the scheduler processes share."""

    def __init__(self, app: Any, county: Any, database_url: str, tmp_path: Path) -> None:
        self.app, self.county, self.url, self.tmp_path = app, county, database_url, tmp_path
        self.engine = app.extensions["mutualaid"].engine
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def env(self, schedules: str, **extra: str) -> dict[str, str]:
        """The environment of a process of the service, with these schedules."""
        path = self.tmp_path / "schedules.toml"
        path.write_text(schedules)
        return os.environ | {
            "MUTUALAID_DATABASE_URL": self.url, "MUTUALAID_INSTANCE_PATH": str(self.tmp_path),
            "MUTUALAID_SECRET_KEY": "test-" + "k" * 32, "MUTUALAID_SCHEDULES_FILE": str(path),
            "MUTUALAID_SCHEDULER_HEARTBEAT_SECONDS": "0.5",
            "MUTUALAID_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
        } | extra

    def start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`mutualaid ARGS`; its log goes to a file beside the test's files."""
        path = self.tmp_path / f"{args[0]}-{len(self.processes)}.log"
        with open(path, "wb") as log:
            process = subprocess.Popen([str(MUTUALAID), *args], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.logs[process.pid] = path
        return process

    def logged(self, process: subprocess.Popen[bytes], text: str) -> bool:
        return text in self.logs[process.pid].read_text(errors="replace")

    def scheduler(self, schedules: str) -> subprocess.Popen[bytes]:
        """A `mutualaid scheduler` process."""
        return self.start(["scheduler"], self.env(schedules))

    def two_schedulers(self, schedules: str) -> tuple[subprocess.Popen[bytes],
                                                      subprocess.Popen[bytes]]:
        """Two scheduler processes: (the active one, the one standing by), once both are."""
        by_runner = {runner(p): p for p in (self.scheduler(schedules), self.scheduler(schedules))}
        holder = wait_until(lambda: self.holder() in by_runner and self.holder(), STARTUP,
                            "a scheduler to become active")
        active = by_runner.pop(holder)
        [standby] = by_runner.values()
        wait_until(lambda: self.logged(standby, "scheduler standing by"), STARTUP, "a standby")
        return active, standby

    def ready_claim(self) -> str:
        claim_no = self.county.claim()["claim_no"]
        assert self.county.fire(claim_no, "verify").status_code == 200
        return claim_no

    def holder(self) -> str | None:
        with session_scope(self.engine, write=False) as session:
            lease = session.get(SchedulerLease, "scheduler")
            return lease.holder if lease else None

    def runs(self) -> list[JobRun]:
        with session_scope(self.engine, write=False) as session:
            return list(session.exec(select(JobRun).where(JobRun.trigger == "schedule")
                                     .order_by(JobRun.id)).all())  # type: ignore[arg-type]

    def state_of(self, claim_no: str) -> str:
        with session_scope(self.engine, write=False) as session:
            return session.exec(select(Claim.state).where(Claim.claim_no == claim_no)).one()

    def batches(self) -> list[str]:
        with session_scope(self.engine, write=False) as session:
            return list(session.exec(select(Batch.batch_no)).all())

    def drop_jobstore(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {JOBSTORE_TABLE}"))


def runner(process: subprocess.Popen[bytes]) -> str:
    return f"{HOST}:{process.pid}"


@pytest.fixture
def world(app, county, database_url, tmp_path) -> Iterator[World]:
    world = World(app, county, database_url, tmp_path)
    world.drop_jobstore()  # the session's database outlives each test; the job store too
    yield world
    for process in world.processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    world.drop_jobstore()


def test_two_schedulers_seal_one_batch_and_the_standby_takes_over_when_the_active_dies(
        world):
    first = world.ready_claim()
    active, standby = world.two_schedulers(EVERY_2_SECONDS)
    wait_until(lambda: world.state_of(first) == "batched", what="the first claim sealed")
    second = world.ready_claim()
    wait_until(lambda: world.state_of(second) == "batched", what="the second claim sealed")
    wait_until(lambda: len(world.runs()) >= 3, what="three scheduled runs")
    assert {run.runner for run in world.runs()} == {runner(active)}, "only the active one runs"
    assert world.holder() == runner(active) and len(world.batches()) == 1

    active.send_signal(signal.SIGKILL)
    active.wait(10)
    killed_at = time.monotonic()
    wait_until(lambda: world.holder() == runner(standby), LEASE_SECONDS + 10,
               "the standby to take over")
    assert time.monotonic() - killed_at < LEASE_SECONDS + 3
    third = world.ready_claim()
    wait_until(lambda: world.state_of(third) == "batched", what="the third claim sealed")
    wait_until(lambda: any(run.runner == runner(standby) and run.outcome == "ok"
                           for run in world.runs()), what="a finished run by the new active")
    runs = world.runs()
    failed = [run.summary for run in runs if run.outcome == "failed"]
    assert not failed
    scheduled = [run.scheduled_for for run in runs]
    assert len(scheduled) == len(set(scheduled)), "no fire time runs twice"
    assert len(world.batches()) == 1, "one batch a week, not two"

    standby.send_signal(signal.SIGTERM)
    assert standby.wait(15) == 0, "stops cleanly on SIGTERM"
    assert world.holder() is None, "a clean stop hands the lock back"


def last_monday_9(now: datetime) -> datetime:
    """The Monday 09:00 (Asia/Shanghai) fire time at or before `now`."""
    from config.settings import Settings

    settings = Settings(instance_path=Path("."), database_url="sqlite://", secret_key="t",
                        schedules_file=None)
    due = load_schedules(settings)["weekly_batch"].previous_fire_time(now)
    assert due is not None and due.weekday() == 0 and (due.hour, due.minute) == (9, 0)
    return due


def record_missed_monday(world: World, due: datetime, how: str) -> None:
    """What the database holds after a scheduler was down over Monday 09:00."""
    if how in ("job_run_history", "both"):  # the last scheduled run was the Monday before
        with session_scope(world.engine) as session:
            session.add(JobRun(job="weekly_batch", trigger="schedule", outcome="ok",
                               scheduled_for=due - timedelta(days=7), runner="gone:1",
                               started_at=due - timedelta(days=7),
                               finished_at=due - timedelta(days=7)))
    if how in ("job_store", "both"):  # the job store says it was next due on that Monday
        settings = world.app.extensions["mutualaid"].settings
        trigger = load_schedules(settings)["weekly_batch"].trigger
        store = SQLAlchemyJobStore(engine=make_engine(world.url), tablename=JOBSTORE_TABLE)
        scheduler = BackgroundScheduler(timezone=settings.tz, jobstores={"default": store})
        scheduler.start(paused=True)
        scheduler.add_job(run_scheduled_job, trigger, args=["weekly_batch"], id="weekly_batch",
                          name="weekly_batch", next_run_time=due, coalesce=True,
                          max_instances=1, misfire_grace_time=7 * 24 * 3600)
        scheduler.remove_jobstore("default")  # else shutdown() consumes the due run
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize("how", ["job_run_history", "job_store", "both"])
def test_a_missed_monday_is_caught_up_once_when_the_scheduler_starts(world, how):
    claim_no = world.ready_claim()
    due = last_monday_9(datetime.now(UTC))
    record_missed_monday(world, due, how)
    before = len(world.runs())
    process = world.scheduler(MONDAY_9)
    wait_until(lambda: world.state_of(claim_no) == "batched", STARTUP, "the missed batch to run")
    wait_until(lambda: all(run.outcome == "ok" for run in world.runs()), what="the run to end")
    time.sleep(1.5)  # three heartbeats: room for a second run, were there one
    caught_up = world.runs()[before:]
    assert len(caught_up) == 1, "coalesced: one run, not one per missed fire time"
    assert caught_up[0].scheduled_for == due and caught_up[0].runner == runner(process)
    assert caught_up[0].summary["sealed"] == 1
    with world.engine.connect() as connection:
        next_run = connection.execute(sa.text(
            f"SELECT next_run_time FROM {JOBSTORE_TABLE} WHERE id = 'weekly_batch'")).scalar()
    assert next_run == pytest.approx((due + timedelta(days=7)).timestamp(), abs=1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0


def test_a_new_install_runs_nothing_at_start_and_readyz_follows_the_heartbeat(world, client):
    claim_no = world.ready_claim()
    assert client.get("/readyz").status_code == 503
    process = world.scheduler(MONDAY_9)
    wait_until(lambda: client.get("/readyz").status_code == 200, STARTUP, "/readyz to answer 200")
    assert world.holder() == runner(process)
    time.sleep(1.0)
    assert world.runs() == [] and world.state_of(claim_no) == "ready"
    with world.engine.connect() as connection:
        next_run = connection.execute(sa.text(
            f"SELECT next_run_time FROM {JOBSTORE_TABLE} WHERE id = 'weekly_batch'")).scalar()
    due = last_monday_9(datetime.now(UTC))
    assert next_run == pytest.approx((due + timedelta(days=7)).timestamp(), abs=1)
    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json["checks"]["scheduler"] == "missing"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_web_workers_embedding_the_scheduler_elect_one_of_them(world):
    if world.engine.dialect.name != "sqlite":
        pytest.skip("the lock itself is exercised on every database above")
    port = free_port()
    server = world.start(["serve", "--port", str(port), "--workers", "2"],
                         world.env(MONDAY_9, MUTUALAID_EMBED_SCHEDULER="1"))

    def readyz() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    wait_until(lambda: readyz() == 200, STARTUP, "the web workers' scheduler to beat")
    holder = world.holder()
    assert holder is not None and holder != runner(server), "a worker leads, not the master"
    server.send_signal(signal.SIGTERM)
    # gunicorn gives its workers graceful_timeout (30 s) to finish a running job and let go
    # of the lock; a loaded machine may need much of it.
    assert server.wait(45) == 0
    assert world.holder() is None


def postgres_only(world: World) -> None:
    if world.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's lease is its row alone: a frozen holder's row goes stale by itself")


def stamp_lease(world: World, *, holder: str, age: float) -> None:
    """The lease row as a holder that last beat `age` seconds ago left it."""
    with world.engine.begin() as connection:
        connection.execute(sa.update(SchedulerLease).values(
            holder=holder, heartbeat_at=datetime.now(UTC) - timedelta(seconds=age)))


def test_a_standby_ends_the_connection_of_a_leader_frozen_past_the_lease(world):
    postgres_only(world)
    frozen = PostgresLeader(world.url, "frozen:1", stale_after=2.0)
    standby = PostgresLeader(world.url, "standby:2", stale_after=2.0)
    try:
        assert frozen.acquire() and not standby.acquire(), "a fresh leader keeps the lock"
        stamp_lease(world, holder="frozen:1", age=1.0)
        assert not standby.acquire(), "a beat or two late is not frozen"
        # The lock's holder is not the stale holder the row names (the race of two standbys:
        # one took the lock and has not stamped the row yet): its connection is left alone.
        stamp_lease(world, holder="gone:3", age=60.0)
        assert not standby.acquire() and frozen.heartbeat()
        stamp_lease(world, holder="frozen:1", age=3.0)  # it stopped beating, connection open
        assert standby.acquire(), "the standby ends the frozen holder's connection and leads"
        assert world.holder() == "standby:2"
        assert not frozen.heartbeat(), "the old leader, woken, finds it no longer leads"
        assert frozen.connection is None and not frozen.acquire(), "and it stands by"
        assert standby.heartbeat() and world.holder() == "standby:2"
    finally:
        for leader in (standby, frozen):
            leader.release()
            leader.close()


def test_a_frozen_active_scheduler_is_replaced_and_stands_down_when_it_wakes(world):
    postgres_only(world)
    frozen, standby = world.two_schedulers(EVERY_2_SECONDS)
    wait_until(lambda: any(run.outcome == "ok" for run in world.runs()), what="a run")
    frozen.send_signal(signal.SIGSTOP)  # its kernel keeps its connection, and lock, open
    frozen_at = datetime.now(UTC)
    try:
        wait_until(lambda: world.holder() == runner(standby), LEASE_SECONDS + 10,
                   "the standby to take over from the frozen one")
        assert datetime.now(UTC) - frozen_at < timedelta(seconds=LEASE_SECONDS + 5)
        wait_until(lambda: any(run.runner == runner(standby) and run.outcome == "ok"
                               for run in world.runs()), what="a run by the new active one")
    finally:
        frozen.send_signal(signal.SIGCONT)
    wait_until(lambda: world.logged(frozen, "scheduler lost the lock"), what="it to stand down")
    wait_until(lambda: world.logged(frozen, "scheduler standing by"), what="it to stand by")
    time.sleep(2.5)  # a fire time: room for the woken one to run it too, were it to
    runs = world.runs()
    assert not [run for run in runs if run.runner == runner(frozen)
                and run.started_at > frozen_at], "the woken one runs nothing"
    scheduled = [run.scheduled_for for run in runs]
    assert len(scheduled) == len(set(scheduled)), "no fire time runs twice"
    assert world.holder() == runner(standby) and frozen.poll() is None


def test_a_scheduler_that_no_longer_leads_leaves_its_due_jobs_alone():
    ran: list[str] = []
    leading = [False]
    scheduler = _Scheduler(still_leading=lambda: leading[0], recheck_seconds=0.1, timezone=UTC)
    scheduler.add_job(ran.append, "date", run_date=datetime.now(UTC), args=["due"], id="due")
    scheduler.start()
    try:
        time.sleep(0.5)
        assert ran == [] and scheduler.get_job("due") is not None, "not run, not consumed"
        leading[0] = True
        wait_until(lambda: ran == ["due"], 5, "the job to run once it leads again")
    finally:
        scheduler.shutdown(wait=False)


PASSWORD = "s3cret-Pw"


def unreachable_urls() -> Iterator[Any]:
    port = free_port()  # nothing listens there
    yield pytest.param(f"postgresql+psycopg://mutualaid:{PASSWORD}@127.0.0.1:{port}/mutualaid",
                       "connection refused", id="refused")
    given = os.environ.get("MUTUALAID_TEST_POSTGRES_URL")
    missing = sa.engine.make_url(given or "postgresql+psycopg://x@127.0.0.1/x").set(
        database="mutualaid_no_such_db", password=PASSWORD)
    yield pytest.param(missing.render_as_string(hide_password=False),
                       'database "mutualaid_no_such_db" does not exist', id="no_database",
                       marks=pytest.mark.skipif(not given, reason="needs PostgreSQL"))


@pytest.mark.parametrize(("url", "reason"), list(unreachable_urls()))
def test_an_unavailable_database_is_logged_with_its_reason_and_no_password(caplog, url, reason):
    leader = PostgresLeader(url, "host:1", stale_after=3.0)
    with caplog.at_level(logging.INFO, logger="mutualaid.scheduler"):
        assert not leader.acquire() and not leader.acquire()
    lines = [r.getMessage() for r in caplog.records if "lock unavailable" in r.getMessage()]
    assert "error=OperationalError" in lines[0] and reason in lines[0].lower(), "says why"
    assert len(lines) == 1, "the same failure again is not logged at every heartbeat"
    assert PASSWORD not in caplog.text and url not in caplog.text and "\n" not in lines[0]
    leader.close()

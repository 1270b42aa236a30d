"""Issue 7 faults, each showing nothing lost and nothing done twice:
- the database away: a clear 503 with Retry-After, and the same app answers again once it is
  back (no restart);
- the scheduler killed mid-job: its run is marked abandoned at the next start and the job's
  work is done once;
- the SMS gateway down: messages wait and go out once when it returns;
- a mail server that accepts and never answers: every other write goes on meanwhile.

Covered elsewhere: a weekly batch SIGKILLed while sealing (test_batch_crash.py), a standby
scheduler taking over from a dead one (test_scheduler.py), SMTP down for notices
(test_payout.py::test_with_smtp_down_messages_wait_and_go_out_once_when_it_is_back) and for
the manifest (test_transmission.py::test_an_smtp_outage_is_retried_...), the process dying
right after a change with its notice in the outbox (test_payout.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from payout_world import approved_claims, remit
from servers import free_port, http_receiver
from sqlmodel import select

import claims.db
import workflows.scheduler
from claims.db import session_scope
from claims.models import Batch, ClaimEvent, JobRun, Notification
from workflows.jobs import abandon_dead_runs, runner_name
from workflows.notify import dispatch_due
from workflows.scheduler import run_scheduled_job


@contextmanager
def database_away(app, database_url: str) -> Iterator[None]:
    """The database cannot be reached until the block ends: SQLite's folder moved away,
    PostgreSQL's connections cut and refused."""
    engine = app.extensions["mutualaid"].engine
    if database_url.startswith("sqlite"):
        folder = Path(sa.engine.make_url(database_url).database or "").parent
        away = folder.with_name(folder.name + "-away")
        folder.rename(away)
        engine.dispose()  # open files keep working after a move: drop them, as a restart would
        try:
            yield
        finally:
            away.rename(folder)
        return
    url = sa.engine.make_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS false'))
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": url.database})
    try:
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS true'))
        admin.dispose()


UNIT = {"code": "U777", "name": "断线单位", "area": "城区", "union_contact": "王芳",
        "union_phone": "0571-0000000", "union_email": "u777@example.org", "employee_count": 9}


def test_the_database_away_answers_503_and_the_same_app_recovers(app, county, client,
                                                                 database_url):
    clerk = county.clerk
    with database_away(app, database_url):
        for answer in (clerk.get("/api/v1/claims"), clerk.post("/api/v1/units", UNIT),
                       client.post("/api/v1/status", json={"claim_no": "LP2026-000001",
                                                           "id_last6": "123456"})):
            assert answer.status_code == 503, answer.get_data(as_text=True)
            assert answer.json["code"] == "unavailable"
            assert int(answer.headers["Retry-After"]) > 0
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"] == "unavailable"
        assert client.get("/healthz").status_code == 200  # the process itself is fine
    assert clerk.get("/api/v1/claims").status_code == 200
    # The write refused during the outage did nothing: sent again it applies, once.
    assert clerk.post("/api/v1/units", UNIT).status_code == 201
    assert clerk.post("/api/v1/units", UNIT).status_code == 409
    assert client.post("/api/v1/auth/token", json={
        "username": "clerk", "password": PASSWORD}).status_code == 200


def dead_runner() -> str:
    """host:pid of a process that has ended (as a scheduler SIGKILLed mid-job)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.kill()
    process.wait(10)
    return f"{socket.gethostname()}:{process.pid}"


def test_a_run_killed_mid_job_is_abandoned_at_the_next_start_and_its_work_done_once(
        app, county, monkeypatch):
    claims = county.ready_claims(2)
    runtime = app.extensions["mutualaid"]
    schedule = app.extensions["mutualaid.schedules"]["weekly_batch"]
    due = schedule.previous_fire_time(datetime.now(UTC))
    with session_scope(runtime.engine) as session:
        session.add(JobRun(job="weekly_batch", trigger="schedule", scheduled_for=due,
                           runner=dead_runner()))
        # A manual run of a live process (this one) and a fresh one elsewhere are left alone.
        session.add(JobRun(job="flag_overdue", trigger="manual", runner=runner_name()))
        session.add(JobRun(job="reconcile", trigger="manual", runner="other-host:1"))
        session.add(JobRun(job="reconcile", trigger="manual", runner="gone-host:1",
                           started_at=datetime.now(UTC) - timedelta(hours=25)))
    monkeypatch.setattr(workflows.scheduler, "_process_app", app)
    run_scheduled_job("weekly_batch")  # the dead run still stands for its fire time
    assert batches(runtime) == []

    with session_scope(runtime.engine) as session:  # what a scheduler does on becoming active
        abandoned = [(run.job, run.runner) for run in abandon_dead_runs(session)]
    assert [job for job, _ in abandoned] == ["weekly_batch", "reconcile"]
    assert abandoned[1][1] == "gone-host:1"
    run_scheduled_job("weekly_batch")
    run_scheduled_job("weekly_batch")  # and once more: already ran

    assert len(batches(runtime)) == 1
    with session_scope(runtime.engine, write=False) as session:
        runs = session.exec(select(JobRun.outcome).where(JobRun.job == "weekly_batch")
                            .order_by(JobRun.id)).all()  # type: ignore[arg-type]
        seals = session.exec(select(ClaimEvent).where(ClaimEvent.event == "seal")).all()
        still = session.exec(select(JobRun.outcome).where(JobRun.job == "flag_overdue")).all()
    assert list(runs) == ["abandoned", "ok"]
    assert len(seals) == 2 and list(still) == ["running"]
    for claim_no in claims:
        assert county.clerk.get(f"/api/v1/claims/{claim_no}").json["state"] == "batched"
    listed = county.clerk.get("/api/v1/jobs/runs?outcome=abandoned")
    assert listed.status_code == 200 and len(listed.json) == 2


def batches(runtime) -> list[str]:
    with session_scope(runtime.engine, write=False) as session:
        return list(session.exec(select(Batch.batch_no)).all())


@pytest.fixture
def funds_received(app, county):
    [approved] = approved_claims(app, county, ["900.00"])
    assert remit(county, [approved]).status_code == 201
    return approved


def test_with_the_sms_gateway_down_worker_messages_wait_and_go_out_once(
        app, county, monkeypatch, funds_received):
    runtime = app.extensions["mutualaid"]
    port = free_port()
    monkeypatch.setenv("MUTUALAID_NOTIFY_WORKER_CHANNEL", "sms")
    monkeypatch.setenv("MUTUALAID_SMS_URL", f"http://127.0.0.1:{port}/sms")
    monkeypatch.setenv("MUTUALAID_SMS_KEY", "k-1")
    monkeypatch.setenv("MUTUALAID_SMS_TEMPLATES", "funds_received_worker=SMS_100")
    down = dispatch_due(runtime)
    assert down.retrying == 1 and down.sent == 1  # the union's file notice is not held back
    claim = county.clerk.get(f"/api/v1/claims/{funds_received['claim_no']}").json
    assert claim["state"] == "notified"  # the worker's message never holds the claim back
    with http_receiver() as (gateway, url):
        monkeypatch.setenv("MUTUALAID_SMS_URL", url)
        make_due_now(runtime)
        back = dispatch_due(runtime)
        make_due_now(runtime)
        again = dispatch_due(runtime)
    assert (back.sent, again.sent) == (1, 0)
    assert len(gateway.requests) == 1


def make_due_now(runtime) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(sa.update(Notification).values(
            next_try_at=datetime.now(UTC) - timedelta(seconds=1)))


def _cut_connections(database_url: str) -> None:
    """Every server connection to the test database ended, as a PostgreSQL restart does."""
    url = sa.engine.make_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": url.database})
    admin.dispose()


def test_a_pooled_connection_cut_while_idle_is_replaced_unseen(app, county, database_url,
                                                               monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose")
    clerk = county.clerk
    assert clerk.get("/api/v1/claims").status_code == 200  # the pool now holds a connection
    _cut_connections(database_url)
    monkeypatch.setattr(claims.db, "IDLE_PING_SECONDS", 0.0)  # as after 10 s without use
    assert clerk.get("/api/v1/claims").status_code == 200
    assert clerk.post("/api/v1/units", UNIT).status_code == 201


def test_a_connection_cut_while_busy_fails_one_request_then_the_pool_is_renewed(
        app, county, database_url, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to lose")
    clerk = county.clerk
    assert clerk.get("/api/v1/claims").status_code == 200
    _cut_connections(database_url)
    monkeypatch.setattr(claims.db, "IDLE_PING_SECONDS", 3600.0)  # used a moment ago: no ping
    answer = clerk.get("/api/v1/claims")
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert clerk.get("/api/v1/claims").status_code == 200


class HungMailServer:
    """A mail server that accepts connections and never says a word, until released (its
    connections then close, and the client's send fails). `hung_up` is set when a client
    gives up waiting (its timeout) and closes its end."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connected, self.hung_up = threading.Event(), threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # released
                return
            self.connections.append(connection)
            threading.Thread(target=self._wait_for_hang_up, args=(connection,),
                             daemon=True).start()
            self.connected.set()

    def _wait_for_hang_up(self, connection: socket.socket) -> None:
        try:
            while connection.recv(1024):
                pass
        except OSError:  # released: closed on our side
            return
        self.hung_up.set()

    def release(self) -> None:
        self.listener.close()
        for connection in self.connections:
            with suppress(OSError):  # the client hung up first
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


@contextmanager
def hung_mail_server() -> Iterator[HungMailServer]:
    server = HungMailServer()
    try:
        yield server
    finally:
        server.release()


def test_a_hung_mail_server_holds_up_no_other_write(app, county, monkeypatch):
    runtime = app.extensions["mutualaid"]
    [large] = approved_claims(app, county, ["6000.00"])
    assert remit(county, [large]).status_code == 201
    summaries = []
    with hung_mail_server() as server:
        monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
        monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(server.port))
        monkeypatch.setenv("MUTUALAID_SMTP_TIMEOUT", "30")
        dispatcher = threading.Thread(target=lambda: summaries.append(dispatch_due(runtime)))
        dispatcher.start()
        assert server.connected.wait(30)  # the union's payout notice is on its way, stuck
        # Any write (a new claim), and one to the very claim being notified.
        county.claim()
        meeting = (county.today + timedelta(days=3)).isoformat()
        answer = county.fire(large["claim_no"], "schedule_onsite", date=meeting, place="会议室")
        assert answer.status_code == 200, answer.json
        # Done while the send still waited on the server: it had not given up yet.
        assert not server.hung_up.is_set()
        server.release()
        dispatcher.join(60)
    assert summaries[0].retrying == 1  # the stuck notice, tried again later: nothing lost
    with runtime.engine.connect() as connection:
        union = connection.execute(sa.select(Notification).where(
            Notification.recipient_kind == "unit", Notification.template == "funds_received")
        ).one()
    assert (union.state, union.attempts) == ("pending", 1)
    assert union.last_error.startswith("smtp: SMTPServerDisconnected")


def test_a_dispatcher_killed_mid_send_leaves_the_message_to_the_next_after_its_lease(
        app, county, monkeypatch, database_url, funds_received):
    import os
    import signal
    import textwrap

    runtime = app.extensions["mutualaid"]
    script = textwrap.dedent(f"""
        from claims.app import create_app
        from workflows.notify import dispatch_due
        app = create_app({{"database_url": {database_url!r}, "secret_key": "x"}})
        dispatch_due(app.extensions["mutualaid"])
    """)
    with hung_mail_server() as server:
        monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
        monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(server.port))
        dispatcher = subprocess.Popen(
            [sys.executable, "-c", script],
            env=os.environ | {"MUTUALAID_INSTANCE_PATH": str(runtime.settings.instance_path)})
        try:
            assert server.connected.wait(60)  # the union's notice is on its way
        finally:
            dispatcher.send_signal(signal.SIGKILL)
            dispatcher.wait(10)
    monkeypatch.delenv("MUTUALAID_NOTIFY_UNIT_CHANNEL")  # files from here: always sent
    with runtime.engine.connect() as connection:
        union = connection.execute(sa.select(Notification).where(
            Notification.recipient_kind == "unit")).one()
    assert (union.state, union.attempts) == ("pending", 1)
    assert union.next_try_at > datetime.now(UTC)  # leased to the dead dispatcher
    assert dispatch_due(runtime).notified == 0
    make_due_now(runtime)  # the lease ran out
    assert dispatch_due(runtime).notified == 1
    assert dispatch_due(runtime).notified == 0
    trail = county.clerk.get(f"/api/v1/claims/{funds_received['claim_no']}/events").json
    assert [e["event"] for e in trail].count("notify") == 1

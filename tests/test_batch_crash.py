"""A weekly batch run killed (SIGKILL) in the middle of sealing a large batch loses nothing:
every claim is either in the batch with its seal event or still ready without one, and the
next run finishes the job."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from claims.auth import system_actor
from config.settings import PROJECT_ROOT
from workflows.batch import run_weekly_batch

if str(PROJECT_ROOT) not in sys.path:  # bench/ sits beside the code; it is not installed
    sys.path.append(str(PROJECT_ROOT))
from bench.batch import make_ready_claims  # noqa: E402

N = 20_000
CHILD_APP = "crash-child"

# The child runs the real weekly batch. When the sealing statement starts it says so, and the
# database is slowed down from there (SQLite: a progress handler; PostgreSQL: a trigger the
# test installs), so the kill lands while the claims are being moved.
CHILD = """
import sys, time
from pathlib import Path
from sqlalchemy import event
from claims.app import create_app
from claims.auth import system_actor
from workflows.batch import run_weekly_batch

app = create_app({"database_url": sys.argv[1], "instance_path": Path(sys.argv[2]),
                  "secret_key": "crash"})
runtime = app.extensions["mutualaid"]

@event.listens_for(runtime.engine, "before_cursor_execute")
def sealing(connection, cursor, statement, parameters, context, executemany):
    if statement.startswith(("UPDATE claim SET", "WITH moved")):
        if runtime.engine.dialect.name == "sqlite":
            raw = connection.connection.driver_connection
            raw.set_progress_handler(lambda: time.sleep(0.002) or 0, 1000)
        print("SEALING", flush=True)

run_weekly_batch(runtime, system_actor("weekly_batch"))
print("DONE", flush=True)
"""


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.strip())
    out.put(None)


def invariants(engine: sa.Engine) -> dict[str, int]:
    """Counts that must hold whatever happened: nothing lost, nothing in two states."""
    with engine.connect() as connection:
        def count(sql: str) -> int:
            return int(connection.execute(sa.text(sql)).scalar() or 0)

        seals = ("(SELECT count(*) FROM claim_event e WHERE e.claim_id = c.id "
                 "AND e.event = 'seal')")
        result = {
            "claims": count("SELECT count(*) FROM claim"),
            "ready": count(f"SELECT count(*) FROM claim c WHERE state = 'ready' "
                           f"AND batch_id IS NULL AND {seals} = 0"),
            "batched": count(f"SELECT count(*) FROM claim c WHERE state = 'batched' "
                             f"AND batch_id IS NOT NULL AND {seals} = 1"),
            "batches": count("SELECT count(*) FROM batch"),
            "miscounted_batches": count(
                "SELECT count(*) FROM batch b WHERE claim_count <> "
                "(SELECT count(*) FROM claim c WHERE c.batch_id = b.id)"),
        }
    assert result["ready"] + result["batched"] == result["claims"] == N, result
    assert result["miscounted_batches"] == 0, result
    return result


def _slow_postgres(engine: sa.Engine, on: bool) -> None:
    with engine.begin() as connection:
        if on:
            connection.execute(sa.text(
                "CREATE OR REPLACE FUNCTION crash_test_slow() RETURNS trigger AS "
                "$$ BEGIN PERFORM pg_sleep(0.0003); RETURN NEW; END $$ LANGUAGE plpgsql"))
            connection.execute(sa.text(
                "CREATE TRIGGER crash_test_slow BEFORE INSERT ON claim_event "
                "FOR EACH ROW EXECUTE FUNCTION crash_test_slow()"))
        else:
            connection.execute(sa.text("DROP TRIGGER IF EXISTS crash_test_slow ON claim_event"))
            connection.execute(sa.text("DROP FUNCTION IF EXISTS crash_test_slow()"))


def _wait_for_orphan_backend(engine: sa.Engine) -> None:
    """PostgreSQL notices the dead client (client_connection_check_interval) and rolls back."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            alive = connection.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": CHILD_APP}).scalar()
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError("the killed child's backend is still running")


def test_a_run_killed_while_sealing_loses_no_claim_and_the_next_run_finishes(app, tmp_path):
    runtime = app.extensions["mutualaid"]
    engine, postgres = runtime.engine, runtime.engine.dialect.name == "postgresql"
    # 100 yuan each: the batch total stays within PostgreSQL's 32-bit integer column.
    make_ready_claims(engine, runtime.catalogue, N, today=runtime.today(), estimate=10_000)
    url = runtime.settings.database_url
    if postgres:
        _slow_postgres(engine, True)
        url += (f"?application_name={CHILD_APP}"
                "&options=-c%20client_connection_check_interval%3D100")
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(tmp_path / "child")],
                             cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=os.environ.copy())
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
    try:
        assert lines.get(timeout=60) == "SEALING", child.stderr.read() if child.stderr else ""
        time.sleep(0.5)  # well inside the (slowed) sealing statement
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    if postgres:
        _wait_for_orphan_backend(engine)
        _slow_postgres(engine, False)

    after_crash = invariants(engine)
    # One transaction: the killed run sealed nothing and left no batch behind.
    assert (after_crash["ready"], after_crash["batches"]) == (N, 0), after_crash
    assert not list(Path(tmp_path / "child").glob("manifests/*/*.xlsx"))

    summary = run_weekly_batch(runtime, system_actor("weekly_batch"))
    assert summary["sealed"] == N and summary["claim_count"] == N
    assert summary["manifests_written"] == [summary["batch_no"]]
    after_rerun = invariants(engine)
    assert (after_rerun["batched"], after_rerun["batches"]) == (N, 1), after_rerun
    assert run_weekly_batch(runtime, system_actor("weekly_batch"))["sealed"] == 0

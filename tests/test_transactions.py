"""Both databases' drivers run in autocommit and claims.db begins transactions itself: a write
is all or nothing and unseen until committed; a read holds no transaction between statements."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from flask import Flask

from claims.db import session_scope
from claims.models import Unit
from tests.conftest import County


def _units(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(Unit)).scalar_one())


def _unit(code: str) -> Unit:
    return Unit(code=code, name="事务单位", area="城区", union_contact="李明",
                union_phone="0571-0000000", union_email="t@example.org", employee_count=3)


def test_a_job_step_that_fails_after_writing_leaves_nothing(app: Flask) -> None:
    engine = app.extensions["mutualaid"].engine
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(_unit("T1"))
        session.flush()  # the INSERT has run
        raise RuntimeError("the step failed")
    assert _units(engine) == 0


def test_a_write_is_unseen_by_readers_until_it_commits(app: Flask) -> None:
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        session.add(_unit("T2"))
        session.flush()
        assert _units(runtime.reader) == 0
    assert _units(runtime.reader) == 1


def test_a_reader_sees_a_write_committed_between_its_statements(app: Flask) -> None:
    runtime = app.extensions["mutualaid"]
    with runtime.reader.connect() as reads:
        before = reads.execute(sa.select(sa.func.count()).select_from(Unit)).scalar_one()
        with session_scope(runtime.engine) as session:
            session.add(_unit("T3"))
        after = reads.execute(sa.select(sa.func.count()).select_from(Unit)).scalar_one()
    assert (before, after) == (0, 1)  # in a transaction the second count would still be 0


def test_logging_claims_lets_sqlites_write_ahead_log_start_over(county: County) -> None:
    """Each request reads on a connection of its own before it writes; were that reader to
    hold its snapshot through the write's COMMIT, the checkpoint could never take the whole
    log, and the log would grow by every claim logged (about 17 pages each)."""
    runtime = county.app.extensions["mutualaid"]
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("a write-ahead log of SQLite's")
    member = county.member()
    county.enrol(member)
    for _ in range(150):  # about 2,500 pages written, the checkpoint runs at 1,000
        county.claim(member)
    with runtime.reader.connect() as connection:  # a checkpoint runs outside a transaction
        _busy, log_pages, _done = connection.exec_driver_sql(
            "PRAGMA wal_checkpoint(PASSIVE)").one()
    assert log_pages < 1_100  # 1,000 and one claim's pages at most


def test_reads_on_postgresql_hold_no_transaction(app: Flask) -> None:
    runtime = app.extensions["mutualaid"]
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("pg_stat_activity is PostgreSQL's")
    with runtime.reader.connect() as connection:
        first = connection.exec_driver_sql("SELECT now()").scalar_one()
        time.sleep(0.01)
        second = connection.exec_driver_sql("SELECT now()").scalar_one()
        state = connection.exec_driver_sql(
            "SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()").scalar_one()
    assert second > first  # in a transaction now() would stand still
    assert state == "active"  # never "idle in transaction" between statements

"""Both databases' drivers run in autocommit and claims.db begins transactions itself: a write
is all or nothing and unseen until committed; a read on PostgreSQL holds no transaction."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from flask import Flask

from claims.db import session_scope
from claims.models import Unit


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


def test_reads_on_postgresql_hold_no_transaction(app: Flask) -> None:
    runtime = app.extensions["mutualaid"]
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite readers take a plain BEGIN (tests/test_sqlite_writers.py)")
    with runtime.reader.connect() as connection:
        first = connection.exec_driver_sql("SELECT now()").scalar_one()
        time.sleep(0.01)
        second = connection.exec_driver_sql("SELECT now()").scalar_one()
        state = connection.exec_driver_sql(
            "SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()").scalar_one()
    assert second > first  # in a transaction now() would stand still
    assert state == "active"  # never "idle in transaction" between statements

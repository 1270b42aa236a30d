"""Writers to one SQLite file take turns through a lock file (claims/sqlite_writers.py): the
turn is held from BEGIN IMMEDIATE to the end of the transaction, however it ends."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
import sqlalchemy as sa

from claims.db import READS, make_engine, session_scope, write_intent
from claims.sqlite_writers import turn_file_for


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE note (text TEXT)")
    yield engine
    engine.dispose()


def turn_is_free(engine: sa.Engine) -> bool:
    """Whether another process could take the writers' turn now."""
    path = turn_file_for(engine.url.database)
    assert path is not None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_a_writer_holds_the_turn_until_its_transaction_ends(engine: sa.Engine,
                                                            ending: str) -> None:
    session = None
    with pytest.raises(RuntimeError) if ending == "rollback" else nullcontext():
        with session_scope(engine) as session:
            session.execute(sa.text("INSERT INTO note VALUES ('written')"))
            assert not turn_is_free(engine)
            if ending == "rollback":
                raise RuntimeError("the clerk's request failed")
    assert turn_is_free(engine)
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM note").scalar()
    assert count == (1 if ending == "commit" else 0)


def test_readers_never_take_the_turn(engine: sa.Engine) -> None:
    with session_scope(engine, write=False) as session:
        session.execute(sa.text("SELECT count(*) FROM note"))
        assert turn_is_free(engine)
    token = write_intent.set(True)  # a writing request's own reads go through the reader
    try:
        with engine.execution_options(**{READS: True}).connect() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM note")
            assert turn_is_free(engine)
    finally:
        write_intent.reset(token)


def test_a_writer_kept_waiting_too_long_falls_back_to_sqlites_own_wait(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("claims.sqlite_writers.WAIT_SECONDS", 0.05)
    path = turn_file_for(engine.url.database)
    assert path is not None
    stuck = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(stuck, fcntl.LOCK_EX)  # a process holding the turn without writing
    try:
        with session_scope(engine) as session:
            session.execute(sa.text("INSERT INTO note VALUES ('still written')"))
    finally:
        os.close(stuck)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT text FROM note").scalar() == "still written"


def test_an_in_memory_database_has_no_turn_file() -> None:
    assert turn_file_for(":memory:") is None and turn_file_for(None) is None
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        assert session.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()

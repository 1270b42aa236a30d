"""Engines and sessions: one session per request or job step, committed in one place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session

from claims.sqlite_writers import TurnTakingConnection, turn_file_for

# On SQLite a transaction that will write starts with BEGIN IMMEDIATE, so two writers
# queue on the lock instead of one failing when it upgrades a stale read snapshot.
write_intent: ContextVar[bool] = ContextVar("write_intent", default=False)
# The execution option of connections that only read, even within a writing request: they
# run without a transaction on both databases (make_engine, reader_engine).
READS = "mutualaid_reads_only"
# A pooled PostgreSQL connection idle this long is pinged before use; busier ones are not.
IDLE_PING_SECONDS = 10.0


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={
            "timeout": 30, "factory": TurnTakingConnection}, **kwargs)
        turn_file = turn_file_for(engine.url.database)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            dbapi_connection.turn_file = turn_file
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: sa.Connection) -> None:
            if connection.get_execution_options().get(READS):
                return  # each statement its own snapshot (reader_engine)
            # On the driver's connection, not through SQLAlchemy's execution (a context, events,
            # a result): logging a claim 6.81 -> 6.73 million instructions (valgrind).
            dbapi_connection = connection.connection.dbapi_connection
            if write_intent.get():
                dbapi_connection.take_turn()  # type: ignore[union-attr]
                dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            else:
                dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]

        return engine
    if not url.startswith("postgresql"):
        return sa.create_engine(url, **kwargs)
    # The driver in autocommit, and BEGIN sent here, as for SQLite: a connection that only
    # reads (READS) runs without a transaction and pays no BEGIN and ROLLBACK round trips,
    # and the pool never switches a connection's mode (as an execution option, autocommit
    # was set at every checkout and reset at every checkin: 2-3% of a read request's work).
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)

    @event.listens_for(engine, "begin")
    def _postgres_begin(connection: sa.Connection) -> None:
        options = connection.get_execution_options()
        if not options.get(READS) and options.get("isolation_level") != "AUTOCOMMIT":
            connection.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]

    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: sa.Engine) -> None:
    """Ping a pooled connection before use only when it sat idle a while (SQLAlchemy's
    custom pessimistic recipe): `pool_pre_ping` pinged on every checkout, one more round trip
    per request (python -m bench load). A connection that died while busy fails its request
    with 503 once; SQLAlchemy then replaces every connection of the pool."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # new, or in use a moment ago
        dialect = engine.dialect
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:  # the pool takes a new connection instead
            raise sa.exc.DisconnectionError("connection lost while idle")


def reader_engine(engine: sa.Engine) -> sa.Engine:
    """The engine for reads: requests that only read, and what a writing request reads before
    it writes. Without a transaction on both databases: each statement reads its own snapshot
    (as within a READ COMMITTED transaction anyway) and none is held between statements.
    PostgreSQL is spared a BEGIN and a ROLLBACK round trip. On SQLite a reader never queues
    for the write lock, and, holding no snapshot while its request writes, never stops the
    checkpoint from taking the whole write-ahead log: with a plain BEGIN it did, the log never
    started over (154 MB after 2,200 claims logged one after another) and every COMMIT ran
    another checkpoint (0.9 ms a COMMIT against 0.2)."""
    return engine.execution_options(**{READS: True})


@contextmanager
def session_scope(engine: sa.Engine, *, write: bool = True) -> Iterator[Session]:
    """One unit of work outside a request (CLI, jobs): commit on success, roll back on error."""
    token = write_intent.set(write)
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        write_intent.reset(token)

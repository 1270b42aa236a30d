"""The scheduler's leader lock: which one of several scheduler processes is active.

PostgreSQL: a session advisory lock on a dedicated connection (it frees when the holder's
connection ends; a standby ends a frozen holder's). SQLite: the scheduler_lease row, taken
over once its heartbeat is stale. Both stamp the heartbeat /readyz reads.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from claims.db import make_engine, session_scope
from claims.models import SchedulerLease
from workflows.jobs import describe_error

log = logging.getLogger("mutualaid.scheduler")

LEASE_NAME = "scheduler"
# pg_try_advisory_lock key of the scheduler leader (the batch lock is ..._0001).
_LEADER_LOCK_KEY = 0x6D7574_0002
# Keepalives on the lock's connection, both ways: libpq's let this side notice a dead server,
# the server's (options -c) let it end a dead host's backend, freeing the lock: about 25 s.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
               "keepalives_count": 3}
_SERVER_KEEPALIVES = " ".join(f"-c tcp_{key}={value}" for key, value in _KEEPALIVES.items()
                              if key != "keepalives")
# The lock connection's application_name names its holder: a standby ends the backend holding
# our lock only if it is the holder the lease row names and that heartbeat is stale; one
# statement, so a holder newer than the row is never ended. PostgreSQL 14+ waits up to 5 s for
# the end (the lock is free when it answers); before 14 it does not wait, and the standby
# takes the lock at its next poll.
_APPLICATION_NAME = "mutualaid-scheduler "
_END_STALE_HOLDER = """
    SELECT pg_terminate_backend({arguments}) FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
    JOIN scheduler_lease s ON s.name = :name AND s.heartbeat_at < :stale_before
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = :high
      AND l.objid = :low AND a.application_name = left(:prefix || s.holder, 63)
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
_REPEAT_LOG_SECONDS = 60.0  # the same "lock unavailable" reason is logged again after this
_lease = SchedulerLease.__table__  # type: ignore[attr-defined]


class Leader(Protocol):
    def acquire(self) -> bool: ...

    def heartbeat(self) -> bool: ...

    def release(self) -> None: ...


def _write_heartbeat(connection: sa.Connection, holder: str, *, acquired: bool) -> int:
    """Stamp the lease row as this holder's; the row is made on first use."""
    now = datetime.now(UTC)
    values = {"holder": holder, "heartbeat_at": now} | ({"acquired_at": now} if acquired else {})
    updated = connection.execute(sa.update(_lease).where(_lease.c.name == LEASE_NAME)
                                 .values(**values)).rowcount
    if updated == 0:
        connection.execute(sa.insert(_lease).values({"name": LEASE_NAME, "acquired_at": now}
                                                    | values))
        updated = 1
    return updated


def _try_lock(connection: sa.Connection) -> bool:
    return bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                   {"key": _LEADER_LOCK_KEY}).scalar())


class PostgresLeader:
    """A session-level advisory lock held on a dedicated connection: it frees when we die, and
    a standby ends the connection of a holder frozen with its heartbeat `stale_after` old."""

    def __init__(self, url: str, holder: str, stale_after: float) -> None:
        options = sa.engine.make_url(url).query.get("options")
        self.engine = make_engine(url, poolclass=sa.pool.NullPool, connect_args=_KEEPALIVES | {
            "application_name": (_APPLICATION_NAME + holder)[:63],
            "options": " ".join(filter(None, [options, _SERVER_KEEPALIVES]))})
        self.holder = holder
        self.stale_after = timedelta(seconds=stale_after)
        self.connection: sa.Connection | None = None
        self._using = threading.Lock()  # the loop and APScheduler's thread both beat
        self._unavailable: tuple[str, float] | None = None  # the reason last logged, when

    def acquire(self) -> bool:
        with self._using:
            try:
                if self.connection is None:
                    self.connection = self.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT")
                connection = self.connection
                got = _try_lock(connection) or (self._end_stale_holder(connection)
                                                and _try_lock(connection))
                if got:
                    _write_heartbeat(connection, self.holder, acquired=True)
            except sa.exc.DBAPIError as error:
                self._log_unavailable(error)
                self._drop()
                return False
        self._unavailable = None
        return got

    def _end_stale_holder(self, connection: sa.Connection) -> bool:
        """End the lock's holder if its heartbeat is stale: a frozen process's kernel keeps
        its connection, and so the lock, alive."""
        waits = (connection.dialect.server_version_info or (0,)) >= (14,)
        statement = sa.text(_END_STALE_HOLDER.format(arguments="l.pid, 5000" if waits
                                                     else "l.pid"))
        ended = any(connection.execute(statement, {
            "name": LEASE_NAME, "stale_before": datetime.now(UTC) - self.stale_after,
            "high": _LEADER_LOCK_KEY >> 32, "low": _LEADER_LOCK_KEY & 0xFFFFFFFF,
            "prefix": _APPLICATION_NAME}).scalars())
        if ended:
            log.warning("scheduler ended a stale holder's connection holder=%s stale_after=%gs",
                        self.holder, self.stale_after.total_seconds())
        return ended

    def _reason(self, error: sa.exc.DBAPIError) -> str:
        """The driver's first line ('database "x" does not exist'): no URL, no password."""
        reason, password = describe_error(error), self.engine.url.password
        return reason.replace(password, "***") if password else reason

    def _log_unavailable(self, error: sa.exc.DBAPIError) -> None:
        """Why the database is away, once, and then once a minute while it says the same."""
        reason, now, last = self._reason(error), time.monotonic(), self._unavailable
        if last is None or last[0] != reason or now - last[1] >= _REPEAT_LOG_SECONDS:
            log.warning("scheduler lock unavailable error=%s reason=%s",
                        type(error.orig).__name__, reason)
            self._unavailable = (reason, now)

    def heartbeat(self) -> bool:
        with self._using:
            if self.connection is None:
                return False
            try:
                _write_heartbeat(self.connection, self.holder, acquired=False)
                return True
            except sa.exc.DBAPIError as error:
                log.warning("scheduler lock connection failed reason=%s", self._reason(error))
                self._drop()  # the lock went with the connection
                return False

    def release(self) -> None:
        with self._using:
            if self.connection is not None:
                try:
                    self.connection.execute(sa.delete(_lease).where(
                        _lease.c.name == LEASE_NAME, _lease.c.holder == self.holder))
                    self.connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"),
                                            {"key": _LEADER_LOCK_KEY})
                except sa.exc.DBAPIError:
                    pass  # closing the connection below frees the lock all the same
            self._drop()

    def close(self) -> None:
        self._drop()
        self.engine.dispose()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except sa.exc.DBAPIError:
                pass
            self.connection = None


class SqliteLeader:
    """The SchedulerLease row: taken when free or stale, in a BEGIN IMMEDIATE transaction."""

    def __init__(self, engine: sa.Engine, holder: str, lease_seconds: float) -> None:
        self.engine = engine
        self.holder = holder
        self.lease = timedelta(seconds=lease_seconds)

    def acquire(self) -> bool:
        with session_scope(self.engine) as session:
            lease = session.get(SchedulerLease, LEASE_NAME)
            stale = datetime.now(UTC) - self.lease
            if lease is not None and lease.holder != self.holder and lease.heartbeat_at > stale:
                return False
            _write_heartbeat(session.connection(), self.holder, acquired=True)
            return True

    def heartbeat(self) -> bool:
        with session_scope(self.engine) as session:
            updated = session.execute(
                sa.update(_lease).where(_lease.c.name == LEASE_NAME,
                                        _lease.c.holder == self.holder)
                .values(heartbeat_at=datetime.now(UTC))).rowcount
            return updated == 1

    def release(self) -> None:
        with session_scope(self.engine) as session:
            session.execute(sa.delete(_lease).where(_lease.c.name == LEASE_NAME,
                                                    _lease.c.holder == self.holder))


def heartbeat_age(session: Session) -> timedelta | None:
    """How long ago the active scheduler last beat, or None when none is on record."""
    lease = session.get(SchedulerLease, LEASE_NAME)
    return None if lease is None else datetime.now(UTC) - lease.heartbeat_at

"""Writers to one SQLite file take turns through a lock file beside it.

SQLite lets one writer in at a time, and a writer that finds the lock taken waits in SQLite's
busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ms and so on between tries: with four
workers saving claims, an unlucky writer slept through many turns (`python -m bench load`:
creation's p99 near a second). Here a writer first takes the lock file (flock), polling
every half millisecond at most, and hands it back the moment its COMMIT or ROLLBACK is done,
so SQLite's own lock is nearly always free when BEGIN IMMEDIATE asks for it. SQLite's lock
stays the authority: a writer that waited `WAIT_SECONDS` for its turn goes on to SQLite's
busy timeout as before, and a process that dies drops its flock with its files.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time

WAIT_SECONDS = 30.0
_LONGEST_NAP = 0.0005  # seconds between tries once the first quick ones failed


class TurnTakingConnection(sqlite3.Connection):
    """A sqlite3 connection that takes the writers' turn for BEGIN IMMEDIATE and gives it
    back as soon as its transaction ends (sqlite3.connect(..., factory=...))."""

    turn_file: str | None = None
    _turn_fd: int | None = None
    _holds_turn = False

    def take_turn(self) -> None:
        """Wait for the writers' turn (at most WAIT_SECONDS), then hold it."""
        if self.turn_file is None or self._holds_turn:
            return
        if self._turn_fd is None:
            self._turn_fd = os.open(self.turn_file, os.O_RDWR | os.O_CREAT, 0o600)
        deadline, nap = time.monotonic() + WAIT_SECONDS, 0.00005
        while True:
            try:
                fcntl.flock(self._turn_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holds_turn = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # SQLite's busy timeout decides from here
                time.sleep(nap)
                nap = min(nap * 2, _LONGEST_NAP)

    def end_turn(self) -> None:
        if self._holds_turn and self._turn_fd is not None:
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)
        self._holds_turn = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None


def turn_file_for(database: str | None) -> str | None:
    """The lock file beside a database file; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writers"

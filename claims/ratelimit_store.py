"""A `limits` storage in a SQLite file: every process on one host shares its counts."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from limits.storage import MovingWindowSupport, Storage

SCHEME = "sqlite"
BUSY_TIMEOUT_SECONDS = 5.0
# One row per hit (moving window) or per counted unit (fixed window), each with its expiry.
SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hits_by_key ON hits (key, at);
CREATE INDEX IF NOT EXISTS hits_by_expiry ON hits (expires);
"""


def file_uri(path: Path) -> str:
    """The storage URI of the SQLite file at `path`."""
    return f"{SCHEME}:///{Path(path).resolve()}"


class _SharedFile:
    """One connection to the file per process, opened on first use and again after a fork."""

    def __init__(self, path: str) -> None:
        self.path, self.pid = path, os.getpid()
        self.db: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        if self.db is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: the writes say BEGIN IMMEDIATE themselves.
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS,
                                 isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            # Counts lost to a power cut are harmless; an fsync per wrong guess is not.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA journal_size_limit=4194304")  # the WAL shrinks after a burst
            db.executescript(SCHEMA)
            self.db, self.pid = db, os.getpid()
        return self.db

    def forked(self) -> None:
        # SQLite forbids using a connection across fork, and closing it could touch the
        # parent's WAL: the child keeps it unused. A new lock: another thread may have held
        # the old one at the fork.
        if self.db is not None:
            _INHERITED.append(self.db)
        self.db, self.lock, self.pid = None, threading.Lock(), os.getpid()

    def __del__(self) -> None:
        if self.db is not None and self.pid == os.getpid():
            self.db.close()


# Storages on one file in one process (the status guard, the login guard) share its connection.
_FILES: weakref.WeakValueDictionary[str, _SharedFile] = weakref.WeakValueDictionary()
_FILES_LOCK = threading.Lock()
_INHERITED: list[sqlite3.Connection] = []  # a forked child's copies: never used, never closed


def _after_fork_in_child() -> None:
    for shared in list(_FILES.values()):
        shared.forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteFileStorage(Storage, MovingWindowSupport):
    """Moving-window counts in a SQLite file (WAL), shared by the processes of one host."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: float | str | bool) -> None:
        path = (uri or "").split("://", 1)[-1][1:]  # SQLAlchemy's form: sqlite:///<path>
        if not path:
            raise ValueError(f"{SCHEME}:///<path> needs a file path, not {uri!r}")
        with _FILES_LOCK:
            self.file = _FILES.get(path) or _FILES.setdefault(path, _SharedFile(path))
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _read(self, sql: str, *args: Any) -> Any:
        with self.file.lock:
            return self.file.connection().execute(sql, args).fetchone()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the file's write lock from its first statement."""
        with self.file.lock:
            db = self.file.connection()
            # IMMEDIATE: the write lock before counting, so two processes cannot both see a
            # free slot and take it.
            db.execute("BEGIN IMMEDIATE")
            try:
                # Pruned on each write, so the file stays as small as the live counts; the
                # index on expires makes it cheap.
                db.execute("DELETE FROM hits WHERE expires <= ?", (time.time(),))
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some errors
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take `amount` entries in the window unless that would pass `limit`."""
        if amount > limit:
            return False
        with self._writing() as db:
            now = time.time()
            (taken,) = db.execute("SELECT count(*) FROM hits WHERE key = ? AND at > ?",
                                  (key, now - expiry)).fetchone()
            if taken + amount > limit:
                return False
            db.executemany("INSERT INTO hits (key, at, expires) VALUES (?, ?, ?)",
                           [(key, now, now + expiry)] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(start of the window, entries in it): the oldest of the last `limit` entries."""
        now = time.time()
        oldest, taken = self._read(
            "SELECT min(at), count(*) FROM (SELECT at FROM hits WHERE key = ? AND at > ? "
            "ORDER BY at DESC LIMIT ?)", key, now - expiry, limit)
        return (oldest, taken) if taken else (now, 0)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` in a fixed window that ends `expiry` seconds after its first count."""
        with self._writing() as db:
            now = time.time()
            (ends,) = db.execute("SELECT min(expires) FROM hits WHERE key = ?",
                                 (key,)).fetchone()
            db.executemany("INSERT INTO hits (key, at, expires) VALUES (?, ?, ?)",
                           [(key, now, ends or now + expiry)] * amount)
            (count,) = db.execute("SELECT count(*) FROM hits WHERE key = ?", (key,)).fetchone()
            return int(count)

    def get(self, key: str) -> int:
        """A fixed window's count, 0 once it ended."""
        (count,) = self._read("SELECT count(*) FROM hits WHERE key = ? AND expires > ?",
                              key, time.time())
        return int(count)

    def get_expiry(self, key: str) -> float:
        """When a fixed window ends (now if there is none)."""
        (ends,) = self._read("SELECT min(expires) FROM hits WHERE key = ? AND expires > ?",
                             key, time.time())
        return float(ends) if ends is not None else time.time()

    def clear(self, key: str) -> None:
        """Forget every count of `key`."""
        with self._writing() as db:
            db.execute("DELETE FROM hits WHERE key = ?", (key,))

    def check(self) -> bool:
        """Whether the file answers."""
        try:
            return bool(self._read("SELECT 1") == (1,))
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        """Forget every count; how many keys there were."""
        with self._writing() as db:
            (keys,) = db.execute("SELECT count(DISTINCT key) FROM hits").fetchone()
            db.execute("DELETE FROM hits")
            return int(keys)

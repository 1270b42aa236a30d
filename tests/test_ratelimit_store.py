"""The default rate-limit store (SPEC §5): a SQLite file in the instance folder that every
worker process of one host shares, so the 11th wrong guess is refused whichever worker
answers it, and a locked username stays locked on every worker."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from servers import free_port

from claims.api.security import LoginGuard, ratelimit_storage_uri
from claims.ratelimit_store import SQLiteFileStorage, file_uri
from config.settings import Settings

MUTUALAID = str(Path(sys.executable).parent / "mutualaid")
PASSWORD = "correct horse battery"
WRONG_GUESS = {"claim_no": "LP2026-000001", "id_last6": "000000"}


# --- the real server, as an operator starts it ------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mutualaid serve --workers 2` on a fresh SQLite database, no rate-limit setting; its URL."""
    folder = tmp_path_factory.mktemp("served")
    env = {**os.environ, "MUTUALAID_DATABASE_URL": f"sqlite:///{folder / 'x.db'}",
           "MUTUALAID_INSTANCE_PATH": str(folder), "MUTUALAID_SECRET_KEY": "s" * 32,
           "MUTUALAID_LOG_LEVEL": "WARNING"}
    env.pop("MUTUALAID_RATELIMIT_STORAGE_URI", None)  # the default store is under test
    for command in (["db", "upgrade"],
                    ["users", "create", "clerk", "--role", "clerk", "--password", PASSWORD]):
        subprocess.run([MUTUALAID, *command], env=env, check=True, capture_output=True)
    port = free_port()
    with open(folder / "gunicorn.log", "wb") as log:
        process = subprocess.Popen([MUTUALAID, "serve", "--port", str(port), "--workers", "2"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=log,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert process.poll() is None and time.monotonic() < deadline, \
                (folder / "gunicorn.log").read_text()[-3000:]
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Held:
    """A POST on its own connection whose body is held back: the worker that accepted it
    waits for the body, busy (a sync worker serves one connection at a time), so the next
    requests go to the other worker until `finish()` sends the body."""

    def __init__(self, address: str, path: str, body: dict[str, str]) -> None:
        host, port = address.split(":")
        self.body = json.dumps(body).encode()
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n"
                          f"Content-Type: application/json\r\n"
                          f"Content-Length: {len(self.body)}\r\n\r\n".encode())
        time.sleep(0.2)  # accepted by now: the worker is reading the headers

    def finish(self) -> tuple[int, dict[str, str]]:
        """Send the body; the answer's status and headers."""
        self.sock.sendall(self.body)
        answer = b""
        while chunk := self.sock.recv(65536):
            answer += chunk
        self.sock.close()
        head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in head[1:])
        return int(head[0].split()[1]), headers


def post(address: str, path: str, body: dict[str, str]) -> int:
    """A POST on a fresh connection; its status."""
    return Held(address, path, body).finish()[0]


def test_the_eleventh_wrong_guess_is_refused_whichever_worker_answers(server):
    status = "/api/v1/status"
    busy_a = Held(server, status, WRONG_GUESS)
    answers = [post(server, status, WRONG_GUESS) for _ in range(5)]  # worker B
    busy_b = Held(server, status, WRONG_GUESS)
    answers.append(busy_a.finish()[0])  # worker A: the 6th
    answers += [post(server, status, WRONG_GUESS) for _ in range(4)]  # worker A
    assert answers == [404] * 10
    refused, headers = busy_b.finish()  # worker B: the 11th, after 5 wrong guesses of its own
    assert refused == 429 and int(headers["Retry-After"]) >= 1


def test_wrong_passwords_lock_the_username_on_every_worker(server):
    token = "/api/v1/auth/token"
    right = {"username": "clerk", "password": PASSWORD}
    wrong = {"username": "clerk", "password": "not the password"}
    assert post(server, token, right) == 200
    busy_a = Held(server, token, wrong)
    answers = [post(server, token, wrong) for _ in range(2)]  # worker B
    busy_b = Held(server, token, right)
    answers.append(busy_a.finish()[0])  # worker A
    answers += [post(server, token, wrong) for _ in range(Settings.login_max_failures - 3)]
    assert answers == [401] * Settings.login_max_failures
    refused, headers = busy_b.finish()  # worker B, which saw two of the wrong passwords
    assert refused == 429 and int(headers["Retry-After"]) >= 1
    assert post(server, token, right) == 429  # worker A


# --- the store itself -------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> SQLiteFileStorage:
    return SQLiteFileStorage(file_uri(tmp_path / "ratelimit.sqlite3"))


def test_without_a_setting_the_store_is_a_file_in_the_instance_folder(tmp_path):
    settings = Settings(instance_path=tmp_path, database_url="sqlite://", secret_key="t")
    assert ratelimit_storage_uri(settings) == f"sqlite:///{tmp_path / 'ratelimit.sqlite3'}"
    assert isinstance(LoginGuard(settings).limiter.storage, SQLiteFileStorage)
    memory = Settings(instance_path=tmp_path, database_url="sqlite://", secret_key="t",
                      ratelimit_storage_uri="memory://")
    assert isinstance(LoginGuard(memory).limiter.storage, MemoryStorage)


def test_hits_leave_the_moving_window_one_by_one(store):
    limiter, item = MovingWindowRateLimiter(store), RateLimitItemPerSecond(3, 2)
    start = time.time()
    assert limiter.hit(item, "k") and limiter.hit(item, "k")
    time.sleep(1.0)
    assert limiter.hit(item, "k")
    assert not limiter.hit(item, "k") and not limiter.test(item, "k")
    assert limiter.get_window_stats(item, "k").reset_time == pytest.approx(start + 2, abs=0.2)
    time.sleep(max(0.0, start + 2.4 - time.time()))  # the first two left, the third stays
    assert limiter.test(item, "k")
    assert limiter.hit(item, "k") and limiter.hit(item, "k")
    assert not limiter.hit(item, "k")


def test_clear_forgets_one_key(store):
    limiter, item = MovingWindowRateLimiter(store), RateLimitItemPerSecond(2, 60)
    for key in ("a", "b"):
        limiter.hit(item, key)
        limiter.hit(item, key)
    limiter.clear(item, "a")
    assert limiter.test(item, "a") and not limiter.test(item, "b")
    assert store.reset() == 1 and limiter.test(item, "b")


def test_fixed_window_counters(store):
    assert store.incr("n", 60) == 1 and store.incr("n", 60, amount=2) == 3
    assert store.get("n") == 3 and time.time() < store.get_expiry("n") <= time.time() + 60
    store.clear("n")
    assert store.get("n") == 0 and store.check()


def _race(uri: str, keys: list[str], start: Any, results: Any) -> None:
    limiter, item = MovingWindowRateLimiter(SQLiteFileStorage(uri)), RateLimitItemPerSecond(
        10, 60)
    for key in keys:
        start.wait()
        results.put((key, limiter.hit(item, key)))


def test_two_processes_racing_for_the_last_slot_take_it_once(tmp_path):
    uri = file_uri(tmp_path / "ratelimit.sqlite3")
    limiter, item = MovingWindowRateLimiter(SQLiteFileStorage(uri)), RateLimitItemPerSecond(
        10, 60)
    keys = [f"claim-{n}" for n in range(30)]
    for key in keys:  # nine taken, one slot left; the parent's connection is open at the fork
        for _ in range(9):
            assert limiter.hit(item, key)
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_race, args=(uri, keys, start, results)) for _ in "ab"]
    for racer in racers:
        racer.start()
    taken = [results.get(timeout=60) for _ in range(2 * len(keys))]
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    assert sorted(key for key, won in taken if won) == sorted(keys)
    assert not any(limiter.test(item, key) for key in keys)


def test_the_file_stays_small_after_many_expired_hits(store, tmp_path):
    limiter, item = MovingWindowRateLimiter(store), RateLimitItemPerSecond(1, 1)
    sizes = []
    for burst in range(4):
        for n in range(2000):  # a crawler guessing from 2,000 addresses
            limiter.hit(item, f"{burst}-{n}")
        db = store.file.connection()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        sizes.append(pages)
        time.sleep(1.05)
    limiter.hit(item, "last")  # a write prunes what expired
    (rows,) = store.file.connection().execute("SELECT count(*) FROM hits").fetchone()
    assert rows == 1
    assert max(sizes) <= sizes[0] * 1.2  # the pages freed by each burst hold the next
    assert (tmp_path / "ratelimit.sqlite3-wal").stat().st_size < 8 * 2**20


def test_an_unusable_file_falls_back_to_counting_in_memory(tmp_path, caplog):
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    settings = Settings(instance_path=tmp_path, database_url="sqlite://", secret_key="t",
                        ratelimit_storage_uri=file_uri(folder))
    guard = LoginGuard(settings)
    for _ in range(settings.login_max_failures):
        guard.failed("clerk", "10.0.0.1")
    assert guard.locked("clerk", "10.0.0.1") is not None
    assert "rate-limit storage unreachable" in caplog.text

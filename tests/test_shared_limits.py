"""Several app hosts share one rate-limit store (the local Redis): wrong guesses on the
status check and failed sign-ins count once, whichever host they reach."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSWORD
from flask import Flask

from claims.app import create_app

REDIS_URI = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(REDIS_URI, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="no Redis on 127.0.0.1:6379")


def make_host(database_url: str, instance: Path, prefix: str) -> Flask:
    return create_app({"database_url": database_url, "instance_path": instance,
                       "secret_key": "test-secret", "ratelimit_storage_uri": REDIS_URI,
                       "ratelimit_key_prefix": prefix})


@pytest.fixture
def hosts(app: Flask, database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    """Two app hosts on one database and one Redis, with a key prefix of their own (tests
    running at once must not count each other's guesses)."""
    prefix = f"test-{uuid.uuid4().hex}"
    made = [make_host(database_url, tmp_path / name, prefix) for name in ("a", "b")]
    yield made[0], made[1]
    for host in made:
        host.extensions["mutualaid"].engine.dispose()


def test_wrong_guesses_on_two_hosts_count_together(hosts):
    host_a, host_b = hosts
    guess = {"claim_no": "LP2026-000001", "id_last6": "00000X"}
    answers = [(host_a if n % 2 else host_b).test_client().post("/api/v1/status", json=guess)
               for n in range(10)]
    assert [a.status_code for a in answers] == [404] * 10
    refused = host_a.test_client().post("/api/v1/status", json=guess)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert host_b.test_client().post("/api/v1/status", json=guess).status_code == 429


def test_failed_sign_ins_on_two_hosts_lock_the_username_on_both(hosts, county):
    county.clerk  # noqa: B018 (creates the clerk, signed in once on the test host)
    host_a, host_b = hosts
    wrong = {"username": "clerk", "password": "not the password"}
    for n in range(5):
        host = host_a if n % 2 else host_b
        assert host.test_client().post("/api/v1/auth/token", json=wrong).status_code == 401
    right = {"username": "clerk", "password": PASSWORD}
    for host in (host_a, host_b):
        answer = host.test_client().post("/api/v1/auth/token", json=right)
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1


def test_a_service_with_another_key_prefix_counts_apart(hosts, database_url, tmp_path):
    host_a, _host_b = hosts
    neighbour = make_host(database_url, tmp_path / "other", f"test-{uuid.uuid4().hex}")
    guess = {"claim_no": "LP2026-000002", "id_last6": "00000X"}
    for _ in range(10):
        host_a.test_client().post("/api/v1/status", json=guess)
    assert host_a.test_client().post("/api/v1/status", json=guess).status_code == 429
    assert neighbour.test_client().post("/api/v1/status", json=guess).status_code == 404
    neighbour.extensions["mutualaid"].engine.dispose()

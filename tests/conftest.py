"""An app per database: SQLite always, PostgreSQL too when MUTUALAID_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

# The browser fixtures live here once: a fixture imported into two test modules would be
# two session fixtures, and a second Playwright cannot start beside the first.
from browser import chromium, live_server, phone  # noqa: F401,E402
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import SQLModel

import claims.auth
from bench.scratch import scratch_postgres
from claims.app import create_app
from claims.auth import create_user
from claims.db import session_scope
from claims.idcard import make_id_number
from migrations import upgrade

# Production hashes cost ~64 MiB and tens of milliseconds each, on purpose; the suite
# creates and signs in hundreds of users, so it hashes cheaply (same code, same format).
claims.auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

POSTGRES_URL = os.environ.get("MUTUALAID_TEST_POSTGRES_URL")
DATABASES = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
PASSWORD = "correct horse battery"


def _scratch_postgres(url: str) -> Any:
    """A fresh database beside the one named in the URL, dropped afterwards: parallel runs
    (and whatever else uses that database) never see each other's tables."""
    database = sa.engine.make_url(url).database
    return scratch_postgres(url, f"{database}_mutualaid_{os.getpid()}")


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the session (the schema comes from Alembic)."""
    if request.param == "postgres":
        assert POSTGRES_URL
        with _scratch_postgres(POSTGRES_URL) as url:
            upgrade(url)
            yield url
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url


def _empty_tables(engine: sa.Engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # Deleting claims fires the tally's triggers (migration 0006): empty it last.
            tables.sort(key=lambda name: name == "claim_tally")
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"database_url": database_url, "instance_path": tmp_path,
                      "secret_key": "test-secret"})
    app.config["TESTING"] = True
    engine = app.extensions["mutualaid"].engine
    _empty_tables(engine)
    yield app
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


_ids = itertools.count(1)


def new_id_number(*, sex: str = "M", born: date | None = None) -> str:
    """A fresh valid ID number, unique within the test run."""
    n = next(_ids)
    area = f"{330100 + n // 100:06d}"
    return make_id_number(area, born or date(1985, 6, 15), n % 100, sex)


class Api:
    """A test client speaking for one user: api.post(path, json) with the bearer token."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.token:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=self._headers(headers), **kw)

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None,
             **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self._headers(headers), **kw)


class County:
    """Builds the world a test needs through the API, as a clerk would."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client
        self._tokens: dict[str, str] = {}
        self._units = itertools.count(1)
        self.id_numbers: dict[int, str] = {}  # member id -> full ID number, for identity checks

    @property
    def today(self) -> date:
        return self.app.extensions["mutualaid"].today()

    def user(self, username: str, role: str, unit_code: str | None = None) -> Api:
        if username not in self._tokens:
            with session_scope(self.app.extensions["mutualaid"].engine) as session:
                create_user(session, username=username, role=role, password=PASSWORD,
                            unit_code=unit_code)
            answer = self.client.post("/api/v1/auth/token",
                                      json={"username": username, "password": PASSWORD})
            assert answer.status_code == 200, answer.json
            self._tokens[username] = answer.json["access_token"]
        return Api(self.client, self._tokens[username])

    @property
    def clerk(self) -> Api:
        return self.user("clerk", "clerk")

    @property
    def admin(self) -> Api:
        return self.user("admin", "admin")

    def unit_staff(self, unit_code: str) -> Api:
        return self.user(f"staff-{unit_code}", "unit_staff", unit_code)

    def unit(self, **fields: Any) -> dict[str, Any]:
        n = next(self._units)
        body = {"code": f"U{n:03d}", "name": f"单位{n}", "area": "城区",
                "union_contact": "王芳", "union_phone": "0571-0000000",
                "union_email": f"union{n}@example.org", "employee_count": 50} | fields
        answer = self.clerk.post("/api/v1/units", body)
        assert answer.status_code == 201, answer.json
        return answer.json

    def member(self, unit_code: str | None = None, *, sex: str = "M", born: date | None = None,
               name: str = "张伟") -> dict[str, Any]:
        unit_code = unit_code or self.unit()["code"]
        id_number = new_id_number(sex=sex, born=born)
        answer = self.clerk.post("/api/v1/members", {
            "unit_code": unit_code, "name": name, "id_number": id_number, "phone": "13800000000"})
        assert answer.status_code == 201, answer.json
        self.id_numbers[answer.json["id"]] = id_number
        return answer.json | {"id_number": id_number}

    def enrol(self, member: dict[str, Any], product_code: str = "inpatient", *, shares: int = 1,
              start: date | None = None, end: date | None = None) -> dict[str, Any]:
        start = start or self.today - timedelta(days=365)
        end = end or start + timedelta(days=730)
        answer = self.clerk.post("/api/v1/enrolments", {
            "id_number": member["id_number"], "product_code": product_code, "shares": shares,
            "start_date": start.isoformat(), "end_date": end.isoformat()})
        assert answer.status_code == 201, answer.json
        return answer.json

    def claim_body(self, member: dict[str, Any], product_code: str = "inpatient",
                   **fields: Any) -> dict[str, Any]:
        incident = self.today - timedelta(days=20)
        body: dict[str, Any] = {
            "id_number": member["id_number"], "product_code": product_code, "cause": "illness",
            "incident_date": incident.isoformat(),
        }
        if product_code == "inpatient":
            body |= {"admission_date": incident.isoformat(),
                     "discharge_date": (incident + timedelta(days=7)).isoformat(),
                     "hospital": "县人民医院", "diagnosis": "肺炎",
                     "total_expense": "8000.00", "insurance_paid": "4000.00",
                     "self_paid": "3000.00",
                     "documents": ["claim_form", "id_card", "invoice", "settlement_sheet",
                                   "discharge_summary"]}
        return body | fields

    def claim(self, member: dict[str, Any] | None = None, product_code: str = "inpatient",
              *, by: Api | None = None, **fields: Any) -> dict[str, Any]:
        """A logged claim of an enrolled member (complete documents unless told otherwise)."""
        if member is None:
            member = self.member()
            self.enrol(member, product_code)
        answer = (by or self.clerk).post("/api/v1/claims",
                                         self.claim_body(member, product_code, **fields))
        assert answer.status_code == 201, answer.json
        return answer.json

    def ready_claims(self, n: int) -> list[str]:
        """n claims a clerk has verified (state ready): the weekly batch will seal them."""
        numbers = []
        for _ in range(n):
            claim_no = self.claim()["claim_no"]
            assert self.fire(claim_no, "verify").status_code == 200
            numbers.append(claim_no)
        return numbers

    def fire(self, claim_no: str, event: str, *, by: Api | None = None, **fields: Any) -> Any:
        return (by or self.clerk).post(f"/api/v1/claims/{claim_no}/events",
                                       {"event": event, **fields})


@pytest.fixture
def county(app: Flask, client: FlaskClient) -> County:
    return County(app, client)

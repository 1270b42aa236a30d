"""Baselines for the status check and creation, served by the same gunicorn as the app.

`python -m bench load` serves `create_bench_app()`: the real app, plus routes that do an
endpoint's database work and little else, so each figure is a ratio in the same run:

- `POST /bench/status-raw`: the status check's one statement (workflows.status, compiled once
  for the database) run on the driver's connection, one kept per worker, its rows answered as
  JSON: the raw SQL doing the same work;
- `POST /bench/status-core`: the same statement through SQLAlchemy on the request's pooled
  reading connection (claims.runtime.get_reads), as the status check runs it;
- `POST /bench/create-raw`: a claim's creation as raw SQL on the driver: the token's lookup, the
  member's (workflows.intake.MEMBER_AND_CLAIMS), then the claim number, the claim and its
  audit event in one transaction (SQLite) or one statement (PostgreSQL), the same statements
  the app runs. The estimate is one line of arithmetic, not the product's rules.

None validates its body, counts wrong guesses or goes through flask-smorest and marshmallow:
what an endpoint costs beyond its baseline is that (docs/performance.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, jsonify, request

from claims.app import create_app
from claims.auth import TOKEN_HOLDER, token_digest
from claims.money import format_fen
from claims.runtime import get_reads
from workflows.intake import (
    INSERT_CLAIM,
    INSERT_EVENT,
    MEMBER_AND_CLAIMS,
    NEXT_NUMBER,
    RECORD_AT_ONCE,
)
from workflows.status import STATUS_QUERIES

STATUS_RAW, STATUS_CORE, CREATE_RAW = "/bench/status-raw", "/bench/status-core", "/bench/create-raw"
# Where a status row's fields are in the statement's columns (workflows.status._status_rows).
_CLAIM_NO, _STATE, _EVENT = 1, 2, -3
_CLAIM_COLUMNS = [c.key for c in INSERT_CLAIM.table.columns if c.key != "id"]  # type: ignore[attr-defined]


class RawStatements:
    """The app's prebuilt statements, compiled once for the database and run on the driver's
    connection, one kept per worker for its life (opened after gunicorn forks; never returned
    to the pool). Autocommit on both databases (claims.db.make_engine)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._compiled: dict[int, tuple[str, dict[str, Any], Sequence[str] | None]] = {}
        self._held: dict[int, Any] = {}

    @property
    def connection(self) -> Any:
        held = self._held.get(os.getpid())
        if held is None:
            held = self._held[os.getpid()] = self.engine.raw_connection().driver_connection
        return held

    def run(self, statement: Any, values: dict[str, Any]) -> Any:
        """The statement with `values` (Python values, converted as the driver takes them)."""
        key = id(statement)
        if key not in self._compiled:
            compiled = statement.compile(self.engine, column_keys=list(values))
            self._compiled[key] = (str(compiled), dict(compiled.params), compiled.positiontup)
        sql, fixed, order = self._compiled[key]
        given = {**fixed, **{name: self._value(v) for name, v in values.items()}}
        return self.connection.execute(sql, tuple(given[n] for n in order) if order else given)

    def _value(self, value: Any) -> Any:
        if isinstance(value, list | dict):
            return json.dumps(value, ensure_ascii=False)
        if not self.sqlite:
            return value
        if isinstance(value, datetime):  # claims.models.UTCDateTime keeps naive UTC there
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        if isinstance(value, date):
            return value.isoformat()
        return int(value) if isinstance(value, bool) else value


def _status_answer(rows: Iterable[Sequence[Any]]) -> Any:
    """The matching claims with their events' names, as JSON."""
    claims: dict[str, dict[str, Any]] = {}
    for row in rows:
        claim = claims.setdefault(row[_CLAIM_NO], {"claim_no": row[_CLAIM_NO],
                                                   "state": row[_STATE], "timeline": []})
        if row[_EVENT] is not None:
            claim["timeline"].append(row[_EVENT])
    return jsonify(claims=list(claims.values()))


def _status_query() -> dict[str, Any]:
    body = request.get_json()
    return {"claim_no": body["claim_no"], "id_last6": body["id_last6"]}


def _create(raw: RawStatements) -> Any:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    holder = raw.run(TOKEN_HOLDER, {"digest": token_digest(token)}).fetchone()
    if holder is None:
        abort(401)
    body = request.get_json()
    incident = date.fromisoformat(body["incident_date"])
    member = raw.run(MEMBER_AND_CLAIMS, {
        "id_number": body["id_number"], "product_code": body["product_code"],
        "incident_date": incident, "year_start": date(incident.year, 1, 1),
        "year_end": date(incident.year, 12, 31)}).fetchone()
    _id, _name, _number, unit_id, _code, enrolment_id, shares = member[:7]
    fen = {k: round(float(body[k]) * 100) for k in ("total_expense", "insurance_paid", "self_paid")}
    now = datetime.now(UTC)
    claim = {name: None for name in _CLAIM_COLUMNS} | fen | {
        "member_id": _id, "unit_id": unit_id, "product_code": body["product_code"],
        "enrolment_id": enrolment_id, "cause": body["cause"], "incident_date": incident,
        "admission_date": date.fromisoformat(body["admission_date"]),
        "discharge_date": date.fromisoformat(body["discharge_date"]),
        "hospital": body["hospital"], "diagnosis": body["diagnosis"], "death": False,
        "documents": [{"code": c, "status": "received", "reason": None}
                      for c in body["documents"]],
        "estimate": max(0, fen["self_paid"] - 50_000) // 2 * (shares or 1),
        "above_estimate": False, "state": "logged", "version": 1,
        "logged_on": now.date(), "logged_at": now, "updated_at": now}
    event = {"event": "log", "from_state": None, "to_state": "logged", "version": 1,
             "actor": holder[2], "at": now, "reason_code": None,
             "payload": {"estimate": format_fen(claim["estimate"]), "missing_documents": []}}
    if raw.sqlite:
        raw.connection.execute("BEGIN IMMEDIATE")
        try:
            (last,) = raw.run(NEXT_NUMBER, {"counter_year": incident.year}).fetchone()
            claim["claim_no"] = f"LP{incident.year}-{last:06d}"
            (claim_id,) = raw.run(INSERT_CLAIM, claim).fetchone()
            raw.run(INSERT_EVENT, {**event, "claim_id": claim_id})
            raw.connection.execute("COMMIT")
        except BaseException:
            raw.connection.execute("ROLLBACK")
            raise
    else:
        values = {k: v for k, v in claim.items() if k != "claim_no"}
        _claim_id, claim["claim_no"] = raw.run(RECORD_AT_ONCE, {
            **values, **event, "counter_year": incident.year}).fetchone()
    return jsonify(claim_no=claim["claim_no"], state="logged"), 201


def create_bench_app() -> Flask:
    """The app with the baseline routes (gunicorn 'bench.floor:create_bench_app()')."""
    app = create_app()
    raw = RawStatements(app.extensions["mutualaid"].engine)

    def status_raw() -> Any:
        return _status_answer(raw.run(STATUS_QUERIES["claim_no"], _status_query()).fetchall())

    def status_core() -> Any:
        return _status_answer(get_reads().execute(STATUS_QUERIES["claim_no"],
                                                  _status_query()).all())

    app.add_url_rule(STATUS_RAW, "bench_status_raw", status_raw, methods=["POST"])
    app.add_url_rule(STATUS_CORE, "bench_status_core", status_core, methods=["POST"])
    app.add_url_rule(CREATE_RAW, "bench_create_raw", lambda: _create(raw), methods=["POST"])
    return app

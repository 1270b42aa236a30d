"""The demo county (`mutualaid demo`): shaped like the real one, loaded once, trails that replay."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import SQLModel, select

from claims.db import session_scope
from claims.demo import PASSWORD, load_demo, plan_members, plan_units
from claims.idcard import parse_id_number
from claims.models import (
    Batch,
    Claim,
    ClaimEvent,
    Enrolment,
    Member,
    Remittance,
    RemittanceItem,
    Unit,
)
from claims.rules import enrolment_problems
from workflows.lifecycle import STATES

ACTORS = {"clerk", "job:weekly_batch", "job:dispatch_notifications"}


def _rows(app: Flask, query: Any) -> list[Any]:
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        return list(session.exec(query).all())


def _table_counts(app: Flask) -> dict[str, int]:
    engine = app.extensions["mutualaid"].engine
    with engine.connect() as connection:
        return {table.name: connection.scalar(select(sa.func.count()).select_from(table))
                for table in SQLModel.metadata.sorted_tables}


def _sign_in(client: FlaskClient, username: str) -> str:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.json
    return answer.json["access_token"]


def test_demo_loads_a_county_shaped_like_the_real_one_and_only_once(app: Flask) -> None:
    summary = load_demo(app.extensions["mutualaid"])
    _check_register(app, summary)
    _check_claims(app, summary)
    _check_audit_trails(app)
    _check_the_past_year(app)
    before = _table_counts(app)
    assert "already loaded" in load_demo(app.extensions["mutualaid"])
    assert _table_counts(app) == before


def _check_register(app: Flask, summary: str) -> None:
    """65 units, 1,937 members with valid ID numbers, inpatient for all, enrolments by the rules."""
    runtime = app.extensions["mutualaid"]
    today = runtime.today()
    units = _rows(app, select(Unit))
    members = _rows(app, select(Member))
    enrolments = _rows(app, select(Enrolment))
    assert len(units) == 65 and len(members) == 1937
    assert len({u.name for u in units}) == 65
    assert sorted(u.code for u in units) == [f"U{n:03d}" for n in range(1, 66)]
    assert 2300 <= sum(u.employee_count for u in units) <= 2600
    per_unit = Counter(m.unit_id for m in members)
    assert all(0 < per_unit[u.id] <= u.employee_count for u in units)
    assert len({m.id_number for m in members}) == 1937
    for member in members:
        parsed = parse_id_number(member.id_number)
        assert (parsed.birth_date, parsed.sex) == (member.birth_date, member.sex)
    assert {m.sex for m in members} == {"M", "F"}
    by_member = {m.id: m for m in members}
    inpatient = {e.member_id for e in enrolments if e.product_code == "inpatient"}
    assert inpatient == set(by_member)
    assert {e.product_code for e in enrolments} == set(runtime.catalogue.products)
    for enrolment in enrolments:
        member = by_member[enrolment.member_id]
        product = runtime.catalogue.get(enrolment.product_code)
        assert enrolment.start_date <= today <= enrolment.end_date
        assert not enrolment_problems(product, birth_date=member.birth_date, sex=member.sex,
                                      start_date=enrolment.start_date,
                                      end_date=enrolment.end_date, shares=enrolment.shares)
    assert "65 units, 1,937 members" in summary and PASSWORD in summary


def _check_claims(app: Flask, summary: str) -> None:
    """Claims of every product in every state, duplicates among them."""
    claims = _rows(app, select(Claim))
    assert 120 <= len(claims) <= 200
    states = Counter(c.state for c in claims)
    assert set(states) == set(STATES)
    for state, count in states.items():
        assert re.search(rf"^ +{state} +{count} ", summary, re.MULTILINE), summary
    assert {c.product_code for c in claims} == set(app.extensions["mutualaid"].catalogue.products)
    pending = [c for c in claims if c.state == "pending_materials"]
    assert all(any(d["status"] == "rejected" and d["reason"] for d in c.documents)
               for c in pending)
    logged = [c for c in claims if c.state == "logged"]
    assert any(d["status"] == "missing" for c in logged for d in c.documents)
    ready = [c for c in claims if c.state == "ready"]
    assert all(d["status"] == "received" for c in ready for d in c.documents)
    incidents = Counter((c.member_id, c.product_code, c.incident_date) for c in claims)
    assert any(incidents[(c.member_id, c.product_code, c.incident_date)] > 1 for c in logged)
    today = app.extensions["mutualaid"].today()
    assert all(c.incident_date <= today and c.estimate > 0 for c in claims)


def _check_audit_trails(app: Flask) -> None:
    """Every claim's trail starts with log and replays, event by event, to its state."""
    claims = _rows(app, select(Claim))
    trails: dict[int, list[ClaimEvent]] = {}
    for event in _rows(app, select(ClaimEvent).order_by(ClaimEvent.id)):
        trails.setdefault(event.claim_id, []).append(event)
    for claim in claims:
        trail = trails[claim.id]
        assert (trail[0].event, trail[0].from_state, trail[0].to_state) == ("log", None, "logged")
        for before, after in zip(trail, trail[1:], strict=False):
            assert after.from_state == before.to_state
        assert [e.version for e in trail] == list(range(1, len(trail) + 1))
        assert trail[-1].to_state == claim.state and trail[-1].version == claim.version
        assert {e.actor for e in trail} <= ACTORS
        assert [e.at for e in trail] == sorted(e.at for e in trail)


def _check_the_past_year(app: Flask) -> None:
    """A year of claims across the weeks; batches and remittances add up to their claims."""
    claims = _rows(app, select(Claim))
    today = app.extensions["mutualaid"].today()
    weeks = {c.logged_on.isocalendar()[:2] for c in claims}
    assert len(weeks) >= 30 and min(c.logged_on for c in claims) >= today - timedelta(days=366)
    for batch in _rows(app, select(Batch)):
        inside = [c for c in claims if c.batch_id == batch.id]
        assert batch.claim_count == len(inside) > 0
        assert batch.total_claimed == sum(c.estimate for c in inside)
        assert all(c.state != "batched" for c in inside) == (batch.delivered_at is not None)
    items = _rows(app, select(RemittanceItem))
    for remittance in _rows(app, select(Remittance)):
        assert remittance.total_amount == sum(i.amount for i in items
                                              if i.remittance_id == remittance.id)
    collected = [c for c in claims if c.state == "collected"]
    assert collected and all(c.paid_amount == c.approved_amount and c.receipt_no
                             for c in collected)


def test_demo_county_is_the_same_for_a_seed() -> None:
    def county(seed: int) -> tuple[list[str], list[str]]:
        rng = random.Random(seed)
        units = plan_units(rng)
        for n, (unit, _, _) in enumerate(units, start=1):
            unit.id = n
        members = plan_members(rng, units, date(2026, 11, 25))
        return [u.name for u, _, _ in units], [m.id_number for m in members]

    assert county(7) == county(7)
    assert [u.name for u, _, _ in plan_units(random.Random(8))] != county(7)[0]


def test_mutualaid_demo_command_loads_a_county_its_users_can_work_in(
        app: Flask, runner: Any, client: FlaskClient) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Demo logins" in result.output and PASSWORD in result.output
    tokens = {username: _sign_in(client, username) for username in ("admin", "clerk", "unit001")}
    answer = client.get("/api/v1/claims", query_string={"page_size": 100},
                        headers={"Authorization": f"Bearer {tokens['unit001']}"})
    assert answer.status_code == 200
    assert {claim["unit_code"] for claim in answer.json} <= {"U001"}
    # Logged claims wait for documents, or are duplicates: dates and coverage are in order.
    for claim in _rows(app, select(Claim).where(Claim.state == "logged").order_by(Claim.id)):
        answer = client.post(f"/api/v1/claims/{claim.claim_no}/events", json={"event": "verify"},
                             headers={"Authorization": f"Bearer {tokens['clerk']}"})
        if answer.status_code != 200:
            assert answer.status_code == 422, answer.json
            codes = {error["code"] for error in answer.json["errors"]}
            assert codes <= {"documents_incomplete", "duplicate_claim"}, answer.json
    again = runner.invoke(args=["demo", "--seed", "7"])
    assert again.exit_code == 0 and "already loaded" in again.output

"""SPEC §2 Remittance, §3 receive_funds, §4 payout notices, §7 POST /remittances."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import select

from claims.auth import system_actor
from claims.db import session_scope
from claims.models import Batch, Claim, ClaimEvent, Notification, Remittance, RemittanceItem
from workflows.batch import deliver_batch, seal_weekly_batch

REMITTANCES = "/api/v1/remittances"


# --- the world: claims the city office approved ---------------------------------------------


def approved_claims(app: Flask, county: Any, *amounts: str) -> list[str]:
    """One claim per amount, delivered in a batch and approved with that amount."""
    claim_nos = [county.claim()["claim_no"] for _ in amounts]
    for claim_no in claim_nos:
        assert county.fire(claim_no, "verify").status_code == 200
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        batch = seal_weekly_batch(session, runtime, system_actor("weekly_batch")).batch
        assert batch is not None
        deliver_batch(session, batch, system_actor("transmission"))
        batch_no = batch.batch_no
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": claim_no, "outcome": "approved", "approved_amount": amount}
        for claim_no, amount in zip(claim_nos, amounts, strict=True)]})
    assert answer.status_code == 200, answer.json
    return claim_nos


def remittance(county: Any, reference: str = "市总拨付2026-001", *,
               items: list[tuple[str, str]], total: str | None = None,
               received_on: Any = None, by: Any = None) -> Any:
    if total is None:
        total = f"{sum(int(amount.replace('.', '')) for _, amount in items) / 100:.2f}"
    body = {"reference": reference,
            "received_on": (received_on or county.today).isoformat(),
            "total_amount": total,
            "items": [{"claim_no": claim_no, "amount": amount} for claim_no, amount in items]}
    return (by or county.clerk).post(REMITTANCES, body)


def snapshot(app: Flask) -> dict[str, Any]:
    """Everything a refused remittance must leave as it was."""
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        def count(table: Any) -> int:
            return session.exec(select(sa.func.count()).select_from(table)).one()

        claims = {c.claim_no: (c.state, c.version) for c in session.exec(select(Claim))}
        return {"claims": claims, "events": count(ClaimEvent), "messages": count(Notification),
                "remittances": count(Remittance), "items": count(RemittanceItem)}


def error_fields(answer: Any, status: int = 422) -> dict[str, str]:
    assert answer.status_code == status, (answer.status_code, answer.json)
    assert {"code", "message", "errors"} <= set(answer.json)
    return {item["field"]: item["code"] for item in answer.json["errors"]}


# --- recording money received -------------------------------------------------------------


def test_a_remittance_moves_each_claim_to_funds_received_and_queues_the_notices(app, county):
    first, second = approved_claims(app, county, "1250.00", "800.50")
    answer = remittance(county, items=[(first, "1250.00"), (second, "800.50")], total="2050.50")
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["reference"] == "市总拨付2026-001"
    assert body["received_on"] == county.today.isoformat()
    assert body["total_amount"] == "2050.50"
    assert body["items"] == [{"claim_no": first, "amount": "1250.00"},
                             {"claim_no": second, "amount": "800.50"}]
    assert body["recorded_by"] == "clerk" and body["recorded_at"] and body["id"]
    for claim_no, amount in ((first, "1250.00"), (second, "800.50")):
        claim = county.clerk.get(f"/api/v1/claims/{claim_no}").json
        assert claim["state"] == "funds_received"
        trail = county.clerk.get(f"/api/v1/claims/{claim_no}/events").json
        assert trail[-1]["event"] == "receive_funds"
        assert (trail[-1]["from_state"], trail[-1]["to_state"]) == ("approved", "funds_received")
        assert trail[-1]["payload"] == {"amount": amount}
        assert sum(e["event"] == "receive_funds" for e in trail) == 1


def test_the_payout_notices_go_to_the_unit_union_and_the_worker(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    assert remittance(county, items=[(claim_no, "1250.00")]).status_code == 201
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        claim = session.exec(select(Claim).where(Claim.claim_no == claim_no)).one()
        messages = session.exec(select(Notification).where(Notification.claim_id == claim.id)
                                .order_by(Notification.id)).all()
        member_id_number = session.exec(
            sa.text("SELECT id_number FROM member WHERE id = :id"), params={"id": claim.member_id}
        ).scalar_one()
    assert [(m.recipient_kind, m.template, m.state) for m in messages] == [
        ("unit", "funds_received", "pending"), ("worker", "funds_received_worker", "pending")]
    assert all(m.unit_id == claim.unit_id for m in messages)
    payload = messages[0].payload
    assert payload["claim_no"] == claim_no
    assert payload["member_name"] == "张伟"
    assert payload["amount"] == "1250.00"
    assert payload["collection_place"] == "县总工会互助保障代办点"
    assert payload["collection_hours"] == "工作日 8:30-11:30, 14:30-17:00"
    assert "身份证原件" in payload["bring"] and "授权委托书" in payload["bring"]
    assert messages[1].payload == payload
    assert member_id_number not in json.dumps(payload, ensure_ascii=False)


def test_the_collection_place_and_hours_are_configuration(app, county):
    from dataclasses import replace

    runtime = app.extensions["mutualaid"]
    runtime.settings = replace(runtime.settings, collection_place="城关镇便民服务中心",
                               collection_hours="周一至周五上午")
    (claim_no,) = approved_claims(app, county, "1250.00")
    assert remittance(county, items=[(claim_no, "1250.00")]).status_code == 201
    with session_scope(runtime.engine, write=False) as session:
        payload = session.exec(select(Notification.payload)).first()
    assert (payload["collection_place"], payload["collection_hours"]) == (
        "城关镇便民服务中心", "周一至周五上午")


def test_notifications_dispatched_move_the_claim_to_notified(app, county):
    from workflows.notify import dispatch_due

    (claim_no,) = approved_claims(app, county, "1250.00")
    assert remittance(county, items=[(claim_no, "1250.00")]).status_code == 201
    summary = dispatch_due(app.extensions["mutualaid"])
    assert (summary.sent, summary.notified) == (2, 1)
    assert county.clerk.get(f"/api/v1/claims/{claim_no}").json["state"] == "notified"


def test_items_not_adding_up_to_the_total_answer_422_and_change_nothing(app, county):
    first, second = approved_claims(app, county, "1250.00", "1000.00")
    before = snapshot(app)
    answer = remittance(county, items=[(first, "1250.00"), (second, "1000.00")], total="2250.01")
    assert error_fields(answer) == {"total_amount": "total_mismatch"}
    assert snapshot(app) == before


def test_an_item_differing_from_the_approved_amount_answers_422(app, county):
    first, second = approved_claims(app, county, "1250.00", "1000.00")
    before = snapshot(app)
    answer = remittance(county, items=[(first, "1250.00"), (second, "999.99")])
    assert error_fields(answer) == {"items.1.amount": "amount_mismatch"}
    assert snapshot(app) == before


def test_a_claim_not_approved_answers_422(app, county):
    (approved,) = approved_claims(app, county, "1250.00")
    logged = county.claim()["claim_no"]
    before = snapshot(app)
    answer = remittance(county, items=[(approved, "1250.00"), (logged, "1250.00"),
                                       ("LP1999-999999", "10.00")])
    assert error_fields(answer) == {"items.1.claim_no": "not_approved",
                                    "items.2.claim_no": "unknown_claim"}
    assert snapshot(app) == before


def test_the_same_claim_twice_answers_422(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    before = snapshot(app)
    answer = remittance(county, items=[(claim_no, "1250.00"), (claim_no, "1250.00")])
    assert error_fields(answer) == {"items.1.claim_no": "duplicate_claim"}
    assert snapshot(app) == before


def test_a_duplicate_reference_answers_409(app, county):
    first, second = approved_claims(app, county, "1250.00", "1000.00")
    assert remittance(county, "REF-1", items=[(first, "1250.00")]).status_code == 201
    before = snapshot(app)
    answer = remittance(county, "REF-1", items=[(second, "1000.00")])
    assert error_fields(answer, 409) == {"reference": "duplicate_reference"}
    assert answer.json["code"] == "duplicate_reference"
    assert snapshot(app) == before


@pytest.mark.parametrize("again", ["REF-1 ", " REF-1", "REF-1\t"],
                         ids=["trailing-space", "leading-space", "trailing-tab"])
def test_a_reference_recorded_already_answers_409_whatever_spaces_surround_it(app, county,
                                                                             again):
    first, second = approved_claims(app, county, "1250.00", "1000.00")
    assert remittance(county, " REF-1 ", items=[(first, "1250.00")]).status_code == 201
    assert county.clerk.get(f"{REMITTANCES}/REF-1").json["reference"] == "REF-1"
    before = snapshot(app)
    answer = remittance(county, again, items=[(second, "1000.00")])
    assert error_fields(answer, 409) == {"reference": "duplicate_reference"}
    assert snapshot(app) == before


def test_claim_numbers_in_a_remittance_are_taken_without_surrounding_spaces(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    answer = remittance(county, items=[(f" {claim_no} ", "1250.00")])
    assert answer.status_code == 201, answer.json
    assert answer.json["items"] == [{"claim_no": claim_no, "amount": "1250.00"}]


def test_a_claim_paid_already_cannot_be_paid_again(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    assert remittance(county, "REF-1", items=[(claim_no, "1250.00")]).status_code == 201
    answer = remittance(county, "REF-2", items=[(claim_no, "1250.00")])
    assert error_fields(answer) == {"items.0.claim_no": "already_received"}
    assert "already received" in answer.json["errors"][0]["message"]


def test_money_received_tomorrow_answers_422(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    before = snapshot(app)
    answer = remittance(county, items=[(claim_no, "1250.00")],
                        received_on=county.today + timedelta(days=1))
    assert error_fields(answer) == {"received_on": "date_in_future"}
    assert snapshot(app) == before


def _delivered_days_ago(app: Flask, claim_no: str, days: int) -> None:
    """Move the delivery of the claim's batch `days` back (02:00 UTC: 10:00 in Beijing)."""
    with session_scope(app.extensions["mutualaid"].engine) as session:
        claim = session.exec(select(Claim).where(Claim.claim_no == claim_no)).one()
        batch = session.get(Batch, claim.batch_id)
        day = app.extensions["mutualaid"].today() - timedelta(days=days)
        batch.delivered_at = datetime.combine(day, time(2), tzinfo=UTC)
        session.add(batch)


def test_money_received_earlier_is_recorded(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    _delivered_days_ago(app, claim_no, 5)
    answer = remittance(county, items=[(claim_no, "1250.00")],
                        received_on=county.today - timedelta(days=3))
    assert answer.status_code == 201, answer.json


def test_money_dated_before_the_city_office_had_the_claim_is_refused(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    _delivered_days_ago(app, claim_no, 5)
    before = snapshot(app)
    answer = remittance(county, items=[(claim_no, "1250.00")],
                        received_on=county.today - timedelta(days=6))
    assert error_fields(answer) == {"received_on": "before_delivery"}
    assert claim_no in answer.json["errors"][0]["message"]
    assert snapshot(app) == before
    on_the_day = remittance(county, items=[(claim_no, "1250.00")],
                            received_on=county.today - timedelta(days=5))
    assert on_the_day.status_code == 201, on_the_day.json


@pytest.mark.parametrize(("change", "field"), [
    ({"items": []}, "items"),
    ({"received_on": "2026-02-30"}, "received_on"),
    ({"total_amount": "2.345"}, "total_amount"),
    ({"reference": "x" * 201}, "reference"),
    ({"reference": "   "}, "reference"),
    ({"bank": "ICBC"}, "bank"),
    ({"items": [{"claim_no": "LP2026-000001", "amount": "1.00", "note": "x"}]}, "items.0.note"),
    ({"items": [{"claim_no": "LP2026-000001"}]}, "items.0.amount"),
])
def test_a_malformed_remittance_answers_422_naming_the_field(county, change, field):
    body = {"reference": "R1", "received_on": county.today.isoformat(), "total_amount": "1.00",
            "items": [{"claim_no": "LP2026-000001", "amount": "1.00"}]} | change
    assert field in error_fields(county.clerk.post(REMITTANCES, body))


def test_unit_staff_may_not_touch_remittances(app, county):
    staff = county.unit_staff(county.unit()["code"])
    assert staff.get(REMITTANCES).status_code == 403
    assert staff.get(f"{REMITTANCES}/R1").status_code == 403
    answer = staff.post(REMITTANCES, {"reference": "R1", "received_on": "2026-01-05",
                                      "total_amount": "1.00", "items": []})
    assert answer.status_code == 403


# --- reading them back --------------------------------------------------------------------


def test_remittances_are_listed_newest_first_and_shown_by_reference(app, county):
    claim_nos = approved_claims(app, county, "1250.00", "1000.00", "900.00")
    for n, (claim_no, amount) in enumerate(zip(claim_nos, ("1250.00", "1000.00", "900.00"),
                                               strict=True)):
        assert remittance(county, f"REF/{n}", items=[(claim_no, amount)]).status_code == 201
    answer = county.admin.get(REMITTANCES, query_string={"page_size": 2})
    assert answer.status_code == 200
    assert [r["reference"] for r in answer.json] == ["REF/2", "REF/1"]
    assert answer.json[0]["items"] == [{"claim_no": claim_nos[2], "amount": "900.00"}]
    assert json.loads(answer.headers["X-Pagination"])["total"] == 3
    shown = county.clerk.get(f"{REMITTANCES}/REF/0")
    assert shown.status_code == 200
    assert shown.json["total_amount"] == "1250.00"
    assert shown.json["items"] == [{"claim_no": claim_nos[0], "amount": "1250.00"}]
    missing = county.clerk.get(f"{REMITTANCES}/NOPE")
    assert missing.status_code == 404 and missing.json["code"] == "not_found"


def test_two_clerks_paying_one_claim_at_once_pay_it_once(app, county):
    (claim_no,) = approved_claims(app, county, "1250.00")
    token, barrier, statuses = county.clerk.token, threading.Barrier(3), []

    def record(reference: str) -> None:
        clerk = type(county.clerk)(app.test_client(), token)
        barrier.wait()
        statuses.append(remittance(county, reference, items=[(claim_no, "1250.00")],
                                   by=clerk).status_code)

    threads = [threading.Thread(target=record, args=(ref,)) for ref in ("A", "B", "A")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses)[0] == 201 and sorted(statuses)[1:] in ([409, 422], [422, 422])
    trail = county.clerk.get(f"/api/v1/claims/{claim_no}/events").json
    assert [e["event"] for e in trail].count("receive_funds") == 1
    assert snapshot(app)["remittances"] == 1

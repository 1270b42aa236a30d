"""Reconciliation (对账) to the fen: a small county's hand-computed year balances; then each
kind of discrepancy, injected straight into the database where the API would refuse it, is
reported exactly once and nothing else is flagged."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO
from typing import Any
from urllib.parse import quote

import openpyxl
import pytest
import sqlalchemy as sa

from claims.db import session_scope
from workflows.notify import dispatch_due
from workflows.reconcile import KINDS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _engine(app: Any) -> sa.Engine:
    return app.extensions["mutualaid"].engine


def _sql(app: Any, statement: str, **params: Any) -> None:
    with session_scope(_engine(app)) as session:
        session.execute(sa.text(statement), params)


def _claim_id(app: Any, claim_no: str) -> int:
    with session_scope(_engine(app)) as session:
        return int(session.execute(sa.text("SELECT id FROM claim WHERE claim_no = :no"),
                                   {"no": claim_no}).scalar_one())


@pytest.fixture
def year(app: Any, county: Any) -> dict[str, Any]:
    """Five claims of 1,250.00 estimated each, in one batch, decided and paid as follows:
    c1 approved 1,000.00, remitted and collected; c2 approved 1,250.00, remitted, union told;
    c3 approved 800.00, no money yet; c4 rejected; c5 returned for materials."""
    claims = [county.claim() for _ in range(5)]
    for claim in claims:
        assert county.fire(claim["claim_no"], "verify").status_code == 200
    batch = county.clerk.post("/api/v1/batches", {}).json
    assert batch["claim_count"] == 5 and batch["total_claimed"] == "6250.00"
    batch_no = batch["batch_no"]
    delivered = county.clerk.post(f"/api/v1/batches/{batch_no}/events", {"event": "deliver"})
    assert delivered.status_code == 200, delivered.json
    c1, c2, c3, c4, c5 = (c["claim_no"] for c in claims)
    decided = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": c1, "outcome": "approved", "approved_amount": "1000.00"},
        {"claim_no": c2, "outcome": "approved", "approved_amount": "1250.00"},
        {"claim_no": c3, "outcome": "approved", "approved_amount": "800.00"},
        {"claim_no": c4, "outcome": "rejected", "reason_code": "waiting_period"},
        {"claim_no": c5, "outcome": "returned", "reason_code": "missing_discharge_summary"},
    ]})
    assert decided.status_code == 200, decided.json
    remitted = county.clerk.post("/api/v1/remittances", {
        "reference": "CITY-2026-001", "received_on": county.today.isoformat(),
        "total_amount": "2250.00",
        "items": [{"claim_no": c1, "amount": "1000.00"}, {"claim_no": c2, "amount": "1250.00"}]})
    assert remitted.status_code == 201, remitted.json
    dispatch_due(app.extensions["mutualaid"])
    collected = county.fire(c1, "collect", id_number=county.id_numbers[claims[0]["member_id"]],
                            amount="1000.00", receipt_no="R-0001")
    assert collected.status_code == 200, collected.json
    return {"batch_no": batch_no, "claims": (c1, c2, c3, c4, c5)}


def _reconcile(county: Any, **query: Any) -> dict[str, Any]:
    answer = county.clerk.get("/api/v1/reconciliation", query_string=query)
    assert answer.status_code == 200, answer.json
    return answer.json


HAND_COMPUTED = {
    "claims": 5, "claimed": "5000.00", "approved_count": 3, "approved": "3050.00",
    "rejected_count": 1, "rejected": "1250.00", "returned_count": 1, "remitted": "2250.00",
    "paid": "1000.00", "awaiting_funds": "800.00", "awaiting_collection": "1250.00",
    "outstanding": "2050.00",
}


def test_a_hand_computed_year_balances_to_the_fen(county, year):
    result = _reconcile(county)
    assert result["balanced"] is True
    assert result["discrepancies"] == [] and result["discrepancy_counts"] == {}
    assert result["totals"] == HAND_COMPUTED
    assert all(check["equal"] for check in result["checks"]), result["checks"]
    by_name = {check["name"]: check for check in result["checks"]}
    assert by_name["batch_totals"]["left"] == "5000.00"  # 6,250.00 sealed less the return
    assert by_name["remittances"]["left"] == by_name["remittances"]["right"] == "2250.00"
    (batch,) = result["batches"]
    assert batch["batch_no"] == year["batch_no"]
    assert batch["recorded_claim_count"] == batch["batch_claim_count"] == 4
    assert batch["recorded_total_claimed"] == batch["batch_claimed"] == "5000.00"
    assert {k: batch[k] for k in HAND_COMPUTED} == HAND_COMPUTED | {"claims": 4}
    (row,) = result["years"]
    assert row["year"] == county.today.year and row["product_code"] == "inpatient"
    assert {k: row[k] for k in HAND_COMPUTED} == HAND_COMPUTED
    assert row["subsidy_committed"] == "150.00"  # five members, one 30.00 share each


def test_filters_narrow_the_reconciliation_and_unknown_ones_are_refused(county, year):
    assert _reconcile(county, batch_no=year["batch_no"])["totals"]["approved"] == "3050.00"
    other_year = _reconcile(county, year=county.today.year - 1)
    assert other_year["totals"]["claims"] == 0 and other_year["balanced"] is True
    unit_code = county.clerk.get(f"/api/v1/claims/{year['claims'][0]}").json["unit_code"]
    one_unit = _reconcile(county, unit_code=unit_code)
    assert one_unit["totals"]["paid"] == "1000.00" and one_unit["totals"]["claims"] == 1
    for query, field in (({"batch_no": "2001-W01"}, "batch_no"),
                         ({"unit_code": "NOPE"}, "unit_code"), ({"colour": "red"}, "colour")):
        refused = county.clerk.get("/api/v1/reconciliation", query_string=query)
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json["errors"]] == [field]
    staff = county.unit_staff(unit_code)
    assert staff.get("/api/v1/reconciliation").status_code == 403


def test_each_discrepancy_injected_once_is_reported_once_and_nothing_else(app, county, year):
    c1, c2, c3, c4, _c5 = year["claims"]
    today = county.today
    injections: list[tuple[str, list[str], Any]] = [
        # Approved 31 days ago and still no money (N = 30 by default).
        ("approved_not_remitted", [c3], lambda: _sql(
            app, "UPDATE claim SET approved_on = :day WHERE claim_no = :no",
            day=today - timedelta(days=31), no=c3)),
        # The city office sent 1.00 more than it approved, and its total says so too.
        ("remitted_differs", [c2], lambda: (
            _sql(app, "UPDATE remittance_item SET amount = amount + 100 WHERE claim_id = :id",
                 id=_claim_id(app, c2)),
            _sql(app, "UPDATE remittance SET total_amount = total_amount + 100"))),
        ("paid_differs", [c1], lambda: _sql(
            app, "UPDATE claim SET paid_amount = 99900 WHERE claim_no = :no", no=c1)),
        # Money for a claim the city office rejected.
        ("remitted_not_approved", [c4], lambda: (
            _sql(app, "INSERT INTO remittance (reference, received_on, total_amount, "
                      "recorded_by, recorded_at) VALUES ('CITY-X', :day, 50000, 'clerk', :at)",
                 day=today, at=str(today) + " 08:00:00"),
            _sql(app, "INSERT INTO remittance_item (remittance_id, claim_id, amount) "
                      "SELECT id, :claim, 50000 FROM remittance WHERE reference = 'CITY-X'",
                 claim=_claim_id(app, c4)))),
        # The money for c2 (and the collected c1) arrived 31 days ago; c2 is still waiting.
        ("uncollected", [c2], lambda: _sql(
            app, "UPDATE remittance SET received_on = :day WHERE reference = 'CITY-2026-001'",
            day=today - timedelta(days=31))),
        ("batch_total_differs", [c1, c2, c3, c4], lambda: _sql(
            app, "UPDATE batch SET total_claimed = total_claimed + 1")),
        ("remittance_total_differs", [c4], lambda: _sql(
            app, "UPDATE remittance SET total_amount = 60000 WHERE reference = 'CITY-X'")),
    ]
    assert [kind for kind, _, _ in injections] == list(KINDS)
    expected: dict[str, list[str]] = {}
    for kind, claims, inject in injections:
        inject()
        expected[kind] = sorted(claims)
        result = _reconcile(county)
        found = {d["kind"]: sorted(d["claims"]) for d in result["discrepancies"]}
        assert len(result["discrepancies"]) == len(expected), (kind, result["discrepancies"])
        assert found == expected, kind
        assert result["balanced"] is False
    by_kind = {d["kind"]: d for d in _reconcile(county)["discrepancies"]}
    assert by_kind["remitted_differs"]["expected"] == "1250.00"
    assert by_kind["remitted_differs"]["actual"] == "1251.00"
    assert by_kind["paid_differs"]["actual"] == "999.00"
    assert by_kind["batch_total_differs"]["batch_no"] == year["batch_no"]
    assert by_kind["remittance_total_differs"]["reference"] == "CITY-X"
    assert by_kind["approved_not_remitted"]["since"] == (today - timedelta(days=31)).isoformat()


def test_the_unremitted_days_are_configurable(app, county, year):
    c3 = year["claims"][2]
    _sql(app, "UPDATE claim SET approved_on = :day WHERE claim_no = :no",
         day=county.today - timedelta(days=10), no=c3)
    assert _reconcile(county)["balanced"] is True
    app.extensions["mutualaid"].settings.reconcile_unremitted_days = 7
    (found,) = _reconcile(county)["discrepancies"]
    assert found["kind"] == "approved_not_remitted" and found["claims"] == [c3]


def test_the_workbook_lists_each_claim_a_discrepancy_touches(app, county, year):
    c1 = year["claims"][0]
    _sql(app, "UPDATE claim SET paid_amount = 99900 WHERE claim_no = :no", no=c1)
    for answer in (county.clerk.get("/api/v1/reconciliation?format=xlsx"),
                   county.clerk.get("/api/v1/reconciliation", headers={"Accept": XLSX})):
        assert answer.status_code == 200 and answer.mimetype == XLSX
        book = openpyxl.load_workbook(BytesIO(answer.data), read_only=True)
        verdict = dict(book["对账结论"].iter_rows(values_only=True))
        assert verdict["结论"] == "存在差异" and verdict["已兑付"] == 999.0
        rows = list(book["差异明细"].iter_rows(values_only=True))
        assert rows[1][:2] == (KINDS["paid_differs"], c1) and len(rows) == 2
        claims = {row[0]: row for row in book["理赔明细"].iter_rows(min_row=2, values_only=True)}
        assert set(claims) == set(year["claims"])
        assert claims[c1][6:8] == (1250.0, 1000.0) and claims[c1][-1] == KINDS["paid_differs"]
        book.close()


def test_each_claims_figures_are_listed_page_by_page(app, county, year):
    c1 = year["claims"][0]
    listed = county.clerk.get("/api/v1/reconciliation/claims", query_string={"page_size": 2})
    assert listed.status_code == 200 and len(listed.json) == 2
    assert '"total": 5' in listed.headers["X-Pagination"]
    first = listed.json[0]
    assert (first["claim_no"], first["estimate"], first["approved_amount"], first["remitted"],
            first["paid_amount"], first["discrepancies"]) == (
        c1, "1250.00", "1000.00", "1000.00", "1000.00", [])
    _sql(app, "UPDATE claim SET paid_amount = 99900 WHERE claim_no = :no", no=c1)
    flagged = county.clerk.get("/api/v1/reconciliation/claims?discrepant=true").json
    assert [(c["claim_no"], c["discrepancies"]) for c in flagged] == [(c1, ["paid_differs"])]


def test_the_reconcile_job_records_its_verdict_and_changes_nothing(app, county, year):
    runs = [county.clerk.post("/api/v1/jobs/reconcile/runs", {}) for _ in range(2)]
    for run in runs:
        assert run.status_code == 200, run.json
        assert run.json["job"] == "reconcile" and run.json["outcome"] == "ok"
    first, second = (run.json["summary"] for run in runs)
    assert first == second
    assert first["balanced"] is True and first["discrepancies"] == 0
    assert first["totals"]["approved"] == "3050.00"
    _sql(app, "UPDATE batch SET claim_count = claim_count + 1")
    flagged = county.clerk.post("/api/v1/jobs/reconcile/runs", {}).json["summary"]
    assert flagged["balanced"] is False and flagged["by_kind"] == {"batch_total_differs": 1}


def test_a_download_named_after_a_unit_code_keeps_its_header_whole(county):
    """A unit code with quotes reaches the file name percent-encoded, never as header syntax;
    one with a line break is refused when the unit is added (it made a 500 and a broken
    header)."""
    odd = county.unit(code='Q"; filename="evil.html')["code"]
    answer = county.clerk.get(f"/api/v1/reconciliation?format=xlsx&unit_code={quote(odd)}")
    assert answer.status_code == 200
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="reconciliation-Q___FILENAME__EVIL.HTML')
    assert disposition.count('"') == 2 and "filename*=UTF-8''reconciliation-Q%22%3B" in disposition
    refused = county.clerk.post("/api/v1/units", {"code": "U9\r\nX", "name": "单位", "area": "城区",
                                                 "union_contact": "王芳",
                                                 "union_phone": "0571-0000000",
                                                 "union_email": "u9@example.org",
                                                 "employee_count": 5})
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json["errors"]] == [("code", "invalid")]

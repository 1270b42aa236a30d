"""Reports: a small county with known numbers, every figure checked against hand-computed values.

The world lives in last year (Y), so the year's window is whole whatever day the suite runs:
claims are moved through the real API, then their audit times are set in the database to a
known timeline around M, the Monday of Y's ISO week 10 (events at 10:00 Beijing time).

    claim unit  incident log    seal     decision         money    collected  state
    C1    U001  M-10     M      M+7      approve 1250 M+28 M+35    M+45       collected
    C2    U001  M-5      M+1    M+7 *    approve 1300 M+27 M+35    -          notified
    C3    U001  M-1      M+2 †  M+14     reject M+35      -        -          rejected
    C4    U002  M-1      M+9    M+14     approve 2000 M+42 M+56    -          funds_received
    C5    U001  M+52     M+55   -        -                -        -          withdrawn
    C6    U002  M+80     M+84   -        -                -        -          logged
    C7    U001  logged today (year Y+1): outside every figure of Y
  * sealed at 01:00 Beijing time, 17:00 UTC the day before: the county's calendar counts.
  † logged with a document missing, asked for materials: not complete the first time.
Estimates: 1,250.00 each (inpatient, 3,000 self-paid, 1 share); U002's member holds 2 shares
(2,500.00). Units: U001 10 employees (3 insured in Y), U002 4 (1), U003 5 (0; and a name a
spreadsheet would run as a formula). U001's fourth member is enrolled from Y+1 only.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import openpyxl
import pytest
from browser import SCREENSHOTS, horizontal_overflow, open_page, sign_in
from conftest import PASSWORD, County
from flask import Flask
from sqlmodel import select

from claims.db import session_scope
from claims.demo import PASSWORD as DEMO_PASSWORD
from claims.demo import load_demo
from claims.models import Batch, Claim, ClaimEvent
from config.settings import Settings

FORMULA_NAME = "=HYPERLINK(\"http://example.org\",\"单位3\")"


class World:
    def __init__(self, app: Flask, county: County) -> None:
        self.app, self.county = app, county
        self.Y = county.today.year - 1
        self.M = date.fromisocalendar(self.Y, 10, 1)
        self.claims: dict[str, str] = {}

    def day(self, offset: int) -> date:
        return self.M + timedelta(days=offset)

    def at(self, offset: int, hour: int = 10) -> datetime:
        """Beijing time (UTC+8) on day M+offset, as UTC."""
        local = datetime.combine(self.day(offset), time(hour))
        return (local - timedelta(hours=8)).replace(tzinfo=UTC)

    def week(self, offset: int) -> str:
        iso = self.day(offset).isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}"


def _retime(app: Flask, claim_no: str, incident: date, times: dict[str, datetime]) -> None:
    """Set the claim's incident, logging day and every audit event's time (by event name;
    an event not named takes the time of the one before it)."""
    with session_scope(app.extensions["mutualaid"].engine) as session:
        claim = session.exec(select(Claim).where(Claim.claim_no == claim_no)).one()
        events = session.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)
                              .order_by(ClaimEvent.id)).all()
        assert events[0].event == "log"
        current = times["log"]
        for event in events:
            current = times.get(event.event, current)
            event.at = current
            session.add(event)
        claim.incident_date = incident
        claim.logged_at = times["log"]
        claim.logged_on = (times["log"] + timedelta(hours=8)).date()
        if "collect" in times:
            claim.collected_on = (times["collect"] + timedelta(hours=8)).date()
        session.add(claim)


def _ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.json
    return answer.json


@pytest.fixture
def world(app: Flask, county: County) -> World:
    w = World(app, county)
    clerk, Y = county.clerk, w.Y
    u1 = county.unit(employee_count=10)["code"]
    u2 = county.unit(employee_count=4)["code"]
    county.unit(employee_count=5, name=FORMULA_NAME)
    covering = {"start": date(Y, 1, 1), "end": date(Y + 1, 12, 31)}
    m1, m2, m3, m4 = (county.member(u1) for _ in range(4))
    for member in (m1, m2, m3):
        county.enrol(member, **covering)
    county.enrol(m4, start=date(Y + 1, 1, 1), end=date(Y + 1, 12, 31))
    m5 = county.member(u2)
    county.enrol(m5, shares=2, **covering)
    county.enrol(m5, "accident", **covering)

    c1 = county.claim(m1)["claim_no"]
    c2 = county.claim(m2)["claim_no"]
    for claim_no in (c1, c2):
        _ok(county.fire(claim_no, "verify"))
    batch_a = _ok(clerk.post("/api/v1/batches", {}), 201)["batch_no"]
    _ok(clerk.post(f"/api/v1/batches/{batch_a}/events", {"event": "deliver"}))
    documents = ["claim_form", "id_card", "invoice", "settlement_sheet"]  # no discharge summary
    c3 = county.claim(m3, documents=documents)["claim_no"]
    _ok(county.fire(c3, "request_materials"))
    _ok(county.fire(c3, "attach_documents", documents=["discharge_summary"]))
    _ok(county.fire(c3, "verify"))
    c4 = county.claim(m5)["claim_no"]
    _ok(county.fire(c4, "verify"))
    batch_b = _ok(clerk.post("/api/v1/batches", {}), 201)["batch_no"]
    _ok(clerk.post(f"/api/v1/batches/{batch_b}/events", {"event": "deliver"}))
    _ok(clerk.post(f"/api/v1/batches/{batch_a}/decisions", {"decisions": [
        {"claim_no": c1, "outcome": "approved", "approved_amount": "1250.00"},
        {"claim_no": c2, "outcome": "approved", "approved_amount": "1300.00"}]}))
    _ok(clerk.post(f"/api/v1/batches/{batch_b}/decisions", {"decisions": [
        {"claim_no": c3, "outcome": "rejected", "reason": "非保障范围"},
        {"claim_no": c4, "outcome": "approved", "approved_amount": "2000.00"}]}))
    # The batches reached the city office on their days (M+8, M+15), before its money came.
    with session_scope(app.extensions["mutualaid"].engine) as session:
        for batch_no, offset in ((batch_a, 8), (batch_b, 15)):
            batch = session.exec(select(Batch).where(Batch.batch_no == batch_no)).one()
            batch.delivered_at = w.at(offset)
            session.add(batch)
    _ok(clerk.post("/api/v1/remittances", {
        "reference": "CITY-1", "received_on": w.day(35).isoformat(), "total_amount": "2550.00",
        "items": [{"claim_no": c1, "amount": "1250.00"}, {"claim_no": c2, "amount": "1300.00"}]}),
        201)
    _ok(clerk.post("/api/v1/jobs/dispatch_notifications/runs", {}))
    _ok(county.fire(c1, "collect", id_number=m1["id_number"], amount="1250.00",
                    receipt_no="SJ-001"))
    _ok(clerk.post("/api/v1/remittances", {
        "reference": "CITY-2", "received_on": w.day(56).isoformat(), "total_amount": "2000.00",
        "items": [{"claim_no": c4, "amount": "2000.00"}]}), 201)
    other_day = (county.today - timedelta(days=40)).isoformat()
    c5 = county.claim(m2, incident_date=other_day, admission_date=other_day)["claim_no"]
    _ok(county.fire(c5, "withdraw", reason="重复报送"))
    c6 = county.claim(m5, incident_date=other_day, admission_date=other_day)["claim_no"]
    county.claim(m3, incident_date=other_day, admission_date=other_day)  # C7, this year

    def t(offset: int, hour: int = 10) -> datetime:
        return w.at(offset, hour)

    _retime(app, c1, w.day(-10), {"log": t(0), "seal": t(7), "deliver": t(8), "approve": t(28),
                                  "receive_funds": t(35), "notify": t(36), "collect": t(45)})
    _retime(app, c2, w.day(-5), {"log": t(1), "seal": t(7, 1), "deliver": t(8),
                                 "approve": t(27), "receive_funds": t(35), "notify": t(36)})
    _retime(app, c3, w.day(-1), {"log": t(2), "request_materials": t(3), "attach_documents": t(9),
                                 "seal": t(14), "deliver": t(15), "reject": t(35)})
    _retime(app, c4, w.day(-1), {"log": t(9), "seal": t(14), "deliver": t(15), "approve": t(42),
                                 "receive_funds": t(56)})
    _retime(app, c5, w.day(52), {"log": t(55), "withdraw": t(56)})
    _retime(app, c6, w.day(80), {"log": t(84)})
    w.claims = {"C1": c1, "C2": c2, "C3": c3, "C4": c4, "C5": c5, "C6": c6}
    return w


def test_the_years_summary_matches_the_hand_count(world: World) -> None:
    summary = _ok(world.county.clerk.get(f"/api/v1/reports/summary?year={world.Y}"))
    assert {k: summary[k] for k in ("year", "units", "units_enrolled", "employees",
                                    "members_insured", "enrolment_rate", "claims")} == {
        "year": world.Y, "units": 3, "units_enrolled": 2, "employees": 19,
        "members_insured": 4, "enrolment_rate": 0.2105, "claims": 6}
    assert summary["claims_by_state"] == {"logged": 1, "rejected": 1, "funds_received": 1,
                                          "notified": 1, "collected": 1, "withdrawn": 1}
    # Claimed: every estimate but the withdrawn C5's; approved C1+C2+C4; paid C1.
    assert (summary["claimed"], summary["approved"], summary["paid"]) == (
        "8750.00", "4550.00", "1250.00")
    assert summary["paid_in_year"] == "1250.00"  # C1, collected in Y
    assert summary["uncollected"] == {"claims": 2, "amount": "3300.00"}
    products = {p["product_code"]: p for p in summary["by_product"]}
    assert products["inpatient"]["members_insured"] == 4
    assert products["inpatient"]["claims"] == 6
    assert products["accident"] == {
        "product_code": "accident", "product_name": products["accident"]["product_name"],
        "members_insured": 1, "claims": 0, "by_state": {}, "claimed": "0.00",
        "approved": "0.00", "paid": "0.00", "paid_in_year": "0.00"}
    this_year = _ok(world.county.clerk.get("/api/v1/reports/summary"))
    assert this_year["year"] == world.Y + 1 and this_year["claims"] == 1  # C7 only
    assert this_year["members_insured"] == 5  # m4's enrolment starts in Y+1
    assert this_year["paid"] == this_year["paid_in_year"] == "0.00"


def test_money_paid_in_january_for_a_claim_logged_in_december_is_the_new_years_cash(
        world: World) -> None:
    """The year's claims are followed to today (paid, with their logging year), while the
    counter's cash is the year it was paid in (paid_in_year; the weekly chart's payouts)."""
    with session_scope(world.app.extensions["mutualaid"].engine) as session:
        c1 = session.exec(select(Claim).where(Claim.claim_no == world.claims["C1"])).one()
        c1.collected_on = date(world.Y + 1, 1, 5)
        session.add(c1)
    clerk = world.county.clerk
    logged_year = _ok(clerk.get(f"/api/v1/reports/summary?year={world.Y}"))
    paid_year = _ok(clerk.get(f"/api/v1/reports/summary?year={world.Y + 1}"))
    assert (logged_year["paid"], logged_year["paid_in_year"]) == ("1250.00", "0.00")
    assert (paid_year["paid"], paid_year["paid_in_year"]) == ("0.00", "1250.00")
    inpatient = next(p for p in paid_year["by_product"] if p["product_code"] == "inpatient")
    assert inpatient["paid_in_year"] == "1250.00"
    summary = dict(_sheet_rows(clerk.get(f"/api/v1/reports/summary.xlsx?year={world.Y + 1}"),
                               "年度概况"))
    assert summary["本年兑付金额（按领取日期）"] == 1250


def test_the_units_assessment(world: World) -> None:
    answer = world.county.clerk.get(f"/api/v1/reports/units?year={world.Y}")
    units = _ok(answer)
    assert '"total": 3' in answer.headers["X-Pagination"]
    figures = {u["unit_code"]: {k: u[k] for k in (
        "employee_count", "members_insured", "enrolment_rate", "claims", "complete_first_time",
        "complete_share", "days_to_log_mean", "days_to_log_median")} for u in units}
    assert figures == {
        # C1 10 days, C2 6, C3 3, C5 3; C3 was logged incomplete.
        "U001": {"employee_count": 10, "members_insured": 3, "enrolment_rate": 0.3,
                 "claims": 4, "complete_first_time": 3, "complete_share": 0.75,
                 "days_to_log_mean": 5.5, "days_to_log_median": 4.5},
        "U002": {"employee_count": 4, "members_insured": 1, "enrolment_rate": 0.25,
                 "claims": 2, "complete_first_time": 2, "complete_share": 1.0,
                 "days_to_log_mean": 7.0, "days_to_log_median": 7.0},
        "U003": {"employee_count": 5, "members_insured": 0, "enrolment_rate": 0.0,
                 "claims": 0, "complete_first_time": 0, "complete_share": None,
                 "days_to_log_mean": None, "days_to_log_median": None},
    }
    second = _ok(world.county.clerk.get(f"/api/v1/reports/units?year={world.Y}&page=2&page_size=2"))
    assert [u["unit_code"] for u in second] == ["U003"]


def test_turnaround_by_stage_and_week(world: World) -> None:
    w = world
    stages = {s["stage"]: s for s in _ok(w.county.clerk.get(
        f"/api/v1/reports/turnaround?year={w.Y}"))["stages"]}
    # Logging to batch: C1 7 (sealed M+7), C2 6 (M+7 at 01:00, the day before in UTC),
    # C3 12, C4 5 (both sealed M+14). Sorted 5 6 7 12: median 6.5, p90 7 + 0.7 x 5 = 10.5.
    batch = stages["logging_to_batch"]
    assert (batch["count"], batch["median_days"], batch["p90_days"]) == (4, 6.5, 10.5)
    assert batch["weeks"] == [
        {"week": w.week(7), "count": 2, "median_days": 6.5, "p90_days": 6.9},
        {"week": w.week(14), "count": 2, "median_days": 8.5, "p90_days": 11.3}]
    # Batch to decision: C2 20 (M+27, a Sunday), C1 21, C3 21, C4 28.
    decision = stages["batch_to_decision"]
    assert (decision["count"], decision["median_days"], decision["p90_days"]) == (4, 21.0, 25.9)
    assert [(x["week"], x["median_days"]) for x in decision["weeks"]] == [
        (w.week(27), 20.0), (w.week(28), 21.0), (w.week(35), 21.0), (w.week(42), 28.0)]
    money = stages["funds_to_collection"]
    assert (money["count"], money["median_days"], money["p90_days"]) == (1, 10.0, 10.0)
    assert money["weeks"] == [{"week": w.week(45), "count": 1, "median_days": 10.0,
                               "p90_days": 10.0}]
    empty = _ok(w.county.clerk.get(f"/api/v1/reports/turnaround?year={w.Y - 1}"))["stages"]
    assert [(s["count"], s["median_days"], s["weeks"]) for s in empty] == [(0, None, [])] * 3


def test_money_not_collected_oldest_first_and_decisions_against_estimates(world: World) -> None:
    w, clerk = world, world.county.clerk
    today = w.county.today
    answer = clerk.get("/api/v1/reports/uncollected")
    assert [(c["claim_no"], c["state"], c["amount"], c["received_on"], c["days_waiting"])
            for c in _ok(answer)] == [
        (w.claims["C2"], "notified", "1300.00", w.day(35).isoformat(), (today - w.day(35)).days),
        (w.claims["C4"], "funds_received", "2000.00", w.day(56).isoformat(),
         (today - w.day(56)).days)]
    assert '"total": 2' in answer.headers["X-Pagination"]
    assert _ok(clerk.get(f"/api/v1/reports/decisions?year={w.Y}")) == {
        "year": w.Y, "approved_claims": 3, "estimate_total": "5000.00",
        "approved_total": "4550.00", "difference": "-450.00", "above": 1, "below": 1,
        "equal": 1, "flagged_above_estimate": 1, "rejected_claims": 1,
        "rejected_estimate_total": "1250.00"}
    listed = _ok(clerk.get(f"/api/v1/reports/decisions/claims?year={w.Y}"))
    assert [(c["claim_no"], c["estimate"], c["approved_amount"], c["difference"],
             c["above_estimate"]) for c in listed] == [
        (w.claims["C2"], "1250.00", "1300.00", "50.00", True),
        (w.claims["C1"], "1250.00", "1250.00", "0.00", False),
        (w.claims["C4"], "2500.00", "2000.00", "-500.00", False)]


def test_subsidy_committed_by_the_years_enrolment_fees(world: World) -> None:
    # Covering Y: 3 members x 1 inpatient share, one with 2 shares, and 1 accident share.
    subsidy = _ok(world.county.clerk.get(f"/api/v1/reports/subsidy?year={world.Y}"))
    assert {k: subsidy[k] for k in ("subsidy", "committed", "left", "committed_share")} == {
        "subsidy": "350000.00", "committed": "170.00", "left": "349830.00",
        "committed_share": 0.0005}
    assert [(p["product_code"], p["enrolments"], p["shares"], p["committed"])
            for p in subsidy["by_product"]] == [("accident", 1, 1, "20.00"),
                                                 ("inpatient", 4, 5, "150.00")]
    this_year = _ok(world.county.clerk.get("/api/v1/reports/subsidy"))
    assert this_year["committed"] == "200.00"  # m4's inpatient share too


def test_a_claim_the_city_office_returned_was_not_complete_the_first_time(
        county: County) -> None:
    unit = county.unit()["code"]
    members = [county.member(unit) for _ in range(2)]
    for member in members:
        county.enrol(member)
    kept, returned = (county.claim(member)["claim_no"] for member in members)
    for claim_no in (kept, returned):
        _ok(county.fire(claim_no, "verify"))
    batch = _ok(county.clerk.post("/api/v1/batches", {}), 201)["batch_no"]
    _ok(county.clerk.post(f"/api/v1/batches/{batch}/events", {"event": "deliver"}))
    _ok(county.clerk.post(f"/api/v1/batches/{batch}/decisions", {"decisions": [
        {"claim_no": returned, "outcome": "returned", "reason": "发票不清"}]}))
    units = _ok(county.clerk.get(f"/api/v1/reports/units?year={county.today.year}"))
    row = next(u for u in units if u["unit_code"] == unit)
    assert (row["claims"], row["complete_first_time"], row["complete_share"]) == (2, 1, 0.5)


def test_a_term_across_new_year_costs_one_fee_charged_in_the_year_it_begins(
        county: County) -> None:
    Y = county.today.year - 1
    worker, long_term, leap = county.member(), county.member(), county.member()
    county.enrol(worker, "accident", start=date(Y - 1, 7, 1), end=date(Y, 6, 30))
    county.enrol(worker, "accident", start=date(Y, 7, 1), end=date(Y + 1, 6, 30))
    county.enrol(long_term, start=date(Y - 2, 3, 1), end=date(Y + 1, 2, 28))  # 3 term-years
    county.enrol(leap, "critical_illness", start=date(2024, 2, 29), end=date(2025, 2, 28))

    def committed(year: int) -> dict[str, tuple[int, str]]:
        answer = _ok(county.clerk.get(f"/api/v1/reports/subsidy?year={year}"))
        return {p["product_code"]: (p["enrolments"], p["committed"])
                for p in answer["by_product"]}

    assert committed(Y) == {"accident": (1, "20.00"), "inpatient": (1, "30.00")}
    assert committed(Y - 1)["accident"] == (1, "20.00")  # each July term in its own year
    assert committed(Y - 1)["inpatient"] == (1, "30.00")
    assert committed(Y - 2)["inpatient"] == (1, "30.00")
    assert committed(Y + 1) == {}  # the terms running into it began before it
    # A term from 29 February is one term-year: charged in 2024, not again in 2025.
    assert committed(2024)["critical_illness"] == (1, "40.00")
    assert "critical_illness" not in committed(2025)


def test_the_subsidy_is_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUTUALAID_SUBSIDY_YUAN", "420000.50")
    assert Settings.from_env().subsidy_fen == 42_000_050
    monkeypatch.delenv("MUTUALAID_SUBSIDY_YUAN")
    assert Settings.from_env().subsidy_fen == 35_000_000


def test_unit_staff_see_their_own_unit_only(world: World) -> None:
    staff, Y = world.county.unit_staff("U002"), world.Y
    summary = _ok(staff.get(f"/api/v1/reports/summary?year={Y}"))
    assert (summary["units"], summary["employees"], summary["members_insured"],
            summary["claims"], summary["claimed"], summary["approved"]) == (
        1, 4, 1, 2, "5000.00", "2000.00")
    assert summary["uncollected"] == {"claims": 1, "amount": "2000.00"}
    assert [u["unit_code"] for u in _ok(staff.get(f"/api/v1/reports/units?year={Y}"))] == ["U002"]
    assert [c["claim_no"] for c in _ok(staff.get("/api/v1/reports/uncollected"))] == [
        world.claims["C4"]]
    assert _ok(staff.get(f"/api/v1/reports/decisions?year={Y}"))["approved_claims"] == 1
    stages = _ok(staff.get(f"/api/v1/reports/turnaround?year={Y}"))["stages"]
    assert [s["count"] for s in stages] == [1, 1, 0]  # C4 only
    assert staff.get(f"/api/v1/reports/subsidy?year={Y}").status_code == 403
    assert staff.get(f"/api/v1/reports/subsidy.xlsx?year={Y}").status_code == 403


def test_reports_refuse_bad_queries_and_strangers(app: Flask, county: County) -> None:
    clerk = county.clerk
    for path in ("summary?yeer=2026", "summary?year=1900", "summary?year=abc",
                 "uncollected?year=2026", "units.xlsx?format=csv"):
        answer = clerk.get(f"/api/v1/reports/{path}")
        assert answer.status_code == 422, path
        assert answer.json["errors"][0]["field"] in ("yeer", "year", "format")
    assert clerk.get("/api/v1/reports/nothing.xlsx").status_code == 404
    answer = county.client.get("/api/v1/reports/summary")
    assert answer.status_code == 401 and answer.json["code"] == "unauthorized"


def _sheet_rows(answer: Any, title: str) -> list[tuple[Any, ...]]:
    assert answer.status_code == 200
    assert answer.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    return [tuple(row) for row in book[title].iter_rows(values_only=True)]


def test_reports_download_as_xlsx(world: World) -> None:
    clerk, Y = world.county.clerk, world.Y
    summary = dict(_sheet_rows(clerk.get(f"/api/v1/reports/summary.xlsx?year={Y}"), "年度概况"))
    assert (summary["参保人数"], summary["登记理赔件数"], summary["核准金额"],
            summary["已兑付金额（本年登记理赔）"]) == (4, 6, 4550, 1250)
    assert summary["本年兑付金额（按领取日期）"] == 1250
    answer = clerk.get(f"/api/v1/reports/units.xlsx?year={Y}")
    assert f"units-{Y}.xlsx" in answer.headers["Content-Disposition"]
    rows = _sheet_rows(answer, "单位考核")
    assert rows[0][:3] == ("单位代码", "单位名称", "片区")
    assert rows[1][0] == "U001" and rows[1][5] == 0.3 and rows[1][10] == 4.5
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    formula_cell = book["单位考核"]["B4"]
    assert formula_cell.value == FORMULA_NAME and formula_cell.data_type == "s"
    assert formula_cell.quotePrefix  # Excel shows it as text, never runs it
    rows = _sheet_rows(clerk.get(f"/api/v1/reports/decisions.xlsx?year={Y}"), "逐件")
    assert [(r[0], r[5], r[6], r[7], r[8]) for r in rows[1:]] == [
        (world.claims["C2"], 1250, 1300, 50, "是"), (world.claims["C1"], 1250, 1250, 0, "否"),
        (world.claims["C4"], 2500, 2000, -500, "否")]
    for name in ("turnaround", "uncollected", "subsidy"):
        assert clerk.get(f"/api/v1/reports/{name}.xlsx?year={Y}").status_code == 200, name


def _console_sign_in(county: County, username: str) -> None:
    client = county.client
    page = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token, "no CSRF token on the sign-in page"
    answer = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                  "csrf_token": token.group(1)})
    assert answer.status_code in (302, 303), answer.status_code


def test_the_reports_page_charts_the_year_without_scripts(world: World) -> None:
    county, Y = world.county, world.Y
    county.clerk  # noqa: B018 - the clerk user exists once signed in through the API
    _console_sign_in(county, "clerk")
    answer = county.client.get(f"/console/reports?year={Y}")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", answer.headers["Content-Security-Policy"]).group(1)
    assert page.count("<svg") == 3 and "<script" not in page
    assert page.count(f'<style nonce="{nonce}"') == 3 and page.count("<style") == 3
    assert "HYPERLINK(&#34;" in page  # the table's cell, escaped; the chart's label is text
    for figure in ("统计报表", "4,550.00", "1,250.00", "349,830.00", "登记到装批",
                   world.claims["C2"]):
        assert figure in page, figure
    download = county.client.get(f"/console/reports/units.xlsx?year={Y}")
    assert _sheet_rows(download, "单位考核")[1][0] == "U001"


def test_unit_staff_reports_page_shows_their_unit_and_no_subsidy(world: World) -> None:
    county = world.county
    county.unit_staff("U002")
    _console_sign_in(county, "staff-U002")
    page = county.client.get(f"/console/reports?year={world.Y}").get_data(as_text=True)
    assert world.claims["C4"] in page and world.claims["C2"] not in page
    assert "补贴预算" not in page and "U001" not in page
    assert county.client.get(f"/console/reports/subsidy.xlsx?year={world.Y}").status_code == 404


def test_reports_page_in_a_browser_with_the_demo_county(chromium: Any, live_server: Any,
                                                        app: Flask) -> None:
    """The demo county's reports page, charts styled under the page's CSP; the screenshot
    for the README (docs/screenshots/reports.png)."""
    runtime = app.extensions["mutualaid"]
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("one screenshot is enough: the figures are checked on both databases above")
    load_demo(runtime)
    page = open_page(chromium, viewport={"width": 1280, "height": 900}, locale="zh-CN",
                     timezone_id="Asia/Shanghai")
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    try:
        sign_in(page, live_server.url, "clerk", DEMO_PASSWORD)
        page.click("nav >> text=统计报表")
        page.wait_for_selector("h1:has-text('统计报表')")
        assert page.locator("section.chart svg").count() == 3
        bar_fill = page.eval_on_selector("section.chart svg .series .reactive",
                                         "bar => getComputedStyle(bar).fill")
        assert bar_fill == "rgb(31, 95, 168)"  # pygal's stylesheet applied: not CSP-blocked
        assert refused == []
        # The top of the page (figures, both trend charts, the tables): the README shows it.
        page.set_viewport_size({"width": 1280, "height": 1500})
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "reports.png"))
        with page.expect_download() as download:
            page.click("a[download] >> text=单位考核")
        assert download.value.suggested_filename.startswith("units-")
        page.set_viewport_size({"width": 360, "height": 740})
        assert horizontal_overflow(page) == 0  # on a phone the tables scroll in their box
    finally:
        page.context.close()


def test_the_reports_page_counts_claims_after_the_years_last_monday(county: County) -> None:
    """29 December 2025 is in ISO week 2026-W01, 31 December 2026 in 2026-W53: the page
    answered 500 for a year with a claim in its last part-week."""
    days = {county.claim()["claim_no"]: date(2025, 12, 29),
            county.claim()["claim_no"]: date(2026, 12, 31)}
    with session_scope(county.app.extensions["mutualaid"].engine) as session:
        for claim_no, day in days.items():
            claim = session.exec(select(Claim).where(Claim.claim_no == claim_no)).one()
            claim.logged_on = day
            session.add(claim)
    _console_sign_in(county, "clerk")
    for year in (2025, 2026):
        assert county.client.get(f"/console/reports?year={year}").status_code == 200, year
    assert "第53周" in county.client.get("/console/reports?year=2026").get_data(as_text=True)


def test_the_weekly_chart_counts_claims_in_whole_numbers_each_once(app) -> None:
    from claims.web.charts import claims_and_payouts

    weekly = [{"week": "2026-W47", "claims": 2, "paid": 0},
              {"week": "2026-W48", "claims": 1, "paid": 150000}]
    with app.test_request_context():
        svg = str(claims_and_payouts(weekly, "每周理赔登记与兑付", "nonce"))
    axis = re.search(r'<g class="axis y[^"]*">(.*?)</g></g>', svg, re.DOTALL)
    assert axis is not None
    assert re.findall(r"<text[^>]*>([^<]*)</text>", axis.group(1)) == ["0", "1", "2"]

"""A worker's history: enrolments and claims across the years, per product and year the cap,
used and left; a new claim's estimate is capped by exactly that "left"; staff see it by unit,
the console shows it, the worker sees it masked through the public status check."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from test_console import sign_in


def _inpatient(county: Any, member: dict[str, Any], incident: date, self_paid: str) -> str:
    """A logged in-patient claim for a stay that began and ended on the incident day."""
    return county.claim(member, incident_date=incident.isoformat(),
                        admission_date=incident.isoformat(), discharge_date=incident.isoformat(),
                        total_expense="20000.00", insurance_paid="1000.00",
                        self_paid=self_paid)["claim_no"]


@pytest.fixture
def worker(county: Any) -> dict[str, Any]:
    """One share of in-patient cover since two years back (cap 5,000.00 a year); approved
    3,000.00 for a stay last year and 4,000.00 for one this year."""
    this_year = county.today.year
    member = county.member()
    county.enrol(member, start=date(this_year - 2, 1, 1), end=date(this_year + 1, 12, 31))
    last = _inpatient(county, member, date(this_year - 1, 6, 1), "7000.00")
    now = _inpatient(county, member, date(this_year, 1, 1), "9000.00")
    for claim_no in (last, now):
        assert county.fire(claim_no, "verify").status_code == 200
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    assert county.clerk.post(f"/api/v1/batches/{batch_no}/events",
                             {"event": "deliver"}).status_code == 200
    assert county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": last, "outcome": "approved", "approved_amount": "3000.00"},
        {"claim_no": now, "outcome": "approved", "approved_amount": "4000.00"},
    ]}).status_code == 200
    return member | {"claims": (last, now)}


def _caps(history: dict[str, Any]) -> dict[int, tuple[str, str, str]]:
    return {row["year"]: (row["cap"], row["used"], row["left"]) for row in history["caps"]
            if row["product_code"] == "inpatient"}


def test_each_year_shows_its_own_cap_used_and_left(county, worker):
    this_year = county.today.year
    answer = county.clerk.get(f"/api/v1/members/{worker['id']}/history")
    assert answer.status_code == 200, answer.json
    history = answer.json
    assert _caps(history) == {this_year - 2: ("5000.00", "0.00", "5000.00"),
                              this_year - 1: ("5000.00", "3000.00", "2000.00"),
                              this_year: ("5000.00", "4000.00", "1000.00")}
    assert history["member"]["id_number_masked"] == worker["id_number_masked"]
    (enrolment,) = history["enrolments"]
    assert enrolment["shares"] == 1 and enrolment["current"] is True
    assert [(c["claim_no"], c["year"], c["approved_amount"]) for c in history["claims"]] == [
        (worker["claims"][0], this_year - 1, "3000.00"),
        (worker["claims"][1], this_year, "4000.00")]
    assert worker["id_number"] not in json.dumps(history)


def test_a_new_claims_estimate_is_capped_by_the_years_left(county, worker):
    this_year = county.today.year
    # (3,000.00 - 500.00) x 50% = 1,250.00, but only 1,000.00 is left this year ...
    claim_no = _inpatient(county, worker, date(this_year, 1, 1), "3000.00")
    now = county.clerk.get(f"/api/v1/claims/{claim_no}").json
    assert now["estimate"] == "1000.00"
    # ... while last year still had 2,000.00 left.
    last = _inpatient(county, worker, date(this_year - 1, 9, 1), "3000.00")
    assert county.clerk.get(f"/api/v1/claims/{last}").json["estimate"] == "1250.00"
    caps = _caps(county.clerk.get(f"/api/v1/members/{worker['id']}/history").json)
    assert caps[this_year][2] == now["estimate"]  # logged claims use none of the cap yet


def test_the_history_is_scoped_to_the_unit(county, worker):
    path = f"/api/v1/members/{worker['id']}/history"
    assert county.unit_staff(worker["unit_code"]).get(path).status_code == 200
    other = county.unit()["code"]
    hidden = county.unit_staff(other).get(path)
    assert hidden.status_code == 404 and hidden.json["code"] == "not_found"
    assert county.clerk.get("/api/v1/members/999999/history").status_code == 404
    assert county.client.get(path).status_code == 401


def test_the_console_member_page_shows_the_history(client, county, worker):
    sign_in(client, county)
    page = client.get(f"/console/members/{worker['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert worker["claims"][0] in html and "2,000.00" in html and "1,000.00" in html
    assert worker["id_number"] not in html and worker["id_number_masked"] in html
    assert client.get("/console/members/999999").status_code == 404


def test_the_worker_sees_the_history_masked_by_id_number_and_name(county, worker):
    this_year = county.today.year
    answer = county.client.post("/api/v1/status", json={
        "id_number": worker["id_number"], "name": worker["name"]})
    assert answer.status_code == 200, answer.json
    history = answer.json["history"]
    assert {(r["year"], r["left"]) for r in history["caps"]} == {
        (this_year - 2, "5000.00"), (this_year - 1, "2000.00"), (this_year, "1000.00")}
    assert [c["amount_approved"] for c in history["claims"]] == ["3000.00", "4000.00"]
    text = json.dumps(answer.json, ensure_ascii=False)
    for private in (worker["id_number"], worker["id_number_masked"], worker["name"],
                    worker["unit_code"], '"member_id"', '"batch_no"'):
        assert private not in text
    by_claim = county.client.post("/api/v1/status", json={
        "claim_no": worker["claims"][0], "id_last6": worker["id_number"][-6:]})
    assert by_claim.status_code == 200 and by_claim.json["history"] is None


def test_an_old_enrolment_shows_the_years_it_covered(county):
    member = county.member()
    start = county.today - timedelta(days=800)
    county.enrol(member, start=start, end=start + timedelta(days=400))
    history = county.clerk.get(f"/api/v1/members/{member['id']}/history").json
    assert sorted(_caps(history)) == list(range(start.year, (start + timedelta(days=400)).year
                                                + 1))
    assert history["enrolments"][0]["current"] is False


def test_the_status_page_shows_the_worker_the_caps_left(county, worker):
    page = county.client.post("/status?by=id", data={
        "by": "id", "id_number": worker["id_number"], "name": worker["name"]})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "我的互助保障额度" in html and "2,000.00" in html and "1,000.00" in html
    assert worker["id_number"] not in html

"""SPEC §3 and §7 through the API: logging, reading, listing claims and firing their events."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

CLAIMS = "/api/v1/claims"
COMPLETE = ["claim_form", "id_card", "invoice", "settlement_sheet", "discharge_summary"]
# The events SPEC §3 lets leave each state reachable through the claims API.
LEAVING = {
    "logged": {"attach_documents", "request_materials", "verify", "withdraw"},
    "pending_materials": {"attach_documents", "verify", "withdraw"},
    "ready": {"request_materials", "withdraw", "seal"},
    "withdrawn": set(),
}


# --- helpers: read a claim the way a client does -------------------------------------------


def fire_ok(county, claim_no: str, event: str, **fields: Any) -> dict[str, Any]:
    answer = county.fire(claim_no, event, **fields)
    assert answer.status_code == 200, answer.json
    return answer.json


def show(county, claim_no: str, by=None) -> dict[str, Any]:
    answer = (by or county.clerk).get(f"{CLAIMS}/{claim_no}")
    assert answer.status_code == 200, answer.json
    return answer.json


def trail(county, claim_no: str) -> list[dict[str, Any]]:
    answer = county.clerk.get(f"{CLAIMS}/{claim_no}/events", query_string={"page_size": 100})
    assert answer.status_code == 200, answer.json
    return answer.json


def snapshot(county, claim_no: str) -> dict[str, Any]:
    """What a refused event must leave as it was."""
    claim = show(county, claim_no)
    return {"state": claim["state"], "version": claim["version"],
            "documents": claim["documents"], "approved_amount": claim["approved_amount"],
            "reason": claim.get("reason"), "events": trail(county, claim_no)}


def listed(api, **query: Any) -> Any:
    answer = api.get(CLAIMS, query_string=query)
    assert answer.status_code == 200, answer.json
    return answer


def error_codes(answer) -> set[str]:
    return {error["code"] for error in answer.json["errors"]}


def error_fields(answer) -> set[str]:
    return {error["field"] for error in answer.json["errors"]}


def enrolled_member(county, *, start_days_ago: int = 365, shares: int = 1,
                    product_code: str = "inpatient", unit_code: str | None = None):
    member = county.member(unit_code)
    start = county.today - timedelta(days=start_days_ago)
    county.enrol(member, product_code, shares=shares, start=start, end=start + timedelta(days=1500))
    return member


def stay(county, incident_days_ago: int, days: int = 7) -> dict[str, str]:
    """Incident and admission on the same day, discharge `days` later."""
    incident = county.today - timedelta(days=incident_days_ago)
    return {"incident_date": incident.isoformat(), "admission_date": incident.isoformat(),
            "discharge_date": (incident + timedelta(days=days)).isoformat()}


def accident_fields(**extra: Any) -> dict[str, Any]:
    return {"cause": "accident", "total_expense": "1000.00", "insurance_paid": "0.00",
            "self_paid": "600.00",
            "documents": ["claim_form", "id_card", "accident_proof", "invoice"]} | extra


def claim_in(county, state: str) -> dict[str, Any]:
    """A claim brought to `state` through the API (logged, pending_materials, ready)."""
    claim = county.claim()
    if state == "pending_materials":
        fire_ok(county, claim["claim_no"], "request_materials", documents=["invoice"],
                reason="发票不清晰")
    elif state == "ready":
        fire_ok(county, claim["claim_no"], "verify")
    elif state == "withdrawn":
        fire_ok(county, claim["claim_no"], "withdraw", reason="职工撤回")
    else:
        assert state == "logged"
    return show(county, claim["claim_no"])


# --- POST /claims ---------------------------------------------------------------------------


def test_logging_a_claim_answers_201_with_number_state_estimate_and_version(county):
    member = enrolled_member(county)
    answer = county.clerk.post(CLAIMS, county.claim_body(member))
    assert answer.status_code == 201, answer.json
    claim = answer.json
    assert re.fullmatch(r"LP\d{4}-\d{6}", claim["claim_no"])
    assert claim["claim_no"].startswith(f"LP{county.today.year}-")
    assert claim["state"] == "logged"
    # (3000.00 self-paid - 500.00 deductible) x 50% x 1 share
    assert claim["estimate"] == "1250.00"
    assert claim["missing_documents"] == []
    assert claim["version"] == 1
    assert answer.headers["ETag"].strip('W/"') == "1"


def test_the_estimate_scales_with_shares(county):
    member = enrolled_member(county, shares=2)
    assert county.claim(member)["estimate"] == "2500.00"


def test_logging_answers_the_missing_documents(county):
    member = enrolled_member(county)
    claim = county.claim(member, documents=["claim_form", "invoice"])
    assert sorted(claim["missing_documents"]) == ["discharge_summary", "id_card",
                                                  "settlement_sheet"]
    nothing = county.claim(enrolled_member(county), documents=[])
    assert sorted(nothing["missing_documents"]) == sorted(COMPLETE)


def test_claim_numbers_increase(county):
    numbers = [county.claim()["claim_no"] for _ in range(3)]
    suffixes = [int(number.rsplit("-", 1)[1]) for number in numbers]
    assert suffixes == sorted(suffixes)
    assert len(set(suffixes)) == 3


def test_claim_numbers_past_999999_keep_every_digit(app, county):
    first = county.claim()["claim_no"]  # the year's counter row now exists
    year = int(first[2:6])
    with app.extensions["mutualaid"].engine.begin() as connection:
        connection.execute(sa.text("UPDATE claim_counter SET last = 999999 WHERE year = :year"),
                           {"year": year})
    numbers = [county.claim()["claim_no"] for _ in range(2)]
    assert numbers == [f"LP{year}-1000000", f"LP{year}-1000001"]
    assert show(county, numbers[1])["claim_no"] == numbers[1]
    assert [event["event"] for event in trail(county, numbers[1])] == ["log"]


def test_logging_a_claim_for_an_unknown_member_answers_422(county):
    body = county.claim_body({"id_number": "110101199003074514"})
    answer = county.clerk.post(CLAIMS, body)
    assert answer.status_code == 422
    assert "unknown_member" in error_codes(answer)


def test_logging_a_claim_without_a_required_field_answers_422_naming_it(county):
    body = county.claim_body(enrolled_member(county))
    del body["incident_date"]
    answer = county.clerk.post(CLAIMS, body)
    assert answer.status_code == 422
    assert "incident_date" in error_fields(answer)


def test_every_missing_field_is_named_in_one_answer_the_products_expenses_too(county):
    member = enrolled_member(county)
    answer = county.clerk.post(CLAIMS, {"id_number": member["id_number"],
                                        "product_code": "inpatient"})
    assert answer.status_code == 422
    assert {(e["field"], e["code"]) for e in answer.json["errors"]} == {
        (field, "required") for field in ("cause", "incident_date", "total_expense",
                                          "insurance_paid", "self_paid")}
    lump_sum = county.clerk.post(CLAIMS, {"id_number": member["id_number"],
                                          "product_code": "critical_illness"})
    assert {e["field"] for e in lump_sum.json["errors"]} == {"cause", "incident_date"}
    typed_wrong = county.clerk.post(CLAIMS, {**county.claim_body(member),
                                             "total_expense": "1.234"})
    assert [(e["field"], e["code"]) for e in typed_wrong.json["errors"]] == [
        ("total_expense", "too_many_decimals")]


# --- GET /claims/{claim_no} -----------------------------------------------------------------


def test_a_claim_shows_every_logged_field_verbatim_and_the_id_number_masked(county):
    member = enrolled_member(county)
    body = county.claim_body(member, hospital="县人民医院（东院）🏥",
                             diagnosis=" 肺炎 重症 😷\nJ18.9 ",
                             documents=["claim_form", "id_card"])
    logged = county.clerk.post(CLAIMS, body)
    assert logged.status_code == 201, logged.json
    answer = county.clerk.get(f"{CLAIMS}/{logged.json['claim_no']}")
    assert answer.status_code == 200
    claim = answer.json
    for name in ("product_code", "cause", "incident_date", "admission_date", "discharge_date",
                 "hospital", "diagnosis", "total_expense", "insurance_paid", "self_paid"):
        assert claim[name] == body[name], name
    assert claim["disability_grade"] is None
    assert claim["id_number_masked"] == member["id_number"][:6] + "*" * 8 + member["id_number"][-4:]
    assert "id_number" not in claim
    assert member["id_number"] not in answer.get_data(as_text=True)
    assert member["id_number"] not in logged.get_data(as_text=True)
    assert claim["state"] == "logged"
    assert claim["estimate"] == "1250.00"
    assert claim["approved_amount"] is None
    assert claim["batch_no"] is None
    assert claim["version"] == 1
    statuses = {doc["code"]: doc["status"] for doc in claim["documents"]}
    assert statuses == {"claim_form": "received", "id_card": "received", "invoice": "missing",
                        "settlement_sheet": "missing", "discharge_summary": "missing"}
    assert answer.headers["ETag"].strip('W/"') == "1"


def test_a_death_claim_shows_the_beneficiary_with_the_id_number_masked(county):
    member = enrolled_member(county, product_code="accident")
    beneficiary = county.member(name="李娜", sex="F")  # any valid ID number will do
    body = county.claim_body(member, "accident", **accident_fields(
        total_expense="0.00", self_paid="0.00", death=True,
        beneficiary={"name": "李娜", "id_number": beneficiary["id_number"], "relation": "配偶"},
        documents=["claim_form", "id_card", "accident_proof", "death_certificate"]))
    logged = county.clerk.post(CLAIMS, body)
    assert logged.status_code == 201, logged.json
    answer = county.clerk.get(f"{CLAIMS}/{logged.json['claim_no']}")
    claim = answer.json
    assert claim["death"] is True
    assert claim["beneficiary"]["name"] == "李娜"
    assert claim["beneficiary"]["relation"] == "配偶"
    assert claim["beneficiary"]["id_number_masked"].count("*") == 8
    for raw in (logged.get_data(as_text=True), answer.get_data(as_text=True),
                listed(county.clerk).get_data(as_text=True)):
        assert beneficiary["id_number"] not in raw
        assert member["id_number"] not in raw


def test_a_claim_that_does_not_exist_answers_404_json(county):
    answer = county.clerk.get(f"{CLAIMS}/LP2099-999999")
    assert answer.status_code == 404
    assert answer.is_json
    assert answer.json["code"] == "not_found"
    assert county.fire("LP2099-999999", "verify").status_code == 404
    assert county.clerk.get(f"{CLAIMS}/LP2099-999999/events").status_code == 404


def test_a_claim_number_typed_in_lower_case_finds_the_claim(county):
    claim_no = county.claim()["claim_no"]
    answer = county.clerk.get(f"{CLAIMS}/{claim_no.lower()}")
    assert answer.status_code == 200 and answer.json["claim_no"] == claim_no
    assert county.fire(claim_no.lower(), "verify").json["state"] == "ready"


# --- GET /claims ----------------------------------------------------------------------------


def test_the_list_is_newest_first(county):
    numbers = [county.claim()["claim_no"] for _ in range(3)]
    answer = listed(county.clerk)
    assert isinstance(answer.json, list)
    assert [claim["claim_no"] for claim in answer.json] == numbers[::-1]


def test_the_list_filters_by_state_unit_and_product(county):
    first, second = county.unit(), county.unit()
    in_first = county.claim(enrolled_member(county, unit_code=first["code"]))
    in_second = county.claim(enrolled_member(county, unit_code=second["code"]))
    accident_member = enrolled_member(county, product_code="accident", unit_code=first["code"])
    accident = county.claim(accident_member, "accident", **accident_fields())
    fire_ok(county, in_second["claim_no"], "verify")

    def numbers(**query: Any) -> set[str]:
        return {claim["claim_no"] for claim in listed(county.clerk, **query).json}

    assert numbers(state="ready") == {in_second["claim_no"]}
    assert numbers(state="logged") == {in_first["claim_no"], accident["claim_no"]}
    assert numbers(unit_code=first["code"]) == {in_first["claim_no"], accident["claim_no"]}
    assert numbers(unit_code=second["code"]) == {in_second["claim_no"]}
    assert numbers(product_code="accident") == {accident["claim_no"]}
    assert numbers(product_code="inpatient", unit_code=first["code"]) == {in_first["claim_no"]}
    assert numbers(state="collected") == set()


def test_the_list_is_paginated_with_the_total_in_x_pagination(county):
    numbers = [county.claim()["claim_no"] for _ in range(5)]
    first = listed(county.clerk, page=1, page_size=2)
    pagination = json.loads(first.headers["X-Pagination"])
    assert pagination["total"] == 5
    assert pagination["total_pages"] == 3
    assert pagination["page"] == 1
    last = listed(county.clerk, page=3, page_size=2)
    pages = [claim["claim_no"] for claim in first.json + listed(county.clerk, page=2,
                                                                 page_size=2).json + last.json]
    assert pages == numbers[::-1]
    assert len(last.json) == 1


def test_pages_of_a_filtered_list_hold_each_claim_once_newest_first_for_unit_staff(county):
    own, other = county.unit(), county.unit()
    staff = county.unit_staff(own["code"])
    logged = []
    for i in range(7):  # the two units' claims interleaved, every third of ours verified
        mine = county.claim(enrolled_member(county, unit_code=own["code"]))["claim_no"]
        county.claim(enrolled_member(county, unit_code=other["code"]))
        if i % 3 == 0:
            fire_ok(county, mine, "verify")
        else:
            logged.append(mine)
    pages = [listed(staff, state="logged", page=page, page_size=2) for page in (1, 2, 3)]
    assert [len(page.json) for page in pages] == [2, 2, 0]
    assert json.loads(pages[0].headers["X-Pagination"])["total"] == 4
    assert [claim["claim_no"] for page in pages for claim in page.json] == logged[::-1]


def test_a_page_size_above_100_answers_422(county):
    county.claim()
    assert county.clerk.get(CLAIMS, query_string={"page_size": 101}).status_code == 422
    assert county.clerk.get(CLAIMS, query_string={"page_size": 100}).status_code == 200


def test_the_list_never_shows_a_full_id_number(county):
    members = [enrolled_member(county) for _ in range(3)]
    for member in members:
        county.claim(member)
    raw = listed(county.clerk).get_data(as_text=True)
    for member in members:
        assert member["id_number"] not in raw
        assert member["id_number"][:6] + "*" * 8 + member["id_number"][-4:] in raw


# --- events: attach_documents, request_materials --------------------------------------------


def test_attach_documents_keeps_the_state_bumps_the_version_and_writes_an_audit_event(county):
    claim = county.claim(documents=["claim_form", "id_card"])
    after = fire_ok(county, claim["claim_no"], "attach_documents",
                    documents=["invoice", "settlement_sheet"])
    assert after["state"] == "logged"
    assert after["version"] == 2
    assert after["missing_documents"] == ["discharge_summary"]
    statuses = {doc["code"]: doc["status"] for doc in after["documents"]}
    assert statuses["invoice"] == statuses["settlement_sheet"] == "received"
    events = trail(county, claim["claim_no"])
    assert [e["event"] for e in events] == ["log", "attach_documents"]
    assert events[-1]["from_state"] == events[-1]["to_state"] == "logged"
    assert events[-1]["version"] == 2


def test_attaching_a_document_again_is_harmless(county):
    claim = county.claim()
    after = fire_ok(county, claim["claim_no"], "attach_documents", documents=["invoice"])
    assert after["missing_documents"] == []
    assert after["version"] == 2


def test_attach_documents_refuses_a_code_the_product_does_not_know(county):
    claim = county.claim(documents=["claim_form"])
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], "attach_documents", documents=["death_certificate"])
    assert answer.status_code == 422
    assert "documents" in error_fields(answer)
    assert snapshot(county, claim["claim_no"]) == before


def test_request_materials_rejects_documents_with_the_reason_and_awaits_them(county):
    claim = county.claim()
    after = fire_ok(county, claim["claim_no"], "request_materials",
                    documents=["invoice", "discharge_summary"], reason="发票模糊，出院小结缺页")
    assert after["state"] == "pending_materials"
    rejected = {doc["code"]: doc for doc in after["documents"] if doc["status"] == "rejected"}
    assert set(rejected) == {"invoice", "discharge_summary"}
    assert all(doc["reason"] == "发票模糊，出院小结缺页" for doc in rejected.values())
    assert sorted(after["missing_documents"]) == ["discharge_summary", "invoice"]

    back = fire_ok(county, claim["claim_no"], "attach_documents",
                   documents=["invoice", "discharge_summary"])
    assert back["state"] == "pending_materials"
    assert back["missing_documents"] == []
    assert {doc["status"] for doc in back["documents"]} == {"received"}
    assert fire_ok(county, claim["claim_no"], "verify")["state"] == "ready"


def test_request_materials_from_ready_sends_the_claim_back_to_pending_materials(county):
    claim = claim_in(county, "ready")
    after = fire_ok(county, claim["claim_no"], "request_materials", documents=["id_card"],
                    reason="身份证复印件不清")
    assert after["state"] == "pending_materials"
    assert after["missing_documents"] == ["id_card"]


def test_request_materials_that_asks_for_nothing_is_refused(county):
    claim = county.claim()  # every document received
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], "request_materials")
    assert answer.status_code == 422
    assert [e["code"] for e in answer.json["errors"]] == ["nothing_requested"]
    assert snapshot(county, claim["claim_no"]) == before
    asked = county.fire(claim["claim_no"], "request_materials", reason="请补交单位证明原件")
    assert asked.json["state"] == "pending_materials"


def test_request_materials_without_a_reason_asks_for_what_is_missing(county):
    claim = county.claim(documents=["claim_form", "id_card"])
    after = fire_ok(county, claim["claim_no"], "request_materials")
    assert after["state"] == "pending_materials"
    assert sorted(after["missing_documents"]) == ["discharge_summary", "invoice",
                                                  "settlement_sheet"]


# --- events: verify and the eligibility rules of SPEC §2 --------------------------------------


def test_verify_moves_a_complete_covered_claim_to_ready(county):
    claim = county.claim()
    after = fire_ok(county, claim["claim_no"], "verify")
    assert after["state"] == "ready"
    assert after["version"] == 2


def test_verify_lists_every_failed_rule_at_once(county):
    # Enrolled 800 days ago; an illness 10 days into the waiting period, discharged
    # more than 730 days ago, with one document, logged a second time.
    member = enrolled_member(county, start_days_ago=800)
    fields = stay(county, 790, days=2) | {"documents": ["claim_form"]}
    county.claim(member, **fields)
    duplicate = county.claim(member, **fields)
    before = snapshot(county, duplicate["claim_no"])
    answer = county.fire(duplicate["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"waiting_period", "claim_deadline", "documents_incomplete",
                                   "duplicate_claim"}
    assert all(error["message"] for error in answer.json["errors"])
    assert snapshot(county, duplicate["claim_no"]) == before


def test_verify_refuses_a_claim_of_a_member_not_enrolled(county):
    member = county.member()
    claim = county.claim(member, **stay(county, 900, days=3), documents=["claim_form"])
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"not_covered", "claim_deadline", "documents_incomplete"}


def test_verify_refuses_an_incident_before_the_coverage_starts(county):
    member = enrolled_member(county, start_days_ago=10)
    claim = county.claim(member, **stay(county, 30))
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"not_covered"}


def test_verify_names_the_coverage_of_a_member_enrolled_at_other_dates(county):
    member = county.member()
    start = county.today - timedelta(days=400)
    county.enrol(member, start=start, end=start + timedelta(days=199))  # ended 200 days ago
    claim = county.claim(member, **stay(county, 30))
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    [error] = answer.json["errors"]
    assert (error["code"], error["field"]) == ("not_covered", "incident_date")
    assert f"{start.year}年{start.month}月{start.day}日至" in error["message"]


def test_a_renewal_without_a_gap_does_not_wait_again(county):
    # Covered for a year, renewed the day after: an illness early in the new term is covered,
    # since the waiting period counts from the start of the unbroken coverage.
    member = county.member()
    first = county.today - timedelta(days=400)
    renewal = first + timedelta(days=366)  # 34 days ago
    county.enrol(member, start=first, end=renewal - timedelta(days=1))
    county.enrol(member, start=renewal, end=renewal + timedelta(days=364))
    claim = county.claim(member, **stay(county, 20))  # 14 days into the renewal
    assert fire_ok(county, claim["claim_no"], "verify")["state"] == "ready"


def test_a_renewal_after_a_gap_waits_again(county):
    member = county.member()
    first = county.today - timedelta(days=400)
    renewal = first + timedelta(days=367)  # a day without coverage in between
    county.enrol(member, start=first, end=renewal - timedelta(days=2))
    county.enrol(member, start=renewal, end=renewal + timedelta(days=364))
    claim = county.claim(member, **stay(county, 20))
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422 and error_codes(answer) == {"waiting_period"}


def test_verify_refuses_a_claim_in_its_waiting_period(county):
    member = enrolled_member(county, start_days_ago=100)  # start S = today - 100
    claim = county.claim(member, **stay(county, 100 - 89))  # S + 89 days
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"waiting_period"}


def test_verify_accepts_an_illness_on_the_day_the_waiting_period_ends(county):
    member = enrolled_member(county, start_days_ago=100)
    claim = county.claim(member, **stay(county, 100 - 90))  # S + 90 days
    assert fire_ok(county, claim["claim_no"], "verify")["state"] == "ready"


def test_verify_never_makes_an_accident_wait(county):
    member = enrolled_member(county, start_days_ago=100)
    claim = county.claim(member, **stay(county, 99), cause="accident")  # S + 1 day
    assert fire_ok(county, claim["claim_no"], "verify")["state"] == "ready"
    injured = enrolled_member(county, start_days_ago=5, product_code="accident")
    incident = (county.today - timedelta(days=5)).isoformat()  # the start day itself
    accident = county.claim(injured, "accident", **accident_fields(incident_date=incident))
    assert fire_ok(county, accident["claim_no"], "verify")["state"] == "ready"


def test_verify_refuses_a_claim_logged_after_the_deadline(county):
    member = enrolled_member(county, start_days_ago=1200)
    claim = county.claim(member, **stay(county, 1000, days=10))  # discharged 990 days ago
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"claim_deadline"}


@pytest.mark.parametrize("days_since_discharge, passes", [(730, True), (731, False)])
def test_verify_counts_the_claim_deadline_from_discharge(county, days_since_discharge, passes):
    member = enrolled_member(county, start_days_ago=1200)
    claim = county.claim(member, **stay(county, days_since_discharge + 7))
    answer = county.fire(claim["claim_no"], "verify")
    if passes:
        assert answer.status_code == 200, answer.json
    else:
        assert answer.status_code == 422
        assert error_codes(answer) == {"claim_deadline"}


def test_the_accident_deadline_counts_from_the_incident(county):
    member = enrolled_member(county, start_days_ago=800, product_code="accident")
    late = (county.today - timedelta(days=366)).isoformat()
    claim = county.claim(member, "accident", **accident_fields(incident_date=late))
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"claim_deadline"}


def test_verify_refuses_a_claim_with_documents_missing(county):
    claim = county.claim(documents=["claim_form", "id_card", "invoice"])
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"documents_incomplete"}


def test_verify_refuses_a_duplicate_but_a_withdrawn_claim_is_no_duplicate(county):
    member = enrolled_member(county)
    first = county.claim(member)
    second = county.claim(member)
    answer = county.fire(second["claim_no"], "verify")
    assert answer.status_code == 422
    assert error_codes(answer) == {"duplicate_claim"}
    fire_ok(county, first["claim_no"], "withdraw", reason="重复登记")
    assert fire_ok(county, second["claim_no"], "verify")["state"] == "ready"


# --- events: withdraw, and events that do not leave the claim's state ------------------------


@pytest.mark.parametrize("state", ["logged", "pending_materials", "ready"])
def test_withdraw_moves_the_claim_to_withdrawn(county, state):
    claim = claim_in(county, state)
    after = fire_ok(county, claim["claim_no"], "withdraw", reason="职工放弃申请")
    assert after["state"] == "withdrawn"
    assert after["version"] == claim["version"] + 1


@pytest.mark.parametrize("body", [{}, {"reason": None}, {"reason": ""}])
def test_withdraw_needs_a_reason(county, body):
    claim = county.claim()
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], "withdraw", **body)
    assert answer.status_code == 422
    assert "reason" in error_fields(answer)
    assert snapshot(county, claim["claim_no"]) == before


def test_withdraw_refuses_a_reason_of_blanks(county):
    claim = county.claim()
    answer = county.fire(claim["claim_no"], "withdraw", reason="   ")
    assert answer.status_code == 422
    assert "reason" in error_fields(answer)


def test_a_field_that_does_not_apply_may_be_sent_as_null(county):
    claim = county.claim()
    after = fire_ok(county, claim["claim_no"], "withdraw", reason="撤回", amount=None, place=None)
    assert after["state"] == "withdrawn"


@pytest.mark.parametrize("event, fields", [
    ("approve", {"amount": "1250.00"}),
    ("reject", {"reason": "不符合条件"}),
    ("return", {"reason": "材料不全"}),
])
def test_city_office_decisions_are_refused_from_logged(county, event, fields):
    claim = county.claim()
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], event, **fields)
    assert answer.status_code == 409
    assert set(answer.json["allowed_events"]) == LEAVING["logged"]
    assert snapshot(county, claim["claim_no"]) == before


@pytest.mark.parametrize("state, event, fields", [
    ("logged", "collect", {"id_number": "110101199003074514", "amount": "1.00",
                           "receipt_no": "R1"}),
    ("pending_materials", "request_materials", {}),
    ("ready", "verify", {}),
    ("ready", "attach_documents", {"documents": ["invoice"]}),
    ("withdrawn", "withdraw", {"reason": "再撤一次"}),
    ("withdrawn", "verify", {}),
])
def test_an_event_that_does_not_leave_the_state_answers_409_with_the_allowed_events(
        county, state, event, fields):
    claim = claim_in(county, state)
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], event, **fields)
    assert answer.status_code == 409, answer.json
    assert set(answer.json["allowed_events"]) == LEAVING[state]
    assert len(answer.json["allowed_events"]) == len(LEAVING[state])
    assert snapshot(county, claim["claim_no"]) == before


@pytest.mark.parametrize("event", ["approve_all", "submit", "Verify", ""])
def test_an_event_not_in_the_table_answers_422(county, event):
    claim = county.claim()
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], event)
    assert answer.status_code == 422
    assert "event" in error_fields(answer)
    assert snapshot(county, claim["claim_no"]) == before


def test_log_fired_on_an_existing_claim_answers_409(county):
    claim = county.claim()
    answer = county.fire(claim["claim_no"], "log")
    assert answer.status_code == 409
    assert set(answer.json["allowed_events"]) == LEAVING["logged"]


@pytest.mark.parametrize("event, fields, wrong", [
    ("withdraw", {"reason": "撤回", "amount": "100.00"}, "amount"),
    ("verify", {"reason": "看过了"}, "reason"),
    ("attach_documents", {"documents": ["invoice"], "place": "县总工会"}, "place"),
    ("request_materials", {"reason": "缺发票", "receipt_no": "R-9"}, "receipt_no"),
])
def test_a_field_that_does_not_apply_to_the_event_answers_422(county, event, fields, wrong):
    claim = county.claim()
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], event, **fields)
    assert answer.status_code == 422
    assert wrong in error_fields(answer)
    assert snapshot(county, claim["claim_no"]) == before


def test_an_unknown_field_answers_422(county):
    claim = county.claim()
    before = snapshot(county, claim["claim_no"])
    answer = county.fire(claim["claim_no"], "withdraw", reason="撤回", colour="red")
    assert answer.status_code == 422
    assert "colour" in error_fields(answer)
    assert snapshot(county, claim["claim_no"]) == before


def test_seal_is_not_fired_through_the_claim(county):
    """seal belongs to the weekly batch. Through POST /claims/{no}/events it is refused:
    409 (with allowed_events) from a state seal does not leave, such as logged, and
    403 from ready, the one state it leaves, because the claim is the wrong door."""
    logged = county.claim()
    before = snapshot(county, logged["claim_no"])
    answer = county.fire(logged["claim_no"], "seal")
    assert answer.status_code == 409
    assert set(answer.json["allowed_events"]) == LEAVING["logged"]
    assert snapshot(county, logged["claim_no"]) == before

    ready = claim_in(county, "ready")
    before = snapshot(county, ready["claim_no"])
    answer = county.fire(ready["claim_no"], "seal")
    assert answer.status_code == 403
    assert snapshot(county, ready["claim_no"]) == before
    assert before["state"] == "ready"


# --- concurrency: ETag and If-Match ---------------------------------------------------------


def test_an_event_with_the_current_etag_in_if_match_applies(county):
    claim = county.claim()
    etag = county.clerk.get(f"{CLAIMS}/{claim['claim_no']}").headers["ETag"]
    answer = county.clerk.post(f"{CLAIMS}/{claim['claim_no']}/events", {"event": "verify"},
                               headers={"If-Match": etag})
    assert answer.status_code == 200, answer.json
    assert answer.json["state"] == "ready"
    assert answer.json["version"] == 2
    assert answer.headers["ETag"] != etag
    assert answer.headers["ETag"] == county.clerk.get(f"{CLAIMS}/{claim['claim_no']}"
                                                      ).headers["ETag"]


def test_an_event_with_an_older_etag_answers_412_and_changes_nothing(county):
    claim = county.claim(documents=["claim_form"])
    stale = county.clerk.get(f"{CLAIMS}/{claim['claim_no']}").headers["ETag"]
    fire_ok(county, claim["claim_no"], "attach_documents", documents=COMPLETE)  # someone else
    before = snapshot(county, claim["claim_no"])
    answer = county.clerk.post(f"{CLAIMS}/{claim['claim_no']}/events",
                               {"event": "withdraw", "reason": "撤回"},
                               headers={"If-Match": stale})
    assert answer.status_code == 412
    assert answer.is_json
    after = snapshot(county, claim["claim_no"])
    assert after == before
    assert after["version"] == 2
    assert after["state"] == "logged"


def test_an_event_without_if_match_applies_to_the_current_version(county):
    claim = county.claim(documents=["claim_form"])
    fire_ok(county, claim["claim_no"], "attach_documents", documents=COMPLETE)
    after = fire_ok(county, claim["claim_no"], "verify")
    assert after["version"] == 3
    assert after["state"] == "ready"


# --- roles and unit scoping -----------------------------------------------------------------


@pytest.fixture
def two_units(county):
    """Unit staff of one unit, a claim of theirs, and a claim of another unit."""
    own, other = county.unit(), county.unit()
    staff = county.unit_staff(own["code"])
    own_member = enrolled_member(county, unit_code=own["code"])
    other_member = enrolled_member(county, unit_code=other["code"])
    return {
        "staff": staff, "own": own, "other": other,
        "own_member": own_member, "other_member": other_member,
        "own_claim": county.claim(own_member, by=staff),
        "other_claim": county.claim(other_member),
    }


def test_unit_staff_log_a_claim_for_their_own_units_member(county, two_units):
    answer = two_units["staff"].post(CLAIMS, county.claim_body(two_units["own_member"]))
    assert answer.status_code == 201, answer.json
    assert answer.json["state"] == "logged"


def test_unit_staff_cannot_log_a_claim_for_another_units_member(county, two_units):
    answer = two_units["staff"].post(CLAIMS, county.claim_body(two_units["other_member"]))
    assert answer.status_code == 422
    assert "unknown_member" in error_codes(answer)


def test_unit_staff_do_not_see_another_units_claim(county, two_units):
    staff, other = two_units["staff"], two_units["other_claim"]["claim_no"]
    answer = staff.get(f"{CLAIMS}/{other}")
    assert answer.status_code == 404
    assert answer.json["code"] == "not_found"
    assert staff.get(f"{CLAIMS}/{other}/events").status_code == 404
    before = snapshot(county, other)
    assert county.fire(other, "withdraw", by=staff, reason="撤回").status_code == 404
    assert county.fire(other, "attach_documents", by=staff,
                       documents=["invoice"]).status_code == 404
    assert snapshot(county, other) == before


def test_unit_staff_attach_documents_and_withdraw_their_own_claims(county, two_units):
    staff, own = two_units["staff"], two_units["own_claim"]["claim_no"]
    attached = county.fire(own, "attach_documents", by=staff, documents=["invoice"])
    assert attached.status_code == 200, attached.json
    assert attached.json["version"] == 2
    withdrawn = county.fire(own, "withdraw", by=staff, reason="职工出院后放弃")
    assert withdrawn.status_code == 200, withdrawn.json
    assert withdrawn.json["state"] == "withdrawn"
    assert trail(county, own)[-1]["actor"] == f"staff-{two_units['own']['code']}"


@pytest.mark.parametrize("event, fields", [
    ("verify", {}),
    ("request_materials", {"documents": ["invoice"], "reason": "发票不清"}),
])
def test_unit_staff_may_not_verify_or_request_materials(county, two_units, event, fields):
    staff, own = two_units["staff"], two_units["own_claim"]["claim_no"]
    before = snapshot(county, own)
    answer = county.fire(own, event, by=staff, **fields)
    assert answer.status_code == 403
    assert snapshot(county, own) == before


def test_unit_staff_list_only_their_units_claims(county, two_units):
    staff = two_units["staff"]
    mine = {claim["claim_no"] for claim in listed(staff).json}
    assert mine == {two_units["own_claim"]["claim_no"]}
    assert listed(staff, unit_code=two_units["other"]["code"]).json == []
    assert json.loads(listed(staff).headers["X-Pagination"])["total"] == 1
    assert {claim["claim_no"] for claim in listed(county.clerk).json} == {
        two_units["own_claim"]["claim_no"], two_units["other_claim"]["claim_no"]}


# --- the audit trail ------------------------------------------------------------------------


def test_the_audit_trail_lists_every_event_oldest_first(county):
    claim = county.claim(documents=["claim_form"])
    number = claim["claim_no"]
    fire_ok(county, number, "attach_documents", documents=["id_card", "invoice"])
    fire_ok(county, number, "request_materials", documents=["invoice"], reason="发票不清")
    fire_ok(county, number, "attach_documents", documents=COMPLETE)
    fire_ok(county, number, "verify")
    fire_ok(county, number, "withdraw", reason="职工撤回")
    events = trail(county, number)
    assert [(e["event"], e["from_state"], e["to_state"]) for e in events] == [
        ("log", None, "logged"),
        ("attach_documents", "logged", "logged"),
        ("request_materials", "logged", "pending_materials"),
        ("attach_documents", "pending_materials", "pending_materials"),
        ("verify", "pending_materials", "ready"),
        ("withdraw", "ready", "withdrawn"),
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert show(county, number)["version"] == 6
    assert {e["actor"] for e in events} == {"clerk"}
    for event in events:
        assert {"event", "from_state", "to_state", "actor", "at", "version"} <= set(event)
        assert event["at"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


def test_the_audit_trail_never_shows_a_full_id_number(county):
    member = enrolled_member(county)
    claim = county.claim(member)
    fire_ok(county, claim["claim_no"], "verify")
    raw = county.clerk.get(f"{CLAIMS}/{claim['claim_no']}/events").get_data(as_text=True)
    assert member["id_number"] not in raw


REFUSALS = {
    "409 wrong state": ("approve", {"amount": "100.00"}),
    "422 unknown event": ("approve_everything", {}),
    "422 field not applying": ("withdraw", {"reason": "撤回", "amount": "1.00"}),
    "422 unknown field": ("verify", {"colour": "red"}),
    "422 rule failed": ("verify", {}),
    "422 missing reason": ("withdraw", {}),
    "422 bad amount": ("approve", {"amount": "1.234"}),
    "403 role": ("verify", {}),
    "404 another unit": ("withdraw", {"reason": "撤回"}),
    "412 stale version": ("withdraw", {"reason": "撤回"}),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_event_writes_no_audit_event_and_changes_nothing(county, refusal):
    unit = county.unit()
    claim = county.claim(enrolled_member(county, unit_code=unit["code"]),
                         documents=["claim_form"])
    number = claim["claim_no"]
    before = snapshot(county, number)
    by = {"403 role": county.unit_staff(unit["code"]),
          "404 another unit": county.unit_staff(county.unit()["code"])}.get(refusal, county.clerk)
    headers = {"If-Match": '"0"'} if refusal == "412 stale version" else {}
    event, fields = REFUSALS[refusal]
    answer = by.post(f"{CLAIMS}/{number}/events", {"event": event, **fields}, headers=headers)
    assert answer.status_code == int(refusal.split()[0]), answer.json
    assert answer.is_json
    assert snapshot(county, number) == before
    assert [e["event"] for e in before["events"]] == ["log"]


def test_clerks_logging_claims_at_once_each_get_the_next_number(app, county):
    members = [county.member() for _ in range(4)]
    for member in members:
        county.enrol(member, "inpatient")
    token, barrier, answers = county.clerk.token, threading.Barrier(4), []

    def log_five(member: dict[str, Any]) -> None:
        clerk = type(county.clerk)(app.test_client(), token)
        barrier.wait()
        for _ in range(5):
            answers.append(clerk.post("/api/v1/claims", county.claim_body(member, "inpatient")))

    threads = [threading.Thread(target=log_five, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer.status_code for answer in answers] == [201] * 20
    numbers = sorted(answer.json["claim_no"] for answer in answers)
    year = numbers[0][2:6]
    assert numbers == [f"LP{year}-{n:06d}" for n in range(1, 21)]  # none skipped, none twice
    for answer in answers:  # each answer is its own claim, as saved, with its log event
        shown = county.clerk.get(f"/api/v1/claims/{answer.json['claim_no']}").json
        assert shown["estimate"] == answer.json["estimate"] and shown["version"] == 1
        trail = county.clerk.get(f"/api/v1/claims/{answer.json['claim_no']}/events").json
        assert [event["event"] for event in trail] == ["log"]
    # Each member logs one stay five times: the four later ones name the first as a duplicate.
    flagged = [answer for answer in answers if answer.json["warnings"]]
    assert len(flagged) == 16

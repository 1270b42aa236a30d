"""SPEC §7 "Amounts", "Dates" and "Input" as POST /api/v1/claims applies them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import new_id_number

from claims.idcard import mask

CLAIMS = "/api/v1/claims"
AMOUNT_FIELDS = ("total_expense", "insurance_paid", "self_paid")


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def member(county) -> dict[str, Any]:
    """A worker enrolled in every product a man may hold, covered since long ago."""
    member = county.member(born=date(1980, 5, 1))
    start = county.today - timedelta(days=400)
    for product in ("inpatient", "accident", "critical_illness"):
        county.enrol(member, product, start=start, end=start + timedelta(days=800))
    return member


def claims_total(county) -> int:
    answer = county.clerk.get(CLAIMS)
    assert answer.status_code == 200, answer.json
    return json.loads(answer.headers["X-Pagination"])["total"]


def log(county, body: dict[str, Any]) -> Any:
    return county.clerk.post(CLAIMS, body)


def log_raw(county, body: dict[str, Any], **raw_numbers: str) -> Any:
    """POST with some fields spelled as raw JSON numbers (1.230 stays 1.230 on the wire)."""
    placeholders = {name: f"__{name}__" for name in raw_numbers}
    text = json.dumps(body | placeholders, ensure_ascii=False)
    for name, spelling in raw_numbers.items():
        text = text.replace(f'"__{name}__"', spelling)
    return county.clerk.post(CLAIMS, data=text.encode(), content_type="application/json")


def refused(answer: Any, field: str, code: str | None = None) -> dict[str, Any]:
    """A 422 in the contract's error shape that names `field` (with `code`, if given)."""
    assert answer.status_code == 422, (answer.status_code, answer.get_data(as_text=True))
    body = answer.json
    assert {"code", "message", "errors"} <= set(body), body
    named = [e for e in body["errors"] if e.get("field") == field]
    assert named, body
    if code is not None:
        assert code in {e["code"] for e in named}, body
    return body


def created(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 201, (answer.status_code, answer.get_data(as_text=True))
    return answer.json


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize("sent, shown", [
    ("1500", "1500.00"),
    ("1500.5", "1500.50"),
    ("1500.25", "1500.25"),
    (1500, "1500.00"),
    (1500.25, "1500.25"),
    ("0", "0.00"),
    ("21474836.47", "21474836.47"),
], ids=["string-integer", "string-one-place", "string-two-places", "json-integer",
        "json-number", "zero", "largest-32-bit-fen"])
def test_amounts_accept_strings_and_numbers_and_answer_two_places(county, member, sent, shown):
    claim = created(log(county, county.claim_body(
        member, total_expense=sent, insurance_paid="0", self_paid="0")))
    assert claim["total_expense"] == shown
    assert claim["insurance_paid"] == "0.00" and claim["self_paid"] == "0.00"
    assert county.clerk.get(f"{CLAIMS}/{claim['claim_no']}").json["total_expense"] == shown


@pytest.mark.parametrize("sent", ["99999999.99", "21474836.48"],
                         ids=["the-largest", "just-past-32-bit-fen"])
def test_amounts_up_to_99999999_99_are_kept_exactly(county, member, sent):
    claim = created(log(county, county.claim_body(
        member, total_expense=sent, insurance_paid="0", self_paid=sent)))
    assert (claim["total_expense"], claim["self_paid"]) == (sent, sent)
    assert claim["estimate"] == "5000.00"  # the year's cap, 1 share


@pytest.mark.parametrize("field", AMOUNT_FIELDS)
def test_each_amount_field_keeps_its_value_to_the_fen(county, member, field):
    body = county.claim_body(member, total_expense="9000.00", insurance_paid="1000.00",
                             self_paid="2000.00")
    body[field] = "1234.56" if field != "total_expense" else "8765.43"
    claim = created(log(county, body))
    assert claim[field] == body[field]


def test_json_numbers_keep_their_spelling_when_valid(county, member):
    body = county.claim_body(member)
    claim = created(log_raw(county, body, total_expense="8000.10", insurance_paid="4000",
                            self_paid="3000.5"))
    assert (claim["total_expense"], claim["insurance_paid"], claim["self_paid"]) == (
        "8000.10", "4000.00", "3000.50")


BAD_AMOUNTS = {
    "three-places-string": ("1.230", "too_many_decimals"),
    "three-places-nonzero": ("1500.001", "too_many_decimals"),
    "negative-string": ("-1", "negative_amount"),
    "negative-number": (-1, "negative_amount"),
    "nan": ("NaN", None),
    "infinity": ("Infinity", None),
    "above-the-maximum": ("100000000.00", "amount_too_large"),
    "not-a-number": ("abc", None),
    "empty": ("", None),
    "boolean": (True, None),
    "null": (None, None),
    "object": ({"yuan": 1}, None),
    "list": ([1], None),
}


@pytest.mark.parametrize("value, code", BAD_AMOUNTS.values(), ids=BAD_AMOUNTS.keys())
@pytest.mark.parametrize("field", AMOUNT_FIELDS)
def test_bad_amounts_answer_422_naming_the_field_and_create_nothing(county, member, field,
                                                                   value, code):
    before = claims_total(county)
    refused(log(county, county.claim_body(member, **{field: value})), field, code)
    assert claims_total(county) == before


BAD_RAW_NUMBERS = {
    "three-places": ("1.230", "too_many_decimals"),
    "exponent-below-fen": ("1e-3", "too_many_decimals"),
    "negative": ("-1", "negative_amount"),
    "negative-zero-point-five": ("-0.5", "negative_amount"),
    "nan": ("NaN", None),
    "infinity": ("Infinity", None),
    "minus-infinity": ("-Infinity", None),
    "above-the-maximum": ("100000000.00", "amount_too_large"),
    "huge-exponent": ("1e400", "amount_too_large"),
}


@pytest.mark.parametrize("spelling, code", BAD_RAW_NUMBERS.values(),
                         ids=BAD_RAW_NUMBERS.keys())
def test_bad_json_numbers_answer_422_never_rounded(county, member, spelling, code):
    before = claims_total(county)
    body = county.claim_body(member, insurance_paid="0", self_paid="0")
    refused(log_raw(county, body, total_expense=spelling), "total_expense", code)
    assert claims_total(county) == before


NOT_ASCII_AMOUNTS = {
    "underscore-grouping": "1_000.00",
    "underscores-in-fraction": "1_0.0_0",
    "full-width-digits": "１００",
    "arabic-indic-digits": "٣.٥٠",
}


@pytest.mark.parametrize("written", NOT_ASCII_AMOUNTS.values(), ids=NOT_ASCII_AMOUNTS.keys())
@pytest.mark.parametrize("field", AMOUNT_FIELDS)
def test_amounts_written_with_other_than_ascii_digits_answer_422_naming_the_field(
        county, member, field, written):
    refused(log(county, county.claim_body(member, **{field: written})), field, "invalid_amount")
    assert claims_total(county) == 0


@pytest.mark.parametrize("insurance_paid, self_paid", [
    ("5000.00", "3000.01"),
    ("8000.01", "0"),
    ("0", "8000.01"),
], ids=["sum-one-fen-over", "insurance-over", "self-paid-over"])
def test_insurance_paid_and_self_paid_may_not_exceed_total_expense(county, member,
                                                                   insurance_paid, self_paid):
    body = county.claim_body(member, total_expense="8000.00", insurance_paid=insurance_paid,
                             self_paid=self_paid)
    answer = log(county, body)
    assert answer.status_code == 422, answer.json
    assert set(AMOUNT_FIELDS) & {e["field"] for e in answer.json["errors"]}, answer.json
    assert claims_total(county) == 0


@pytest.mark.parametrize("field", AMOUNT_FIELDS)
def test_a_missing_amount_is_refused_as_required_and_for_nothing_else(county, member, field):
    body = county.claim_body(member)
    del body[field]
    answer = log(county, body)
    refused(answer, field, "required")
    assert [(e["field"], e["code"]) for e in answer.json["errors"]] == [(field, "required")]
    assert claims_total(county) == 0


def test_insurance_paid_and_self_paid_may_equal_total_expense(county, member):
    body = county.claim_body(member, total_expense="8000.00", insurance_paid="5000.00",
                             self_paid="3000.00")
    created(log(county, body))


# --- dates ----------------------------------------------------------------------------------


def test_an_incident_tomorrow_answers_422(county, member):
    tomorrow = (county.today + timedelta(days=1)).isoformat()
    body = county.claim_body(member, incident_date=tomorrow, admission_date=tomorrow,
                             discharge_date=tomorrow)
    refused(log(county, body), "incident_date")


def test_an_incident_today_is_accepted(county, member):
    today = county.today.isoformat()
    created(log(county, county.claim_body(member, incident_date=today, admission_date=today,
                                          discharge_date=today)))


@pytest.mark.parametrize("field", ["admission_date", "discharge_date"])
def test_a_stay_date_tomorrow_answers_422(county, member, field):
    tomorrow = (county.today + timedelta(days=1)).isoformat()
    body = county.claim_body(member, discharge_date=tomorrow) | {field: tomorrow}
    refused(log(county, body), field)


def test_discharge_before_admission_answers_422(county, member):
    admission = county.today - timedelta(days=10)
    body = county.claim_body(member, incident_date=admission.isoformat(),
                             admission_date=admission.isoformat(),
                             discharge_date=(admission - timedelta(days=1)).isoformat())
    refused(log(county, body), "discharge_date")


def test_discharge_on_the_day_of_admission_is_accepted(county, member):
    day = (county.today - timedelta(days=10)).isoformat()
    created(log(county, county.claim_body(member, incident_date=day, admission_date=day,
                                          discharge_date=day)))


@pytest.mark.parametrize("value", ["2026-02-30", "2025-13-01", "15/03/2025", "yesterday",
                                   "", 20250315, None],
                         ids=["february-30", "month-13", "not-iso", "a-word", "empty",
                              "a-number", "null"])
def test_an_incident_date_that_is_not_an_iso_date_answers_422(county, member, value):
    refused(log(county, county.claim_body(member, incident_date=value)), "incident_date")


def test_a_discharge_date_on_a_claim_without_a_stay_answers_422_not_applicable(county, member):
    body = county.claim_body(member, "critical_illness",
                             discharge_date=(county.today - timedelta(days=5)).isoformat())
    refused(log(county, body), "discharge_date", "not_applicable")


def test_an_accident_claim_may_record_its_hospital_stay(county, member):
    injured = county.today - timedelta(days=12)
    body = county.claim_body(member, "accident", cause="accident",
                             incident_date=injured.isoformat(),
                             admission_date=injured.isoformat(),
                             discharge_date=(injured + timedelta(days=6)).isoformat(),
                             hospital="县人民医院", total_expense="6000.00",
                             insurance_paid="3000.00", self_paid="2000.00")
    claim = created(log(county, body))
    shown = county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json
    assert (shown["admission_date"], shown["discharge_date"]) == (
        body["admission_date"], body["discharge_date"])


def test_stay_fields_may_be_null_on_a_claim_without_a_stay(county, member):
    body = county.claim_body(member, "critical_illness", admission_date=None,
                             discharge_date=None, disability_grade=None)
    created(log(county, body))


@pytest.mark.parametrize("admission", ["omitted", None], ids=["omitted", "null"])
def test_a_discharge_without_an_admission_answers_422_naming_discharge_date(county, member,
                                                                            admission):
    body = county.claim_body(member)
    if admission == "omitted":
        del body["admission_date"]
    else:
        body["admission_date"] = None
    answer = log(county, body)
    refused(answer, "discharge_date", "not_applicable")
    assert {e["field"] for e in answer.json["errors"]} == {"discharge_date"}
    assert claims_total(county) == 0


def test_an_admission_without_a_discharge_is_a_stay_still_going_on(county, member):
    claim = created(log(county, county.claim_body(member, discharge_date=None)))
    assert claim["admission_date"] and claim["discharge_date"] is None


def test_an_in_patient_claim_without_stay_dates_is_still_accepted(county, member):
    created(log(county, county.claim_body(member, admission_date=None, discharge_date=None)))


@pytest.fixture
def far_zone(county, monkeypatch):
    """Switch the county's configured time zone; answers that zone's today."""
    runtime = county.app.extensions["mutualaid"]

    def switch(zone: str) -> date:
        monkeypatch.setattr(runtime, "settings", replace(runtime.settings, timezone=zone))
        return datetime.now(ZoneInfo(zone)).date()

    return switch


def test_today_is_the_configured_zones_today(county, member, far_zone):
    ahead = far_zone("Etc/GMT-14").isoformat()  # UTC+14: already tomorrow for most of the world
    created(log(county, county.claim_body(member, incident_date=ahead, admission_date=ahead,
                                          discharge_date=ahead)))
    behind = far_zone("Etc/GMT+12")  # UTC-12: still yesterday for most of the world
    tomorrow = (behind + timedelta(days=1)).isoformat()
    refused(log(county, county.claim_body(member, incident_date=tomorrow,
                                          admission_date=tomorrow, discharge_date=tomorrow)),
            "incident_date")


# --- fields that do not apply, required fields, unknown things -------------------------------


def test_a_disability_grade_on_an_illness_claim_answers_422(county, member):
    refused(log(county, county.claim_body(member, disability_grade=5)), "disability_grade",
            "not_applicable")


def accident_body(county, member: dict[str, Any], **fields: Any) -> dict[str, Any]:
    incident = (county.today - timedelta(days=10)).isoformat()
    return county.claim_body(member, "accident", cause="accident", incident_date=incident,
                             total_expense="0", insurance_paid="0", self_paid="0",
                             documents=["claim_form", "id_card", "accident_proof"]) | fields


@pytest.mark.parametrize("grade", [0, 11, -1, "5", 2.5, True],
                         ids=["0", "11", "negative", "string", "fraction", "boolean"])
def test_a_disability_grade_outside_1_to_10_answers_422(county, member, grade):
    refused(log(county, accident_body(county, member, disability_grade=grade)),
            "disability_grade")


def test_an_accident_claim_with_a_disability_grade_is_accepted(county, member):
    claim = created(log(county, accident_body(county, member, disability_grade=10)))
    assert claim["disability_grade"] == 10
    assert claim["estimate"] == "2000.00"  # 10% of 20,000 x 1 share


def test_a_disability_assessment_date_is_kept_and_checked(county, member):
    incident = county.today - timedelta(days=200)
    late = created(log(county, accident_body(
        county, member, incident_date=incident.isoformat(), disability_grade=10,
        disability_assessed_on=(incident + timedelta(days=190)).isoformat())))
    assert late["disability_assessed_on"] == (incident + timedelta(days=190)).isoformat()
    assert late["estimate"] == "0.00"  # assessed after 180 days: the grade pays nothing
    assert any("伤残鉴定日期晚于" in warning for warning in late["warnings"])
    undated = created(log(county, accident_body(county, member, disability_grade=10)))
    assert undated["estimate"] == "2000.00"
    assert any("未填伤残鉴定日期" in warning for warning in undated["warnings"])
    shown = county.clerk.get(f"/api/v1/claims/{late['claim_no']}").json
    assert shown["disability_assessed_on"] == late["disability_assessed_on"]


@pytest.mark.parametrize(("fields", "code"), [
    ({"disability_assessed_on": "2026-01-01"}, "not_applicable"),  # no grade
    ({"disability_grade": 3, "disability_assessed_on": "2000-01-01"},
     "assessed_before_incident"),
    ({"disability_grade": 3, "disability_assessed_on": "2999-01-01"}, "date_in_future"),
    ({"disability_grade": 3, "disability_assessed_on": "2026-13-01"}, None),
], ids=["without-grade", "before-incident", "future", "not-a-date"])
def test_a_wrong_disability_assessment_date_answers_422(county, member, fields, code):
    refused(log(county, accident_body(county, member, **fields)), "disability_assessed_on",
            *([code] if code else []))


@pytest.mark.parametrize("field", ["id_number", "product_code", "cause", "incident_date",
                                   *AMOUNT_FIELDS])
def test_a_missing_required_field_answers_422_naming_it(county, member, field):
    body = county.claim_body(member)
    del body[field]
    refused(log(county, body), field, "required")
    assert claims_total(county) == 0


@pytest.mark.parametrize("field", ["id_number", "product_code", "cause", "incident_date",
                                   *AMOUNT_FIELDS])
def test_a_null_required_field_answers_422_naming_it(county, member, field):
    refused(log(county, county.claim_body(member, **{field: None})), field)


def test_a_lump_sum_claim_may_omit_the_expense_fields(county, member):
    body = county.claim_body(member, "critical_illness",
                             documents=["claim_form", "id_card", "diagnosis_certificate",
                                        "pathology_report"])
    assert not set(AMOUNT_FIELDS) & set(body)
    claim = created(log(county, body))
    assert claim["state"] == "logged"
    assert claim["estimate"] == "10000.00"
    assert claim["missing_documents"] == []


def test_an_unknown_member_answers_422(county, member):
    refused(log(county, county.claim_body(member, id_number=new_id_number())), "id_number")


def test_an_invalid_id_number_answers_422(county, member):
    bad = member["id_number"][:17] + ("0" if member["id_number"][17] != "0" else "1")
    refused(log(county, county.claim_body(member, id_number=bad)), "id_number")


def test_an_unknown_product_answers_422(county, member):
    refused(log(county, county.claim_body(member, product_code="dental")), "product_code")


@pytest.mark.parametrize("cause", ["sickness", "", None])
def test_a_cause_other_than_illness_or_accident_answers_422(county, member, cause):
    refused(log(county, county.claim_body(member, cause=cause)), "cause")


def test_an_unknown_field_answers_422(county, member):
    refused(log(county, county.claim_body(member, ward="3B")), "ward")


@pytest.mark.parametrize("field", ["hospital", "diagnosis"])
def test_text_over_200_characters_answers_422(county, member, field):
    refused(log(county, county.claim_body(member, **{field: "院" * 201})), field)


def test_text_of_200_characters_is_kept_verbatim(county, member):
    hospital = "县" * 199 + " "
    claim = created(log(county, county.claim_body(member, hospital=hospital)))
    assert claim["hospital"] == hospital


def test_a_document_code_not_of_the_product_answers_422(county, member):
    body = county.claim_body(member, documents=["claim_form", "death_certificate"])
    refused(log(county, body), "documents")


def test_a_document_sent_twice_is_harmless(county, member):
    claim = created(log(county, county.claim_body(member, documents=[
        "claim_form", "claim_form", "id_card", "invoice", "settlement_sheet",
        "discharge_summary"])))
    assert claim["missing_documents"] == []
    assert sorted(d["code"] for d in claim["documents"]) == sorted(
        ["claim_form", "id_card", "invoice", "settlement_sheet", "discharge_summary"])


# --- death claims ---------------------------------------------------------------------------


def beneficiary(**fields: Any) -> dict[str, Any]:
    return {"name": "李娜", "id_number": new_id_number(sex="F"), "relation": "配偶"} | fields


def test_a_death_claim_with_a_beneficiary_is_201_and_masks_the_beneficiary_id(county, member):
    heir = beneficiary()
    answer = log(county, accident_body(county, member, death=True, beneficiary=heir))
    claim = created(answer)
    assert claim["death"] is True
    assert claim["estimate"] == "20000.00"
    assert claim["beneficiary"]["name"] == "李娜"
    assert claim["beneficiary"]["relation"] == "配偶"
    assert claim["beneficiary"]["id_number_masked"] == mask(heir["id_number"])
    shown = county.clerk.get(f"{CLAIMS}/{claim['claim_no']}")
    listed = county.clerk.get(CLAIMS)
    for text in (answer.get_data(as_text=True), shown.get_data(as_text=True),
                 listed.get_data(as_text=True)):
        assert heir["id_number"] not in text
        assert member["id_number"] not in text
    assert "death_certificate" in claim["missing_documents"]


def test_a_death_claim_without_a_beneficiary_answers_422(county, member):
    refused(log(county, accident_body(county, member, death=True)), "beneficiary")


@pytest.mark.parametrize("field", ["name", "id_number", "relation"])
def test_a_beneficiary_missing_a_field_answers_422(county, member, field):
    heir = beneficiary()
    del heir[field]
    answer = log(county, accident_body(county, member, death=True, beneficiary=heir))
    assert answer.status_code == 422, answer.json
    assert any(field in (e["field"] or "") for e in answer.json["errors"]), answer.json


def test_an_unknown_beneficiary_field_answers_422(county, member):
    heir = beneficiary(phone="13700000000")
    answer = log(county, accident_body(county, member, death=True, beneficiary=heir))
    assert answer.status_code == 422, answer.json
    assert any("phone" in (e["field"] or "") for e in answer.json["errors"]), answer.json


def test_a_beneficiary_name_over_200_characters_answers_422(county, member):
    heir = beneficiary(name="李" * 201)
    answer = log(county, accident_body(county, member, death=True, beneficiary=heir))
    assert answer.status_code == 422, answer.json
    assert any("name" in (e["field"] or "") for e in answer.json["errors"]), answer.json


def test_a_death_claim_with_a_disability_grade_answers_422(county, member):
    body = accident_body(county, member, death=True, beneficiary=beneficiary(),
                         disability_grade=3)
    refused(log(county, body), "disability_grade")


def test_a_death_claim_on_a_product_without_death_benefit_answers_422(county, member):
    body = county.claim_body(member, death=True, beneficiary=beneficiary())
    refused(log(county, body), "death")


def test_a_beneficiary_on_a_claim_that_is_not_a_death_answers_422(county, member):
    body = accident_body(county, member, beneficiary=beneficiary())
    refused(log(county, body), "beneficiary", "not_applicable")


@pytest.mark.parametrize("death", ["yes", 1], ids=["string", "integer"])
def test_death_must_be_a_json_boolean(county, member, death):
    refused(log(county, accident_body(county, member, death=death, beneficiary=beneficiary())),
            "death")


def test_a_claim_that_with_others_undecided_would_pass_the_years_cap_is_flagged(county):
    """SPEC §2 counts only approved-to-collected claims as paid; two claims in flight may
    each be estimated up to the whole of what is left. The second is logged with a warning."""
    member = county.member()
    year = county.today.year - 1  # a whole year behind us: all three stays fall in it
    county.enrol(member, start=date(year, 1, 1), end=county.today + timedelta(days=30))

    def stay(month: int, **fields: str) -> dict:
        first_day = date(year, month, 1).isoformat()
        return created(log(county, county.claim_body(
            member, incident_date=first_day, admission_date=first_day,
            discharge_date=date(year, month, 6).isoformat(), **fields)))

    first = stay(6, self_paid="12000.00", total_expense="20000.00")  # one share: 5,000 a year
    assert first["estimate"] == "5000.00" and first["warnings"] == []
    second = stay(7)
    assert second["estimate"] == "1250.00"  # the estimate itself is SPEC §2's
    assert any("另有未决理赔" in warning for warning in second["warnings"])
    assert county.fire(first["claim_no"], "withdraw", reason="登记错了").status_code == 200
    third = stay(8)
    assert not any("另有未决理赔" in warning for warning in third["warnings"])  # 2,500 of 5,000

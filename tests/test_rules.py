"""SPEC §2: benefit estimate, eligibility, needed documents and enrolment limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claims.money import MAX_FEN, format_fen, parse_yuan
from claims.rules import (
    ClaimFacts,
    Coverage,
    conditions_met,
    deadline,
    document_statuses,
    eligibility,
    enrolment_problems,
    estimate,
    missing_documents,
    needed_documents,
)
from config.catalogue import Benefit, Product, load_catalogue

CATALOGUE = load_catalogue()
INPATIENT = CATALOGUE.products["inpatient"]
ACCIDENT = CATALOGUE.products["accident"]
CRITICAL = CATALOGUE.products["critical_illness"]
FEMALE = CATALOGUE.products["female_special"]

YEAR_2026 = Coverage(start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), shares=1)


def yuan(text: str) -> int:
    """Yuan as written in the SPEC, in fen."""
    return parse_yuan(text)


def stay(**changes: object) -> ClaimFacts:
    """An in-patient illness stay in May 2026, logged in June, with no expenses unless given."""
    facts = ClaimFacts(
        cause="illness",
        incident_date=date(2026, 5, 10),
        admission_date=date(2026, 5, 10),
        discharge_date=date(2026, 5, 20),
        total_expense=0,
        insurance_paid=0,
        self_paid=0,
        disability_grade=None,
        death=False,
        logged_on=date(2026, 6, 1),
    )
    return replace(facts, **changes)


def accident(**changes: object) -> ClaimFacts:
    """An accident on 10 May 2026 without a stay or expenses unless given."""
    return stay(cause="accident", admission_date=None, discharge_date=None, **changes)


def diagnosis(**changes: object) -> ClaimFacts:
    """A first diagnosis of a serious illness on 10 August 2026 (after the 180-day wait)."""
    first = {"incident_date": date(2026, 8, 10), "logged_on": date(2026, 9, 1)} | changes
    return stay(admission_date=None, discharge_date=None, **first)


def with_expenses(facts: ClaimFacts, self_paid: str) -> ClaimFacts:
    """The same claim with a self-paid expense (and a total twice as large)."""
    fen = yuan(self_paid)
    return replace(facts, total_expense=2 * fen, insurance_paid=fen, self_paid=fen)


def all_received(product: Product, facts: ClaimFacts) -> list[dict]:
    """The documents array of a claim whose every needed document has arrived."""
    return document_statuses(product, facts, needed_documents(product, facts))


def check(
    product: Product, facts: ClaimFacts, coverage: Coverage | None = YEAR_2026, **changes: object
) -> list[str]:
    """The codes of the eligibility rules a claim fails; a complete, unique claim by default."""
    options = {
        "documents": all_received(product, facts),
        "has_earlier_duplicate": False,
        "paid_lifetime": 0,
    } | changes
    return [failure.code for failure in eligibility(product, facts, coverage, **options)]


def pay(
    product: Product, facts: ClaimFacts, shares: int = 1, *, this_year: int = 0, lifetime: int = 0
) -> str | None:
    """The estimate as the SPEC writes amounts: a yuan string with two places."""
    return format_fen(
        estimate(product, facts, shares, paid_this_year=this_year, paid_lifetime=lifetime)
    )


# --- benefit estimate: in-patient ------------------------------------------------------


def test_inpatient_pays_half_of_self_paid_above_the_500_yuan_deductible():
    assert pay(INPATIENT, with_expenses(stay(), "3000")) == "1250.00"


def test_inpatient_benefit_scales_with_shares():
    assert pay(INPATIENT, with_expenses(stay(), "3000"), shares=3) == "3750.00"


def test_inpatient_pays_nothing_below_the_deductible():
    assert pay(INPATIENT, with_expenses(stay(), "499.99")) == "0.00"
    assert pay(INPATIENT, with_expenses(stay(), "500")) == "0.00"


def test_inpatient_is_capped_at_5000_yuan_a_year_per_share():
    big = with_expenses(stay(), "100000")
    assert pay(INPATIENT, big) == "5000.00"
    assert pay(INPATIENT, big, shares=3) == "15000.00"


def test_inpatient_cap_is_reduced_by_what_was_paid_this_year():
    big = with_expenses(stay(), "100000")
    assert pay(INPATIENT, big, this_year=yuan("4000")) == "1000.00"
    assert pay(INPATIENT, big, shares=2, this_year=yuan("4000")) == "6000.00"


def test_inpatient_below_the_remaining_cap_pays_in_full():
    assert pay(INPATIENT, with_expenses(stay(), "3000"), this_year=yuan("3000")) == "1250.00"


def test_inpatient_estimate_is_never_negative_when_the_year_is_used_up():
    big = with_expenses(stay(), "100000")
    assert pay(INPATIENT, big, this_year=yuan("5000")) == "0.00"
    assert pay(INPATIENT, big, this_year=yuan("6000")) == "0.00"


# --- benefit estimate: accident --------------------------------------------------------


def test_accident_pays_80_percent_of_self_paid_medical_expense():
    assert pay(ACCIDENT, with_expenses(accident(), "1000")) == "800.00"


def test_accident_medical_is_capped_at_2000_yuan_per_share_per_accident():
    big = with_expenses(accident(), "10000")
    assert pay(ACCIDENT, big) == "2000.00"
    assert pay(ACCIDENT, big, shares=3) == "6000.00"


def test_accident_medical_cap_is_per_accident_not_per_year():
    big = with_expenses(accident(), "10000")
    assert pay(ACCIDENT, big, this_year=yuan("2000")) == "2000.00"


def test_accident_without_expenses_pays_no_medical_part():
    assert pay(ACCIDENT, accident()) == "0.00"


@pytest.mark.parametrize(
    ("grade", "one_share", "three_shares"),
    [(1, "20000.00", "60000.00"), (5, "12000.00", "36000.00"), (10, "2000.00", "6000.00")],
)
def test_disability_pays_the_grade_table_share_of_20000_yuan(grade, one_share, three_shares):
    facts = accident(disability_grade=grade)
    assert pay(ACCIDENT, facts) == one_share
    assert pay(ACCIDENT, facts, shares=3) == three_shares


def test_disability_and_medical_expense_add_up():
    facts = with_expenses(accident(disability_grade=10), "1000")
    assert pay(ACCIDENT, facts) == "2800.00"


def test_a_disability_assessed_within_180_days_of_the_accident_pays_its_grade():
    incident = accident().incident_date
    on_time = accident(disability_grade=5, disability_assessed_on=incident + timedelta(days=180))
    assert pay(ACCIDENT, on_time) == "12000.00"
    unknown = accident(disability_grade=5, disability_assessed_on=None)
    assert pay(ACCIDENT, unknown) == "12000.00"  # no date: the clerk is warned, not refused


def test_a_disability_assessed_later_pays_the_medical_part_only():
    incident = accident().incident_date
    late = with_expenses(accident(disability_grade=5,
                                  disability_assessed_on=incident + timedelta(days=181)), "1000")
    assert pay(ACCIDENT, late) == "800.00"
    assert "disability_assessment" in needed_documents(ACCIDENT, late)  # still to be brought


def test_death_pays_20000_yuan_per_share():
    assert pay(ACCIDENT, accident(death=True)) == "20000.00"
    assert pay(ACCIDENT, accident(death=True), shares=2) == "40000.00"


def test_death_after_treatment_also_pays_the_medical_part():
    facts = with_expenses(accident(death=True), "1000")
    assert pay(ACCIDENT, facts) == "20800.00"


# --- benefit estimate: lump sums -------------------------------------------------------


def test_critical_illness_pays_10000_yuan_per_share_on_first_diagnosis():
    assert pay(CRITICAL, diagnosis()) == "10000.00"
    assert pay(CRITICAL, diagnosis(), shares=3) == "30000.00"


def test_female_special_illness_pays_5000_yuan_per_share():
    assert pay(FEMALE, diagnosis()) == "5000.00"
    assert pay(FEMALE, diagnosis(), shares=2) == "10000.00"


def test_lump_sum_is_paid_once_per_member():
    assert pay(CRITICAL, diagnosis(), lifetime=yuan("10000")) == "0.00"
    assert pay(CRITICAL, diagnosis(), shares=2, lifetime=yuan("10000")) == "10000.00"
    assert pay(CRITICAL, diagnosis(), lifetime=yuan("30000")) == "0.00"


def test_lump_sum_ignores_expenses():
    assert pay(CRITICAL, with_expenses(diagnosis(), "80000")) == "10000.00"


# --- rounding --------------------------------------------------------------------------


def test_half_a_fen_rounds_up():
    # (500.01 - 500) x 0.5 = 0.005 yuan
    assert pay(INPATIENT, with_expenses(stay(), "500.01")) == "0.01"


def test_accident_medical_rounds_half_up_to_the_fen():
    # 0.01 x 0.8 = 0.008 yuan; 0.03 x 0.8 = 0.024 yuan
    assert pay(ACCIDENT, with_expenses(accident(), "0.01")) == "0.01"
    assert pay(ACCIDENT, with_expenses(accident(), "0.03")) == "0.02"


def test_estimate_rounds_once_at_the_end_not_per_component():
    two_parts = replace(
        INPATIENT,
        benefits=(
            Benefit(type="expense", base="self_paid", ratio=Decimal("0.4")),
            Benefit(type="expense", base="insurance_paid", ratio=Decimal("0.4")),
        ),
    )
    one_fen_each = stay(total_expense=2, insurance_paid=1, self_paid=1)
    # 0.4 + 0.4 = 0.8 fen -> 1 fen; rounding each part first would give 0 + 0.
    assert estimate(two_parts, one_fen_each, 1, paid_this_year=0, paid_lifetime=0) == 1


def test_half_fen_parts_are_not_each_rounded_up():
    two_parts = replace(
        INPATIENT,
        benefits=(
            Benefit(type="expense", base="self_paid", ratio=Decimal("0.5")),
            Benefit(type="expense", base="insurance_paid", ratio=Decimal("0.5")),
        ),
    )
    one_fen_each = stay(total_expense=2, insurance_paid=1, self_paid=1)
    # 0.5 + 0.5 = 1 fen; rounding each part first would give 1 + 1.
    assert estimate(two_parts, one_fen_each, 1, paid_this_year=0, paid_lifetime=0) == 1


# --- estimate properties ---------------------------------------------------------------

fen_amounts = st.integers(min_value=0, max_value=MAX_FEN)
shares_held = st.integers(min_value=1, max_value=3)


@given(self_paid=fen_amounts, shares=shares_held, paid_this_year=fen_amounts)
def test_inpatient_estimate_is_never_negative_nor_above_the_remaining_yearly_cap(
    self_paid, shares, paid_this_year
):
    facts = stay(total_expense=self_paid, self_paid=self_paid)
    paid = estimate(INPATIENT, facts, shares, paid_this_year=paid_this_year, paid_lifetime=0)
    assert 0 <= paid <= max(0, yuan("5000") * shares - paid_this_year)


@given(
    self_paid=fen_amounts,
    shares=shares_held,
    grade=st.none() | st.integers(min_value=1, max_value=10),
    death=st.booleans(),
)
def test_accident_medical_part_is_never_above_2000_yuan_per_share(self_paid, shares, grade, death):
    facts = accident(
        total_expense=self_paid, self_paid=self_paid, disability_grade=grade, death=death
    )
    without_medical = replace(facts, total_expense=0, self_paid=0)
    medical = estimate(ACCIDENT, facts, shares, paid_this_year=0, paid_lifetime=0) - estimate(
        ACCIDENT, without_medical, shares, paid_this_year=0, paid_lifetime=0
    )
    assert 0 <= medical <= yuan("2000") * shares


@given(shares=shares_held, paid_lifetime=fen_amounts)
def test_lump_sum_is_never_negative_nor_above_the_sum_per_share(shares, paid_lifetime):
    paid = estimate(CRITICAL, diagnosis(), shares, paid_this_year=0, paid_lifetime=paid_lifetime)
    assert 0 <= paid <= yuan("10000") * shares


@given(
    self_paid=fen_amounts,
    insurance_paid=fen_amounts,
    shares=shares_held,
    ratio=st.decimals(min_value=0, max_value=1, places=3),
    other_ratio=st.decimals(min_value=0, max_value=1, places=4),
    deductible=st.integers(min_value=0, max_value=yuan("1000")),
)
def test_estimate_is_the_exact_sum_rounded_half_up_once(
    self_paid, insurance_paid, shares, ratio, other_ratio, deductible
):
    product = replace(
        INPATIENT,
        benefits=(
            Benefit(type="expense", base="self_paid", deductible=deductible, ratio=ratio),
            Benefit(type="expense", base="insurance_paid", ratio=other_ratio),
        ),
    )
    facts = stay(
        total_expense=self_paid + insurance_paid,
        insurance_paid=insurance_paid,
        self_paid=self_paid,
    )
    exact = (
        Decimal(max(0, self_paid - deductible)) * ratio * shares
        + Decimal(insurance_paid) * other_ratio * shares
    )
    expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert estimate(product, facts, shares, paid_this_year=0, paid_lifetime=0) == expected


# --- conditions and needed documents ---------------------------------------------------


def test_conditions_of_a_plain_illness_are_always_and_not_death():
    assert conditions_met(stay()) == {"always", "not_death"}


def test_conditions_of_a_fatal_accident_with_expenses():
    facts = with_expenses(accident(death=True), "100")
    assert conditions_met(facts) == {"always", "medical", "death"}


def test_inpatient_needs_its_five_documents():
    assert needed_documents(INPATIENT, stay()) == [
        "claim_form",
        "id_card",
        "invoice",
        "settlement_sheet",
        "discharge_summary",
    ]


def test_accident_without_expenses_needs_no_invoice():
    assert needed_documents(ACCIDENT, accident()) == ["claim_form", "id_card", "accident_proof"]


def test_accident_with_expenses_needs_the_invoice():
    assert needed_documents(ACCIDENT, with_expenses(accident(), "100")) == [
        "claim_form",
        "id_card",
        "accident_proof",
        "invoice",
    ]


def test_disability_claim_needs_the_disability_assessment():
    assert needed_documents(ACCIDENT, accident(disability_grade=7)) == [
        "claim_form",
        "id_card",
        "accident_proof",
        "disability_assessment",
    ]


def test_death_claim_needs_the_death_certificate():
    facts = with_expenses(accident(death=True), "100")
    assert needed_documents(ACCIDENT, facts) == [
        "claim_form",
        "id_card",
        "accident_proof",
        "invoice",
        "death_certificate",
    ]


# --- document statuses -----------------------------------------------------------------


def test_a_new_claim_lists_every_needed_document_as_missing():
    documents = document_statuses(ACCIDENT, accident(), [])
    assert documents == [
        {"code": "claim_form", "status": "missing", "reason": None},
        {"code": "id_card", "status": "missing", "reason": None},
        {"code": "accident_proof", "status": "missing", "reason": None},
    ]
    assert missing_documents(documents) == ["claim_form", "id_card", "accident_proof"]


def test_documents_brought_at_logging_are_received():
    documents = document_statuses(ACCIDENT, accident(), ["id_card", "claim_form"])
    assert [d["status"] for d in documents] == ["received", "received", "missing"]
    assert missing_documents(documents) == ["accident_proof"]


def test_attaching_documents_keeps_those_received_before():
    first = document_statuses(ACCIDENT, accident(), ["claim_form"])
    second = document_statuses(ACCIDENT, accident(), ["accident_proof"], first)
    assert missing_documents(second) == ["id_card"]


def test_sending_a_code_again_is_harmless():
    first = document_statuses(ACCIDENT, accident(), ["claim_form", "claim_form"])
    second = document_statuses(ACCIDENT, accident(), ["claim_form"], first)
    assert second == first
    assert [d["code"] for d in second] == ["claim_form", "id_card", "accident_proof"]


def test_a_rejected_document_keeps_its_reason_until_it_is_brought_again():
    rejected = [
        {"code": "claim_form", "status": "rejected", "reason": "缺少单位工会盖章"},
        {"code": "id_card", "status": "received", "reason": None},
        {"code": "accident_proof", "status": "missing", "reason": None},
    ]
    later = document_statuses(ACCIDENT, accident(), ["accident_proof"], rejected)
    assert later[0] == {"code": "claim_form", "status": "rejected", "reason": "缺少单位工会盖章"}
    assert missing_documents(later) == ["claim_form"]


def test_bringing_a_rejected_document_again_makes_it_received():
    rejected = document_statuses(ACCIDENT, accident(), ["id_card", "accident_proof"])
    rejected[0] = {"code": "claim_form", "status": "rejected", "reason": "缺少签字"}
    again = document_statuses(ACCIDENT, accident(), ["claim_form"], rejected)
    assert again[0] == {"code": "claim_form", "status": "received", "reason": None}
    assert missing_documents(again) == []


def test_a_product_document_the_claim_does_not_need_is_kept_as_received():
    documents = document_statuses(ACCIDENT, accident(), ["invoice", "claim_form"])
    assert documents[-1] == {"code": "invoice", "status": "received", "reason": None}
    assert missing_documents(documents) == ["id_card", "accident_proof"]
    later = document_statuses(ACCIDENT, accident(), ["id_card"], documents)
    assert [d["code"] for d in later] == ["claim_form", "id_card", "accident_proof", "invoice"]


# --- eligibility -----------------------------------------------------------------------


def test_a_complete_claim_in_cover_passes_every_rule():
    assert check(INPATIENT, with_expenses(stay(), "3000")) == []
    assert check(ACCIDENT, accident(disability_grade=3)) == []
    assert check(CRITICAL, diagnosis()) == []


def test_no_enrolment_is_not_covered():
    assert check(INPATIENT, stay(), coverage=None) == ["not_covered"]


def test_incident_before_the_start_is_not_covered():
    assert check(ACCIDENT, accident(incident_date=date(2025, 12, 31))) == ["not_covered"]


def test_incident_after_the_end_is_not_covered():
    assert check(ACCIDENT, accident(incident_date=date(2027, 1, 1))) == ["not_covered"]


def test_coverage_is_a_closed_range():
    assert check(ACCIDENT, accident(incident_date=date(2026, 1, 1))) == []
    assert check(ACCIDENT, accident(incident_date=date(2026, 12, 31))) == []


def test_illness_on_day_90_after_start_is_covered():
    april_1 = stay(incident_date=date(2026, 4, 1), admission_date=date(2026, 4, 1))
    assert check(INPATIENT, april_1) == []


def test_illness_on_day_89_after_start_is_in_the_waiting_period():
    march_31 = stay(incident_date=date(2026, 3, 31), admission_date=date(2026, 3, 31))
    assert check(INPATIENT, march_31) == ["waiting_period"]


def test_accidents_never_wait():
    first_day = accident(incident_date=date(2026, 1, 1))
    assert check(INPATIENT, first_day) == []


def test_critical_illness_waits_180_days():
    assert check(CRITICAL, diagnosis(incident_date=date(2026, 6, 29))) == ["waiting_period"]
    assert check(CRITICAL, diagnosis(incident_date=date(2026, 6, 30))) == []


def test_waiting_period_counts_from_a_start_in_the_past():
    late_record = Coverage(start_date=date(2025, 7, 1), end_date=date(2026, 12, 31), shares=1)
    assert check(INPATIENT, stay(), coverage=late_record) == []


def test_inpatient_deadline_is_730_days_from_discharge():
    facts = stay(discharge_date=date(2026, 5, 20))
    assert deadline(INPATIENT, facts) == date(2026, 5, 20) + timedelta(days=730)
    assert check(INPATIENT, replace(facts, logged_on=date(2028, 5, 19))) == []
    assert check(INPATIENT, replace(facts, logged_on=date(2028, 5, 20))) == ["claim_deadline"]


def test_deadline_from_discharge_falls_back_to_the_incident_without_one():
    facts = stay(discharge_date=None)
    assert deadline(INPATIENT, facts) == date(2026, 5, 10) + timedelta(days=730)


def test_accident_deadline_is_365_days_from_the_incident():
    facts = accident()
    assert deadline(ACCIDENT, facts) == date(2027, 5, 10)
    assert check(ACCIDENT, replace(facts, logged_on=date(2027, 5, 10))) == []
    assert check(ACCIDENT, replace(facts, logged_on=date(2027, 5, 11))) == ["claim_deadline"]


def test_a_missing_document_fails_and_is_named():
    facts = accident()
    documents = document_statuses(ACCIDENT, facts, ["claim_form", "id_card"])
    failures = eligibility(
        ACCIDENT,
        facts,
        YEAR_2026,
        documents=documents,
        has_earlier_duplicate=False,
        paid_lifetime=0,
    )
    assert [f.code for f in failures] == ["documents_incomplete"]
    assert "accident_proof" in failures[0].message
    assert "claim_form" not in failures[0].message


def test_a_rejected_document_is_not_received():
    facts = accident()
    documents = all_received(ACCIDENT, facts)
    documents[2] = {"code": "accident_proof", "status": "rejected", "reason": "无公章"}
    assert check(ACCIDENT, facts, documents=documents) == ["documents_incomplete"]


def test_a_conditional_document_is_needed_when_its_condition_holds():
    facts = accident()
    documents = all_received(ACCIDENT, facts)
    assert check(ACCIDENT, accident(death=True), documents=documents) == ["documents_incomplete"]


def test_an_earlier_claim_for_the_same_incident_makes_a_duplicate():
    assert check(INPATIENT, stay(), has_earlier_duplicate=True) == ["duplicate_claim"]


def test_a_lump_sum_already_paid_is_not_paid_again():
    assert check(CRITICAL, diagnosis(), paid_lifetime=yuan("10000")) == ["already_paid"]


def test_earlier_payments_do_not_stop_an_inpatient_claim():
    assert check(INPATIENT, stay(), paid_lifetime=yuan("10000")) == []


def test_every_failing_rule_is_reported_in_order():
    facts = diagnosis(incident_date=date(2025, 12, 20), logged_on=date(2027, 1, 1))
    assert check(
        CRITICAL,
        facts,
        documents=document_statuses(CRITICAL, facts, ["claim_form"]),
        has_earlier_duplicate=True,
        paid_lifetime=yuan("10000"),
    ) == [
        "not_covered",  # before the coverage: not also "in its waiting period"
        "claim_deadline",
        "documents_incomplete",
        "duplicate_claim",
        "already_paid",
    ]


def test_failures_carry_plain_chinese_messages_and_fields():
    facts = stay(incident_date=date(2026, 3, 31))
    failures = eligibility(
        INPATIENT, facts, YEAR_2026, documents=[], has_earlier_duplicate=False, paid_lifetime=0
    )
    by_code = {f.code: f for f in failures}
    assert by_code["waiting_period"].field == "incident_date"
    assert "2026年4月1日" in by_code["waiting_period"].message
    assert by_code["documents_incomplete"].field == "documents"
    assert all(f.message for f in failures)


# --- enrolment -------------------------------------------------------------------------

START = date(2026, 7, 1)


def born_years_before(years: int, *, day_before: bool = False) -> date:
    """A birth date that makes the member `years` old on START (or just under)."""
    born = START.replace(year=START.year - years)
    return born + timedelta(days=1) if day_before else born


def enrol(product: Product = INPATIENT, **changes: object) -> list[str]:
    """The codes of the enrolment problems; a 30-year-old man, one share, one year by default."""
    terms = {
        "birth_date": born_years_before(30),
        "sex": "M",
        "start_date": START,
        "end_date": date(2027, 6, 30),
        "shares": 1,
    } | changes
    return [problem.code for problem in enrolment_problems(product, **terms)]


def test_a_worker_of_working_age_may_enrol():
    assert enrol() == []


@pytest.mark.parametrize(("age", "codes"), [(15, ["age"]), (16, []), (60, []), (61, ["age"])])
def test_age_on_the_start_date_must_be_16_to_60(age, codes):
    assert enrol(birth_date=born_years_before(age)) == codes


def test_the_day_before_the_61st_birthday_is_still_60():
    assert enrol(birth_date=born_years_before(61, day_before=True)) == []


def test_the_day_before_the_16th_birthday_is_still_15():
    assert enrol(birth_date=born_years_before(16, day_before=True)) == ["age"]


def test_female_special_is_for_women_only():
    problems = enrolment_problems(
        FEMALE,
        birth_date=born_years_before(30),
        sex="M",
        start_date=START,
        end_date=date(2027, 6, 30),
        shares=1,
    )
    assert [(p.code, p.field) for p in problems] == [("sex", "id_number")]
    assert enrol(FEMALE, sex="F") == []


def test_female_special_ages_are_18_to_55():
    assert enrol(FEMALE, sex="F", birth_date=born_years_before(17)) == ["age"]
    assert enrol(FEMALE, sex="F", birth_date=born_years_before(56)) == ["age"]
    assert enrol(FEMALE, sex="F", birth_date=born_years_before(55)) == []


@pytest.mark.parametrize(("shares", "codes"), [(0, ["shares"]), (1, []), (3, []), (4, ["shares"])])
def test_shares_must_be_1_to_max_shares(shares, codes):
    assert enrol(shares=shares) == codes


def test_a_county_with_one_share_refuses_two():
    one_share = replace(INPATIENT, max_shares=1)
    assert enrol(one_share, shares=2) == ["shares"]


def test_the_end_may_not_come_before_the_start():
    assert enrol(end_date=START - timedelta(days=1)) == ["end_before_start"]
    assert enrol(end_date=START) == []


def test_a_term_may_run_longer_than_a_year():
    assert enrol(end_date=date(2029, 6, 30)) == []


def test_every_enrolment_problem_is_reported_with_its_field():
    problems = enrolment_problems(
        FEMALE,
        birth_date=born_years_before(60),
        sex="M",
        start_date=START,
        end_date=START - timedelta(days=1),
        shares=4,
    )
    assert [(p.code, p.field) for p in problems] == [
        ("shares", "shares"),
        ("end_before_start", "end_date"),
        ("age", "id_number"),
        ("sex", "id_number"),
    ]

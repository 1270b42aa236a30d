"""Eligibility and benefit estimate, computed from product data (pure functions, SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from claims.idcard import age_on
from claims.money import round_fen
from config.catalogue import Benefit, Product

RECEIVED = "received"
MISSING = "missing"
REJECTED = "rejected"


@dataclass(frozen=True)
class ClaimFacts:
    """What a claim says about the incident, in the units the rules compute with."""

    cause: str  # "illness" | "accident"
    incident_date: date  # for lump-sum products: date of first diagnosis
    admission_date: date | None
    discharge_date: date | None
    total_expense: int  # fen
    insurance_paid: int  # fen
    self_paid: int  # fen (the self-paid eligible expense)
    disability_grade: int | None  # 1..10
    death: bool
    logged_on: date  # the day the claim was logged (configured time zone)
    disability_assessed_on: date | None = None  # the date on the disability assessment


@dataclass(frozen=True)
class Coverage:
    """The member's enrolment in the product: a closed date range and a number of shares."""

    start_date: date
    end_date: date
    shares: int
    # The start of unbroken coverage: an earlier enrolment of the product ending the day
    # before this one starts is renewed, not new, and the waiting period counts from its start.
    continuous_from: date | None = None


@dataclass(frozen=True)
class RuleFailure:
    """One failed rule: a stable machine code and a sentence a union clerk understands."""

    code: str
    message: str
    field: str | None = None


def conditions_met(facts: ClaimFacts) -> frozenset[str]:
    """The `when` conditions (catalogue vocabulary) that hold for this claim."""
    met = {"always", "death" if facts.death else "not_death"}
    if facts.total_expense > 0:
        met.add("medical")
    if facts.disability_grade:
        met.add("disability")
    return frozenset(met)


def needed_documents(product: Product, facts: ClaimFacts) -> list[str]:
    """Document codes this claim needs: the required ones, then the conditional ones that apply."""
    met = conditions_met(facts)
    conditional = [code for code, when in product.conditional_documents.items() if when in met]
    return [*product.required_documents, *conditional]


def cap_left(cap_per_share: int, shares: int, used: int) -> int:
    """What a cap still allows (fen): the cap x shares less what was used, never below 0.
    The estimate and the member's history both ask this, so they cannot disagree."""
    return max(0, cap_per_share * shares - used)


@dataclass(frozen=True)
class CapStanding:
    """A product's cap for a member: per calendar year, or once in a lifetime (lump sums)."""

    period: str  # "year" | "lifetime"
    cap: int  # fen, x shares
    used: int  # fen: approved amounts of the member's claims in the paid states
    left: int  # fen


def cap_standing(product: Product, shares: int, *, paid_this_year: int,
                 paid_lifetime: int) -> CapStanding | None:
    """The product's yearly (or lifetime) cap, used and left; None for caps per claim only."""
    for benefit in product.benefits:
        if benefit.type == "expense" and benefit.cap is not None and benefit.cap_period == "year":
            return CapStanding("year", benefit.cap * shares, paid_this_year,
                               cap_left(benefit.cap, shares, paid_this_year))
    for benefit in product.benefits:
        if benefit.type == "lump_sum" or (benefit.type == "expense" and benefit.cap is not None
                                          and benefit.cap_period == "lifetime"):
            per_share = benefit.amount if benefit.type == "lump_sum" else benefit.cap or 0
            return CapStanding("lifetime", per_share * shares, paid_lifetime,
                               cap_left(per_share, shares, paid_lifetime))
    return None


def _component(
    benefit: Benefit,
    facts: ClaimFacts,
    shares: int,
    *,
    paid_this_year: int,
    paid_lifetime: int,
) -> Decimal:
    """One benefit component's exact (unrounded) amount in fen, already capped."""
    if benefit.type == "expense":
        base = getattr(facts, benefit.base)
        exact = Decimal(max(0, base - benefit.deductible)) * benefit.ratio * shares
        if benefit.cap is None:
            return exact
        used = {"year": paid_this_year, "lifetime": paid_lifetime}.get(benefit.cap_period, 0)
        return min(exact, Decimal(cap_left(benefit.cap, shares, used)))
    if benefit.type == "grade":
        grade = facts.disability_grade
        if not grade:
            return Decimal(0)
        if not 1 <= grade <= len(benefit.percent):
            raise ValueError(f"disability grade {grade} is not in the grade table")
        return Decimal(benefit.percent[grade - 1]) / 100 * benefit.sum_insured * shares
    if benefit.type == "fixed":
        return Decimal(benefit.amount * shares)
    if benefit.type == "lump_sum":
        return Decimal(cap_left(benefit.amount, shares, paid_lifetime))
    raise ValueError(f"unknown benefit type {benefit.type!r}")


def estimate(
    product: Product,
    facts: ClaimFacts,
    shares: int,
    *,
    paid_this_year: int,
    paid_lifetime: int,
) -> int:
    """The benefit estimate in fen: the applicable components summed exactly, rounded once."""
    met = conditions_met(facts)
    if assessed_late(product, facts):
        met -= {"disability"}
    exact = sum(
        (
            _component(
                benefit,
                facts,
                shares,
                paid_this_year=paid_this_year,
                paid_lifetime=paid_lifetime,
            )
            for benefit in product.benefits
            if benefit.when in met
        ),
        Decimal(0),
    )
    return round_fen(exact)


def assessed_late(product: Product, facts: ClaimFacts) -> bool:
    """Whether the disability was assessed after the product's assessment period (SPEC §2:
    within 180 days of the accident): its grade then pays nothing. Unknown without a date."""
    return facts.disability_grade is not None and assessed_after(
        product.disability_assessment_days, facts.incident_date, facts.disability_assessed_on)


def assessed_after(days: int | None, incident: date, assessed: date | None) -> bool:
    """Whether an assessment on `assessed` falls after `days` from the incident (both known)."""
    return days is not None and assessed is not None and assessed > incident + timedelta(days=days)


def deadline(product: Product, facts: ClaimFacts) -> date:
    """The last day the claim may be logged: incident or discharge plus the claim deadline."""
    counted_from = facts.incident_date
    if product.deadline_from == "discharge" and facts.discharge_date is not None:
        counted_from = facts.discharge_date
    return counted_from + timedelta(days=product.claim_deadline_days)


def _day(value: date) -> str:
    """A date as a clerk writes it: 2026年3月31日."""
    return f"{value.year}年{value.month}月{value.day}日"


# Each failure's sentence, by code and variant: str.format templates, so that a reader of a
# message (the console, which says it in its own language with the documents' names) can take
# its values back out (claims.web.console_rules). Dates are written by _day; {documents} is
# the codes joined by 、; {product} is the product's name.
RULE_TEXTS: dict[str, dict[str, str]] = {
    "not_covered": {
        "not_enrolled": "该职工未参加{product}。",
        "outside_cover": "出险日期{incident}不在保障期内（{start}至{end}）。",
    },
    "waiting_period": {
        "waiting_period": "疾病出险在等待期内：{days}天等待期满后，自{covered_from}起发生的疾病"
                          "才予保障。",
        "renewed": "疾病出险在等待期内（自{since}起连续参保）：{days}天等待期满后，"
                   "自{covered_from}起发生的疾病才予保障。",
    },
    "claim_deadline": {
        "from_discharge": "已超过申请时限：应自出院之日起{days}天内，"
                          "即最迟{last_day}（含当日）申请。",
        "from_incident": "已超过申请时限：应自出险之日起{days}天内，"
                         "即最迟{last_day}（含当日）申请。",
    },
    "documents_incomplete": {"documents_incomplete": "理赔材料不齐，尚缺：{documents}。"},
    "duplicate_claim": {
        "duplicate_claim": "该职工同一险种、同一出险日期已有更早登记的理赔，本件为重复申请。"},
    "already_paid": {"already_paid": "{product}每人限赔一次，该职工已领取过互助金。"},
    "already_claimed": {"already_claimed": "{product}每人限赔一次，该职工已有一件在办理赔。"},
    "shares": {"shares": "参保份数须为1至{max_shares}份。"},
    "end_before_start": {"end_before_start": "保障截止日期不能早于起始日期。"},
    "age": {
        "age": "保障起始日该职工{age}周岁，{product}参保年龄为{low}周岁至{high}周岁。",
        "no_upper_limit": "保障起始日该职工{age}周岁，{product}参保年龄为{low}周岁及以上。",
    },
    "sex": {
        "women_only": "{product}仅限女职工参加。",
        "men_only": "{product}仅限男职工参加。",
    },
}


def _failure(code: str, field: str | None, variant: str | None = None,
             **values: object) -> RuleFailure:
    """A failed rule with its sentence from RULE_TEXTS (the variant defaults to the code)."""
    return RuleFailure(code, RULE_TEXTS[code][variant or code].format(**values), field)


def eligibility(
    product: Product,
    facts: ClaimFacts,
    coverage: Coverage | None,
    *,
    documents: list[dict],
    has_earlier_duplicate: bool,
    paid_lifetime: int,
    has_other_live_claim: bool = False,
) -> list[RuleFailure]:
    """Every eligibility rule the claim fails, in SPEC order; empty when it may be verified."""
    failures: list[RuleFailure] = []
    incident = facts.incident_date
    covers = coverage is not None and coverage.start_date <= incident <= coverage.end_date
    if coverage is None:
        failures.append(_failure("not_covered", "product_code", "not_enrolled",
                                 product=product.name))
    elif not covers:
        failures.append(_failure("not_covered", "incident_date", "outside_cover",
                                 incident=_day(incident), start=_day(coverage.start_date),
                                 end=_day(coverage.end_date)))
    if covers and coverage is not None and facts.cause == "illness":
        since = coverage.continuous_from or coverage.start_date
        covered_from = since + timedelta(days=product.waiting_days)
        if incident < covered_from:
            renewed = since != coverage.start_date
            failures.append(_failure("waiting_period", "incident_date",
                                     "renewed" if renewed else None, since=_day(since),
                                     days=product.waiting_days,
                                     covered_from=_day(covered_from)))
    last_day = deadline(product, facts)
    if facts.logged_on > last_day:
        from_discharge = product.deadline_from == "discharge" and facts.discharge_date is not None
        failures.append(_failure("claim_deadline",
                                 "discharge_date" if from_discharge else "incident_date",
                                 "from_discharge" if from_discharge else "from_incident",
                                 days=product.claim_deadline_days, last_day=_day(last_day)))
    status_of = {doc["code"]: doc.get("status") for doc in documents}
    missing = [code for code in needed_documents(product, facts) if status_of.get(code) != RECEIVED]
    if missing:
        failures.append(_failure("documents_incomplete", "documents",
                                 documents="、".join(missing)))
    if has_earlier_duplicate:
        failures.append(_failure("duplicate_claim", "incident_date"))
    once_only = any(b.type == "lump_sum" for b in product.benefits)
    if once_only and paid_lifetime > 0:
        failures.append(_failure("already_paid", "product_code", product=product.name))
    elif once_only and has_other_live_claim:
        # A second lump-sum claim in flight would be paid twice once both are approved.
        failures.append(_failure("already_claimed", "product_code", product=product.name))
    return failures


def enrolment_problems(
    product: Product,
    *,
    birth_date: date,
    sex: str,
    start_date: date,
    end_date: date,
    shares: int,
) -> list[RuleFailure]:
    """Why a member may not enrol in the product on these terms; empty when they may."""
    problems: list[RuleFailure] = []
    if not 1 <= shares <= product.max_shares:
        problems.append(_failure("shares", "shares", max_shares=product.max_shares))
    if end_date < start_date:
        problems.append(_failure("end_before_start", "end_date"))
    age = age_on(birth_date, start_date)
    too_young = product.min_age is not None and age < product.min_age
    too_old = product.max_age is not None and age > product.max_age
    if too_young or too_old:
        problems.append(_failure("age", "id_number",
                                 "age" if product.max_age is not None else "no_upper_limit",
                                 age=age, product=product.name,
                                 low=product.min_age if product.min_age is not None else 0,
                                 high=product.max_age))
    if product.sex is not None and sex != product.sex:
        problems.append(_failure("sex", "id_number",
                                 "women_only" if product.sex == "F" else "men_only",
                                 product=product.name))
    return problems


def document_statuses(
    product: Product,
    facts: ClaimFacts,
    received: list[str],
    existing: list[dict] | None = None,
) -> list[dict]:
    """The claim's documents array after receiving `received` on top of `existing`."""
    before = {doc["code"]: doc for doc in existing or []}
    arrived = set(received)
    needed = needed_documents(product, facts)
    statuses: list[dict] = []
    for code in needed:
        old = before.get(code)
        if code in arrived or (old is not None and old.get("status") == RECEIVED):
            statuses.append({"code": code, "status": RECEIVED, "reason": None})
        elif old is not None:
            statuses.append({"code": code, "status": old["status"], "reason": old.get("reason")})
        else:
            statuses.append({"code": code, "status": MISSING, "reason": None})
    # A document brought though this claim does not need it stays on record as received.
    extras = [doc["code"] for doc in existing or [] if doc.get("status") == RECEIVED]
    extras += [code for code in received if code in product.document_codes]
    for code in dict.fromkeys(extras):
        if code not in needed:
            statuses.append({"code": code, "status": RECEIVED, "reason": None})
    return statuses


def missing_documents(documents: list[dict]) -> list[str]:
    """Codes of the documents not yet received (missing or rejected)."""
    return [doc["code"] for doc in documents if doc["status"] != RECEIVED]


__all__ = [
    "RULE_TEXTS",
    "CapStanding",
    "ClaimFacts",
    "Coverage",
    "RuleFailure",
    "cap_left",
    "cap_standing",
    "conditions_met",
    "deadline",
    "document_statuses",
    "eligibility",
    "enrolment_problems",
    "estimate",
    "missing_documents",
    "needed_documents",
]

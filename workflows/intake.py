"""Logging a claim (the `log` event): validate, estimate, number, audit, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session

from claims.auth import Actor
from claims.models import (
    Claim,
    ClaimCounter,
    ClaimEvent,
    Enrolment,
    Member,
    Unit,
    built_as_loaded,
    utcnow,
)
from claims.money import format_fen
from claims.rules import (
    ClaimFacts,
    assessed_late,
    document_statuses,
    estimate,
    missing_documents,
)
from config.catalogue import Catalogue, Product
from workflows.errors import FieldError, RuleFailed
from workflows.facts import ENDED_UNPAID, PAID_STATES, claim_facts
from workflows.lifecycle import INITIAL_STATE, LOG_EVENT

EXPENSE_FIELDS = ("total_expense", "insurance_paid", "self_paid")
STAY_FIELDS = ("admission_date", "discharge_date")
# Drafting reads through the caller's session, or (the API) the request's reading connection,
# so that on SQLite it waits for no writer and holds no write lock; recording writes through
# the session, or (the API) a connection in a transaction of its own.
Reads = Session | sa.Connection
Writes = Session | sa.Connection

# Logging a claim is the busiest write: what it reads is one statement built once (building a
# statement in the ORM cost more than running it; python -m bench load, docs/performance.md).
_M, _U, _E, _C = (model.__table__ for model in (Member, Unit, Enrolment, Claim))  # type: ignore[attr-defined]
_EARLIER = _C.alias("earlier")
# The state lists as plain parameters: a tuple makes an "expanding" IN that SQLAlchemy
# rewrites on every execution.
_PAID = _EARLIER.c.state.in_([sa.literal(state) for state in PAID_STATES])
_LIVE = _EARLIER.c.state.not_in([sa.literal(state) for state in ENDED_UNPAID])
# Live and not decided yet: estimates the yearly cap does not count as paid (SPEC §2), which
# may all be approved in the end.
_PENDING = _EARLIER.c.state.not_in([sa.literal(state) for state in PAID_STATES + ENDED_UNPAID])


def _members_claims(*conditions: Any) -> Any:
    """The member's claims on the product, logged before this one, that meet `conditions`."""
    return sa.and_(_EARLIER.c.member_id == _M.c.id,
                   _EARLIER.c.product_code == sa.bindparam("product_code"), *conditions)


def _paid(*conditions: Any) -> Any:
    return (sa.select(sa.func.coalesce(sa.func.sum(_EARLIER.c.approved_amount), 0))
            .where(_members_claims(_PAID, *conditions)).scalar_subquery())


# The member an ID number names, their unit's code, the enrolment covering the incident, and
# from the member's claims on the product: what was paid in the incident's year and ever (the
# caps), and the first live claim for the same incident date (a duplicate: logged, never
# verified). The same rules as workflows.facts' paid_on_product and earlier_duplicate (used by
# verify), for a claim not saved yet.
MEMBER_AND_CLAIMS = (
    sa.select(
        _M.c.id, _M.c.name, _M.c.id_number, _M.c.unit_id, _U.c.code.label("unit_code"),
        _E.c.id.label("enrolment_id"), _E.c.shares,
        _paid(_EARLIER.c.incident_date >= sa.bindparam("year_start"),
              _EARLIER.c.incident_date <= sa.bindparam("year_end")).label("paid_this_year"),
        _paid().label("paid_lifetime"),
        sa.select(sa.func.coalesce(sa.func.sum(_EARLIER.c.estimate), 0))
        .where(_members_claims(_PENDING, _EARLIER.c.incident_date >= sa.bindparam("year_start"),
                               _EARLIER.c.incident_date <= sa.bindparam("year_end")))
        .scalar_subquery().label("pending_this_year"),
        sa.select(_EARLIER.c.claim_no)
        .where(_members_claims(_EARLIER.c.incident_date == sa.bindparam("incident_date"), _LIVE))
        .order_by(_EARLIER.c.id).limit(1).scalar_subquery().label("duplicate_no"))
    .select_from(_M.join(_U, _U.c.id == _M.c.unit_id).outerjoin(_E, sa.and_(
        _E.c.member_id == _M.c.id, _E.c.product_code == sa.bindparam("product_code"),
        _E.c.start_date <= sa.bindparam("incident_date"),
        _E.c.end_date >= sa.bindparam("incident_date"))))
    .where(_M.c.id_number == sa.bindparam("id_number"))
    .order_by(_E.c.id).limit(1))
_COUNTER = ClaimCounter.__table__  # type: ignore[attr-defined]
NEXT_NUMBER = (sa.update(_COUNTER).where(_COUNTER.c.year == sa.bindparam("counter_year"))
               .values(last=_COUNTER.c.last + 1).returning(_COUNTER.c.last))
INSERT_CLAIM = sa.insert(_C).returning(_C.c.id)
INSERT_EVENT = sa.insert(ClaimEvent.__table__)  # type: ignore[attr-defined]


def next_claim_no(writes: Writes, year: int) -> str:
    """LP<year>-<6 digits>, from a per-year counter row updated in this transaction."""
    bumped = writes.execute(NEXT_NUMBER, {"counter_year": year}).scalar()
    if bumped is None:
        try:
            with writes.begin_nested():
                writes.execute(sa.insert(_COUNTER).values(year=year, last=1))
            bumped = 1
        except sa.exc.IntegrityError:  # another request created the year's row first
            return next_claim_no(writes, year)
    return f"LP{year}-{bumped:06d}"


def _has_benefit(product: Product, condition: str) -> bool:
    return any(b.when == condition for b in product.benefits)


def check_claim_input(product: Product, fields: dict[str, Any], today: date) -> list[FieldError]:
    """Every problem with the claim's fields for this product (SPEC §7 amounts, dates, input)."""
    errors: list[FieldError] = []

    def refuse(field: str, code: str, message: str) -> None:
        errors.append(FieldError(field, code, message))

    def not_applicable(field: str, why: str) -> None:
        if fields.get(field) is not None:
            refuse(field, "not_applicable", why)

    if fields["cause"] not in product.causes:
        refuse("cause", "cause_not_covered",
               f"{product.name} covers {' and '.join(product.causes)} only.")
    required_missing = [field for field in EXPENSE_FIELDS
                        if product.kind != "lump_sum" and fields.get(field) is None]
    for field in required_missing:
        refuse(field, "required", "Missing data for required field.")
    for field in ("incident_date", *STAY_FIELDS):
        if fields.get(field) is not None and fields[field] > today:
            refuse(field, "date_in_future", "The date must be on or before today.")
    admission, discharge = fields.get("admission_date"), fields.get("discharge_date")
    if not product.needs_stay:
        for field in STAY_FIELDS:
            not_applicable(field, "This product has no hospital stay.")
    elif admission is None:
        # No admission, no stay: a discharge does not apply (SPEC §7), as on a product
        # without stays. An admission without a discharge is a stay still going on.
        not_applicable("discharge_date", "A discharge needs an admission_date: no stay, "
                                         "no discharge.")
    if admission and discharge and discharge < admission:
        refuse("discharge_date", "discharge_before_admission",
               "Discharge must be on or after admission.")
    if admission and admission < fields["incident_date"]:
        refuse("admission_date", "admission_before_incident",
               "Admission must be on or after the incident date.")
    # The sum rule needs the three amounts: one refused as missing has no value to add up.
    # A lump-sum claim's omitted amount is stored as 0, so the rule holds it as 0.
    total = fields.get("total_expense") or 0
    if not required_missing and (
            (fields.get("insurance_paid") or 0) + (fields.get("self_paid") or 0) > total):
        refuse("self_paid", "expenses_exceed_total",
               "insurance_paid + self_paid must not exceed total_expense.")
    if not (_has_benefit(product, "disability") and fields["cause"] == "accident"):
        not_applicable("disability_grade", "Only an accident claim has a disability grade.")
    elif fields.get("disability_grade") is not None and not 1 <= fields["disability_grade"] <= 10:
        refuse("disability_grade", "out_of_range", "The disability grade is 1 to 10.")
    assessed = fields.get("disability_assessed_on")
    if fields.get("disability_grade") is None:
        not_applicable("disability_assessed_on", "Only a disability claim has an assessment date.")
    elif assessed is not None and assessed > today:
        refuse("disability_assessed_on", "date_in_future", "The date must be on or before today.")
    elif assessed is not None and assessed < fields["incident_date"]:
        refuse("disability_assessed_on", "assessed_before_incident",
               "The assessment must be on or after the incident date.")
    death = bool(fields.get("death"))
    if death and not _has_benefit(product, "death"):
        refuse("death", "not_applicable", "This product has no death benefit.")
    if death and fields.get("disability_grade") is not None:
        refuse("disability_grade", "death_and_disability",
               "A claim pays disability or death, not both.")
    if death and not fields.get("beneficiary"):
        refuse("beneficiary", "required", "A death claim names the beneficiary.")
    if not death:
        not_applicable("beneficiary", "Only a death claim has a beneficiary.")
    for code in fields.get("documents") or []:
        if code not in product.document_codes:
            refuse("documents", "unknown_document",
                   f"'{code}' is not a document of {product.code}.")
    return errors


@dataclass
class Draft:
    """A claim as it would be logged now (not saved): its estimate, documents and warnings,
    with the member (a row: id, name, id_number, unit_id) and the unit's code for its answer."""

    claim: Claim
    warnings: list[str]
    member: Any
    unit_code: str


def draft_claim(reads: Reads, product_catalogue: Catalogue, actor: Actor,
                fields: dict[str, Any], today: date) -> Draft:
    """Validate a claim body and compute what logging it would record; writes nothing.
    The claim form shows this as the clerk types; log_claim saves exactly this."""
    product = product_catalogue.get(fields["product_code"])
    incident: date = fields["incident_date"]
    member = reads.execute(MEMBER_AND_CLAIMS, {
        "id_number": fields["id_number"], "product_code": fields["product_code"],
        "incident_date": incident, "year_start": date(incident.year, 1, 1),
        "year_end": date(incident.year, 12, 31)}).first()
    # Another unit's member is as unknown to unit staff as one never registered.
    if member is not None and actor.is_unit_staff and member.unit_id != actor.unit_id:
        member = None
    errors = []
    if product is None:
        errors.append(FieldError("product_code", "unknown_product", "No product has this code."))
    if member is None:
        errors.append(FieldError("id_number", "unknown_member", "No member has this ID number."))
    if product is not None:
        errors += check_claim_input(product, fields, today)
    if errors:
        raise RuleFailed("The claim has invalid fields.", errors)
    assert product is not None and member is not None
    beneficiary = fields.get("beneficiary") or {}
    claim = built_as_loaded(Claim, {
        "claim_no": "",
        "member_id": member.id,
        "unit_id": member.unit_id,
        "product_code": product.code,
        "cause": fields["cause"],
        "incident_date": incident,
        "admission_date": fields.get("admission_date"),
        "discharge_date": fields.get("discharge_date"),
        "hospital": fields.get("hospital"),
        "diagnosis": fields.get("diagnosis"),
        "total_expense": fields.get("total_expense") or 0,
        "insurance_paid": fields.get("insurance_paid") or 0,
        "self_paid": fields.get("self_paid") or 0,
        "disability_grade": fields.get("disability_grade"),
        "disability_assessed_on": fields.get("disability_assessed_on"),
        "death": bool(fields.get("death")),
        "beneficiary_name": beneficiary.get("name"),
        "beneficiary_id_number": beneficiary.get("id_number"),
        "beneficiary_relation": beneficiary.get("relation"),
        "state": INITIAL_STATE,
        "logged_on": today,
        "enrolment_id": member.enrolment_id,
    })
    facts = claim_facts(claim, today)
    claim.documents = document_statuses(product, facts, list(fields.get("documents") or []))
    claim.estimate = estimate(product, facts, member.shares or 0,
                              paid_this_year=int(member.paid_this_year),
                              paid_lifetime=int(member.paid_lifetime))
    warnings = []
    if member.enrolment_id is None:
        warnings.append("出险日期不在该职工此险种的保障期内，核验时将不予通过。")
    warnings += _assessment_warnings(product, facts)
    if _over_the_years_cap(product, member, claim.estimate):
        warnings.append(OVER_YEARLY_CAP)
    if member.duplicate_no is not None:
        warnings.append(
            f"同一职工、险种和出险日期已有理赔 {member.duplicate_no}，本件不能核验通过。")
    return Draft(claim, warnings, member, member.unit_code)


# The disability assessment's period (SPEC §2: within 180 days of the accident), as warnings: the
# city office decides, and the clerk may log the claim with the assessment the unit brought.
# Each estimate takes the year's cap less what was paid; claims still undecided are not paid,
# so two in flight may each take all that is left (the city office decides; the clerk knows).
OVER_YEARLY_CAP = "该职工本年度此险种另有未决理赔，与本件估算合计超过年度剩余限额，以市总核准为准。"


def _over_the_years_cap(product: Product, member: Any, estimate: int) -> bool:
    caps = [b.cap for b in product.benefits if b.cap_period == "year" and b.cap is not None]
    pending = int(member.pending_this_year)
    if not caps or not pending:
        return False
    left = sum(caps) * (member.shares or 0) - int(member.paid_this_year)
    return pending + estimate > left


ASSESSED_LATE = "伤残鉴定日期晚于产品规定的鉴定期限，估算未计伤残互助金，请核实。"
ASSESSMENT_DATE_MISSING = "未填伤残鉴定日期，无法核对是否在规定期限内鉴定。"


def _assessment_warnings(product: Product, facts: ClaimFacts) -> list[str]:
    if facts.disability_grade is None or product.disability_assessment_days is None:
        return []
    if facts.disability_assessed_on is None:
        return [ASSESSMENT_DATE_MISSING]
    return [ASSESSED_LATE] if assessed_late(product, facts) else []


def _log_payload(claim: Claim) -> dict[str, Any]:
    """What the `log` audit event records beside the state: the estimate, what is missing."""
    return {"estimate": format_fen(claim.estimate),
            "missing_documents": missing_documents(claim.documents)}


def record_claim(writes: Writes, draft: Draft, actor: Actor, today: date) -> Claim:
    """Save a drafted claim in `logged`: its claim number and its audit event."""
    claim = draft.claim
    claim.claim_no = next_claim_no(writes, today.year)
    claim.version = 1
    # Two prebuilt INSERTs rather than the ORM's unit of work: on SQLite every writer waits
    # for the one before it to commit, and the flush was a third of a creation's turn there.
    claim.id = writes.execute(INSERT_CLAIM, {
        column.key: getattr(claim, column.key) for column in _C.columns if column.key != "id"
    }).scalar_one()
    writes.execute(INSERT_EVENT, {
        "claim_id": claim.id, "event": LOG_EVENT, "from_state": None, "to_state": claim.state,
        "version": claim.version, "actor": actor.username, "at": utcnow(), "reason_code": None,
        "payload": _log_payload(claim)})
    if isinstance(writes, Session):
        # The saved row as the session's own, as if just loaded: later events in the same
        # session (the demo's, a test's) update it by version.
        make_transient_to_detached(claim)
        writes.add(claim)
    return claim


# PostgreSQL: the claim number, the claim and its audit event in one statement, atomic on its
# own, so sent without BEGIN and COMMIT: three round trips a creation (the token, the draft,
# this) where the transaction took seven. Each round trip wakes the server and then this
# process: it cost more CPU than its instructions (docs/performance.md). SQLite has no INSERT
# inside WITH, and keeps record_claim.
_EV = ClaimEvent.__table__  # type: ignore[attr-defined]
_BUMPED = (sa.update(_COUNTER).where(_COUNTER.c.year == sa.bindparam("counter_year"))
           .values(last=_COUNTER.c.last + 1).returning(_COUNTER.c.last).cte("bumped"))
_DIGITS = sa.cast(_BUMPED.c.last, sa.Text)
_CLAIM_NO = sa.func.concat("LP", sa.bindparam("counter_year", type_=sa.Integer), "-",
                           sa.func.lpad(_DIGITS, sa.func.greatest(6, sa.func.length(_DIGITS)),
                                        "0"))
_CLAIM_VALUES = [column for column in _C.columns if column.key not in ("id", "claim_no")]
_SAVED = (sa.insert(_C).from_select(
    [*(column.key for column in _CLAIM_VALUES), "claim_no"],
    sa.select(*(sa.bindparam(column.key, type_=column.type) for column in _CLAIM_VALUES),
              _CLAIM_NO).select_from(_BUMPED))
    .returning(_C.c.id, _C.c.claim_no).cte("saved"))
_AUDITED = sa.insert(_EV).from_select(
    ["claim_id", "event", "from_state", "to_state", "version", "actor", "at", "payload"],
    sa.select(_SAVED.c.id, sa.literal(LOG_EVENT), sa.null(),
              sa.bindparam("state", type_=_EV.c.to_state.type),
              sa.bindparam("version", type_=_EV.c.version.type),
              sa.bindparam("actor", type_=_EV.c.actor.type),
              sa.bindparam("at", type_=_EV.c.at.type),
              sa.bindparam("payload", type_=_EV.c.payload.type))).cte("audited")
RECORD_AT_ONCE = sa.select(_SAVED.c.id, _SAVED.c.claim_no).add_cte(_AUDITED)


def save_drafted_claim(engine: sa.Engine, untransacted: sa.Connection, draft: Draft,
                       actor: Actor, today: date) -> Claim:
    """Save a drafted claim in `logged` (the API): on PostgreSQL in one statement on
    `untransacted`, a connection outside any transaction (the request's reading one); on
    SQLite, and for a year's first claim, by record_claim in a transaction of its own."""
    claim = None
    if engine.dialect.name == "postgresql":
        claim = _record_claim_at_once(untransacted, draft, actor, today)
    if claim is None:
        with engine.begin() as writes:
            claim = record_claim(writes, draft, actor, today)
    return claim


def _record_claim_at_once(connection: sa.Connection, draft: Draft, actor: Actor,
                          today: date) -> Claim | None:
    """record_claim as one statement; None when the year has no counter row yet (nothing
    was written)."""
    claim = draft.claim
    claim.version = 1
    values = {column.key: getattr(claim, column.key) for column in _CLAIM_VALUES}
    saved = connection.execute(RECORD_AT_ONCE, {
        **values, "counter_year": today.year, "actor": actor.username, "at": utcnow(),
        "payload": _log_payload(claim)}).first()
    if saved is None:
        return None
    claim.id, claim.claim_no = saved
    return claim


def log_claim(session: Session, product_catalogue: Catalogue, actor: Actor, fields: dict[str, Any],
              today: date) -> tuple[Claim, list[str]]:
    """Create a claim in `logged`: estimate, missing documents, claim number, audit event."""
    draft = draft_claim(session, product_catalogue, actor, fields, today)
    return record_claim(session, draft, actor, today), draft.warnings

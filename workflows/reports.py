"""The county's reports: the year's summary, the units' assessment, turnaround, money not yet
collected, the city office's decisions against our estimates, and the subsidy budget.

Every figure comes from a few GROUP BY queries, never a loop over claims; what Python adds
(medians, percentiles, sums over a handful of grouped rows) runs over the grouped counts.
"The year's claims" are those logged in the year (the county's calendar); each is followed
to today, whatever state it has reached. Amounts are fen.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.models import Claim, ClaimEvent, Enrolment, Member, Remittance, RemittanceItem, Unit
from config.catalogue import Catalogue
from workflows.lifecycle import STATES
from workflows.report_sql import (
    Year,
    as_date,
    day_diff,
    dialect_of,
    empty_json_array,
    mean,
    percentile,
    ratio,
)

UNCOLLECTED_STATES = ("funds_received", "notified", "onsite_scheduled")
DECIDED_STATES = ("approved", *UNCOLLECTED_STATES, "collected")


def _unit_filter(column: Any, unit_id: int | None) -> Any:
    return sa.true() if unit_id is None else column == unit_id


# --- the year's summary -----------------------------------------------------------------------


def insured_counts(session: Session, year: Year, unit_id: int | None = None) -> dict[str, Any]:
    """Units and members with an enrolment covering the year, in all and per product."""
    scope = sa.and_(year.covered_in(), _unit_filter(Member.unit_id, unit_id))
    members, units = session.execute(
        select(sa.func.count(sa.distinct(Enrolment.member_id)),
               sa.func.count(sa.distinct(Member.unit_id)))
        .join(Member, Member.id == Enrolment.member_id).where(scope)).one()
    per_product = session.execute(
        select(Enrolment.product_code, sa.func.count(sa.distinct(Enrolment.member_id)),
               sa.func.count(), sa.func.coalesce(sa.func.sum(Enrolment.shares), 0))
        .join(Member, Member.id == Enrolment.member_id).where(scope)
        .group_by(Enrolment.product_code)).all()
    return {"members": int(members), "units": int(units),
            "by_product": {code: {"members": int(m), "enrolments": int(e), "shares": int(s)}
                           for code, m, e, s in per_product}}


def year_summary(session: Session, catalogue: Catalogue, year: Year,
                 unit_id: int | None = None) -> dict[str, Any]:
    """Units enrolled, members insured, enrolment rate; the year's claims by product and state
    with the amounts claimed (estimates of claims not withdrawn), approved and paid (collected,
    in any year); and paid_in_year, what the counter paid out during the year (any claim)."""
    units, employees = session.execute(
        select(sa.func.count(), sa.func.coalesce(sa.func.sum(Unit.employee_count), 0))
        .where(_unit_filter(Unit.id, unit_id))).one()
    insured = insured_counts(session, year, unit_id)
    grouped = session.execute(
        select(Claim.product_code, Claim.state, sa.func.count(),
               sa.func.coalesce(sa.func.sum(Claim.estimate), 0),
               sa.func.coalesce(sa.func.sum(Claim.approved_amount), 0),
               sa.func.coalesce(sa.func.sum(Claim.paid_amount), 0))
        .where(year.logged_in(), _unit_filter(Claim.unit_id, unit_id))
        .group_by(Claim.product_code, Claim.state)).all()
    products: dict[str, dict[str, Any]] = {
        code: _product_totals(code, product.name, insured["by_product"].get(code))
        for code, product in catalogue.products.items()}
    for code, state, count, estimate, approved, paid in grouped:
        totals = products.setdefault(code, _product_totals(code, code, None))
        totals["claims"] += count
        totals["by_state"][state] = totals["by_state"].get(state, 0) + count
        if state != "withdrawn":
            totals["claimed"] += int(estimate)
        totals["approved"] += int(approved)
        totals["paid"] += int(paid) if state == "collected" else 0
    # The cash view beside the claims': what was paid out at the counter during the year,
    # whichever year the claim was logged in (the weekly chart's payouts add up to it).
    for code, paid in session.execute(
            select(Claim.product_code, sa.func.coalesce(sa.func.sum(Claim.paid_amount), 0))
            .where(Claim.collected_on.between(year.first, year.last),  # type: ignore[union-attr]
                   Claim.state == "collected", _unit_filter(Claim.unit_id, unit_id))
            .group_by(Claim.product_code)):
        products.setdefault(code, _product_totals(code, code, None))["paid_in_year"] += int(paid)
    by_state = {state: sum(p["by_state"].get(state, 0) for p in products.values())
                for state in STATES}
    outstanding, outstanding_amount = session.execute(
        select(sa.func.count(), sa.func.coalesce(sa.func.sum(Claim.approved_amount), 0))
        .where(Claim.state.in_(UNCOLLECTED_STATES),  # type: ignore[attr-defined]
               _unit_filter(Claim.unit_id, unit_id))).one()
    return {
        "year": year.year,
        "units": int(units),
        "units_enrolled": insured["units"],
        "employees": int(employees),
        "members_insured": insured["members"],
        "enrolment_rate": ratio(insured["members"], int(employees)),
        "claims": sum(p["claims"] for p in products.values()),
        "claims_by_state": {state: n for state, n in by_state.items() if n},
        "claimed": sum(p["claimed"] for p in products.values()),
        "approved": sum(p["approved"] for p in products.values()),
        "paid": sum(p["paid"] for p in products.values()),
        "paid_in_year": sum(p["paid_in_year"] for p in products.values()),
        "uncollected": {"claims": int(outstanding), "amount": int(outstanding_amount)},
        "by_product": list(products.values()),
    }


def _product_totals(code: str, name: str, insured: dict[str, int] | None) -> dict[str, Any]:
    return {"product_code": code, "product_name": name,
            "members_insured": (insured or {}).get("members", 0),
            "claims": 0, "by_state": {}, "claimed": 0, "approved": 0, "paid": 0,
            "paid_in_year": 0}


# --- the units' assessment (年度目标责任考核) ---------------------------------------------------


def complete_first_time(session: Session) -> Any:
    """A claim brought complete: nothing missing when logged, and nobody sent it back for
    materials (the county's request_materials, or the city office's return: both move it to
    待补材料)."""
    dialect = dialect_of(session)
    logged_complete = sa.exists().where(
        ClaimEvent.claim_id == Claim.id, ClaimEvent.event == "log",
        empty_json_array(ClaimEvent.payload, "missing_documents", dialect))
    asked = sa.exists().where(ClaimEvent.claim_id == Claim.id,
                              ClaimEvent.event.in_(("request_materials", "return")))
    return sa.and_(logged_complete, ~asked)


def unit_assessment(session: Session, year: Year, unit_id: int | None = None
                    ) -> list[dict[str, Any]]:
    """Per unit: enrolment rate, claims logged, share complete first time, days from the
    incident to logging (mean and median); every unit, in code order."""
    insured = (select(Member.unit_id.label("unit_id"),  # type: ignore[attr-defined]
                      sa.func.count(sa.distinct(Enrolment.member_id)).label("members"))
               .join(Member, Member.id == Enrolment.member_id)
               .where(year.covered_in()).group_by(Member.unit_id).subquery())
    claims = (select(Claim.unit_id.label("unit_id"),  # type: ignore[attr-defined]
                     sa.func.count().label("claims"),
                     sa.func.sum(sa.case((complete_first_time(session), 1), else_=0))
                     .label("complete"))
              .where(year.logged_in()).group_by(Claim.unit_id).subquery())
    rows = session.execute(
        select(Unit.id, Unit.code, Unit.name, Unit.area, Unit.employee_count,
               sa.func.coalesce(insured.c.members, 0), sa.func.coalesce(claims.c.claims, 0),
               sa.func.coalesce(claims.c.complete, 0))
        .outerjoin(insured, insured.c.unit_id == Unit.id)
        .outerjoin(claims, claims.c.unit_id == Unit.id)
        .where(_unit_filter(Unit.id, unit_id)).order_by(Unit.code)).all()
    lag = day_diff(Claim.logged_on, Claim.incident_date, dialect_of(session)).label("days")
    delays: dict[int, dict[int, int]] = defaultdict(dict)
    for unit, days, count in session.execute(
            select(Claim.unit_id, lag, sa.func.count())
            .where(year.logged_in(), _unit_filter(Claim.unit_id, unit_id))
            .group_by(Claim.unit_id, lag)):
        delays[unit][int(days)] = int(count)
    return [{"unit_code": code, "unit_name": name, "area": area, "employee_count": employees,
             "members_insured": int(members), "enrolment_rate": ratio(int(members), employees),
             "claims": int(logged), "complete_first_time": int(complete),
             "complete_share": ratio(int(complete), int(logged)),
             "days_to_log_mean": mean(delays[uid]), "days_to_log_median":
                 percentile(delays[uid], 0.5)}
            for uid, code, name, area, employees, members, logged, complete in rows]


# --- money not yet collected, the city office's decisions --------------------------------------


def uncollected_claims(unit_id: int | None = None) -> sa.Select[Any]:
    """Claims whose money arrived but was not collected, oldest money first."""
    received = (select(RemittanceItem.claim_id.label("claim_id"),  # type: ignore[attr-defined]
                       sa.func.max(Remittance.received_on).label("received_on"))
                .join(Remittance, Remittance.id == RemittanceItem.remittance_id)
                .group_by(RemittanceItem.claim_id).subquery())
    return (select(Claim.claim_no, Claim.state, Claim.product_code, Claim.approved_amount,
                   Claim.onsite_date, Member.name, Unit.code, Unit.name, received.c.received_on)
            .join(Member, Member.id == Claim.member_id).join(Unit, Unit.id == Claim.unit_id)
            .outerjoin(received, received.c.claim_id == Claim.id)
            .where(Claim.state.in_(UNCOLLECTED_STATES),  # type: ignore[attr-defined]
                   _unit_filter(Claim.unit_id, unit_id))
            .order_by(received.c.received_on, Claim.id))


def uncollected_view(row: Any, today: date) -> dict[str, Any]:
    claim_no, state, product, amount, onsite, member, unit_code, unit_name, received = row
    received = received and (received if isinstance(received, date)
                             else date.fromisoformat(str(received)))
    return {"claim_no": claim_no, "state": state, "state_label": STATES[state],
            "product_code": product, "amount": amount, "member_name": member,
            "unit_code": unit_code, "unit_name": unit_name, "received_on": received,
            "days_waiting": (today - received).days if received else None,
            "onsite_date": onsite}


def _decided(year: Year, unit_id: int | None) -> Any:
    return sa.and_(year.logged_in(), _unit_filter(Claim.unit_id, unit_id),
                   Claim.approved_amount.is_not(None))  # type: ignore[union-attr]


def decisions_summary(session: Session, year: Year, unit_id: int | None = None
                      ) -> dict[str, Any]:
    """The year's approved claims against their estimates, and the rejected ones."""
    approved, estimate = Claim.approved_amount, Claim.estimate

    def counted(condition: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    count, estimated, granted, above, below, equal, flagged = session.execute(
        select(sa.func.count(), sa.func.coalesce(sa.func.sum(estimate), 0),
               sa.func.coalesce(sa.func.sum(approved), 0), counted(approved > estimate),
               counted(approved < estimate), counted(approved == estimate),
               counted(Claim.above_estimate))
        .where(_decided(year, unit_id))).one()
    rejected, rejected_estimate = session.execute(
        select(sa.func.count(), sa.func.coalesce(sa.func.sum(estimate), 0))
        .where(year.logged_in(), _unit_filter(Claim.unit_id, unit_id),
               Claim.state == "rejected")).one()
    return {"year": year.year, "approved_claims": int(count), "estimate_total": int(estimated),
            "approved_total": int(granted), "difference": int(granted) - int(estimated),
            "above": int(above), "below": int(below), "equal": int(equal),
            "flagged_above_estimate": int(flagged), "rejected_claims": int(rejected),
            "rejected_estimate_total": int(rejected_estimate)}


def decided_claims(year: Year, unit_id: int | None = None) -> sa.Select[Any]:
    """Each approved claim against its estimate, the largest excess first."""
    difference = (Claim.approved_amount - Claim.estimate).label("difference")
    return (select(Claim.claim_no, Claim.state, Claim.product_code, Unit.code, Member.name,
                   Claim.estimate, Claim.approved_amount, difference, Claim.above_estimate)
            .join(Member, Member.id == Claim.member_id).join(Unit, Unit.id == Claim.unit_id)
            .where(_decided(year, unit_id)).order_by(difference.desc(), Claim.id))


def decided_view(row: Any) -> dict[str, Any]:
    claim_no, state, product, unit_code, member, estimate, approved, difference, flagged = row
    return {"claim_no": claim_no, "state": state, "state_label": STATES[state],
            "product_code": product, "unit_code": unit_code, "member_name": member,
            "estimate": estimate, "approved_amount": approved, "difference": difference,
            "above_estimate": bool(flagged)}


# --- the subsidy ---------------------------------------------------------------------------------


def subsidy_budget(session: Session, catalogue: Catalogue, year: Year, subsidy: int
                   ) -> dict[str, Any]:
    """The county's subsidy for the year, what the year's enrolment fees commit against it
    (one year's 互助费 for every term-year of an enrolment that begins in the year: a term
    from 1 July to 30 June is charged once, in the year it starts), and what is left."""
    grouped = session.execute(
        select(Enrolment.product_code, sa.func.count(),
               sa.func.coalesce(sa.func.sum(Enrolment.shares), 0))
        .where(year.term_year_begins_in(dialect_of(session)))
        .group_by(Enrolment.product_code)).all()
    by_product = []
    for code, enrolments, shares in sorted(grouped):
        product = catalogue.get(code)
        premium = product.premium_per_share if product else 0
        by_product.append({"product_code": code, "product_name": product.name if product
                           else code, "premium_per_share": premium, "enrolments": int(enrolments),
                           "shares": int(shares), "committed": premium * int(shares)})
    committed = sum(item["committed"] for item in by_product)
    return {"year": year.year, "subsidy": subsidy, "committed": committed,
            "left": subsidy - committed, "committed_share": ratio(committed, subsidy),
            "by_product": by_product}


# --- by week, for the charts -----------------------------------------------------------------


def _iso_week(day: Any) -> str:
    iso_year, week, _ = as_date(day).isocalendar()
    return f"{iso_year}-W{week:02d}"


def weekly_activity(session: Session, year: Year, unit_id: int | None = None
                    ) -> list[dict[str, Any]]:
    """Per ISO week of the year: claims logged, and money paid out (collected that week)."""
    weeks: dict[str, dict[str, Any]] = {}
    day = year.first
    while day <= year.last:  # every week of the year, so quiet weeks show as zero
        weeks.setdefault(_iso_week(day), {"claims": 0, "paid": 0})
        # The next Monday, but never past 31 December: the days after the year's last Monday
        # are a week of their own (2026-W53 holds 28-31 December 2026).
        day += timedelta(days=7 - day.weekday())
    for logged_on, count in session.execute(
            select(Claim.logged_on, sa.func.count())
            .where(year.logged_in(), _unit_filter(Claim.unit_id, unit_id))
            .group_by(Claim.logged_on)):
        weeks[_iso_week(logged_on)]["claims"] += int(count)
    collected_on = Claim.collected_on
    for collected, paid in session.execute(
            select(collected_on, sa.func.coalesce(sa.func.sum(Claim.paid_amount), 0))
            .where(collected_on.between(year.first, year.last),  # type: ignore[union-attr]
                   Claim.state == "collected", _unit_filter(Claim.unit_id, unit_id))
            .group_by(collected_on)):
        weeks[_iso_week(collected)]["paid"] += int(paid)
    return [{"week": week, **figures} for week, figures in sorted(weeks.items())]

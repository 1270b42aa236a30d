"""A worker's history: every enrolment and claim across the years, and per product and year
the cap, what was used and what is left (the same figure a new claim's estimate is capped by).

"Used" is what the estimate subtracts (SPEC §2): the approved amounts of the member's claims
on the product in the states approved to collected, by calendar year of the incident; "left"
comes from claims.rules.cap_left, the function the estimate calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.models import Batch, Claim, Enrolment, Member
from claims.rules import cap_standing
from claims.runtime import Runtime
from config.catalogue import Product
from workflows.facts import PAID_STATES
from workflows.lifecycle import STATES
from workflows.reasons import reasons_of


def paid_by_product_year(session: Session, member_ids: Sequence[int]
                         ) -> dict[tuple[int, str, int], int]:
    """(member, product, incident year) -> approved fen in the paid states: one GROUP BY."""
    if not member_ids:
        return {}
    year = sa.extract("year", Claim.incident_date)
    rows = session.execute(
        sa.select(Claim.member_id, Claim.product_code, year,
                  sa.cast(sa.func.sum(Claim.approved_amount), sa.BigInteger))
        .where(Claim.member_id.in_(member_ids),  # type: ignore[attr-defined]
               Claim.state.in_(PAID_STATES))  # type: ignore[attr-defined]
        .group_by(Claim.member_id, Claim.product_code, year)
    ).all()
    return {(int(m), str(p), int(y)): int(total or 0) for m, p, y, total in rows}


def _shares_in(enrolments: Sequence[Enrolment], product_code: str, year: int) -> int:
    """The shares of the latest enrolment in the product that covers part of the year."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    covering = [e for e in enrolments if e.product_code == product_code
                and e.start_date <= last and e.end_date >= first]
    return max(covering, key=lambda e: e.start_date).shares if covering else 0


def member_history(session: Session, runtime: Runtime, member: Member) -> dict[str, Any]:
    """The member's enrolments, claims and per product and year: cap, used, left (fen)."""
    assert member.id is not None
    catalogue, today = runtime.catalogue, runtime.today()
    enrolments = list(session.exec(
        select(Enrolment).where(Enrolment.member_id == member.id)
        .order_by(Enrolment.product_code, Enrolment.start_date)  # type: ignore[arg-type]
    ).all())
    claims = session.execute(
        select(Claim, Batch.batch_no).outerjoin(Batch, Batch.id == Claim.batch_id)  # type: ignore[arg-type]
        .where(Claim.member_id == member.id)
        .order_by(Claim.incident_date, Claim.id)  # type: ignore[arg-type]
    ).all()
    paid = paid_by_product_year(session, [member.id])
    years: set[tuple[str, int]] = {(p, y) for (_m, p, y) in paid}
    years |= {(c.product_code, c.incident_date.year) for c, _ in claims}
    for e in enrolments:
        last_year = min(e.end_date.year, max(today.year, e.start_date.year))
        years |= {(e.product_code, y) for y in range(e.start_date.year, last_year + 1)}
    lifetime: dict[str, int] = {}
    for (_m, product_code, _y), fen in paid.items():
        lifetime[product_code] = lifetime.get(product_code, 0) + fen
    reasons = reasons_of(runtime)

    def name_of(code: str) -> str:
        product = catalogue.get(code)
        return product.name if product else code

    caps = []
    for product_code, year in sorted(years):
        product: Product | None = catalogue.get(product_code)
        shares = _shares_in(enrolments, product_code, year)
        used_in_year = paid.get((member.id, product_code, year), 0)
        standing = cap_standing(product, shares, paid_this_year=used_in_year,
                                paid_lifetime=lifetime.get(product_code, 0)) if product else None
        caps.append({
            "product_code": product_code, "product_name": name_of(product_code), "year": year,
            "shares": shares, "paid_in_year": used_in_year,
            "cap_period": standing.period if standing else None,
            "cap": standing.cap if standing else None,
            "used": standing.used if standing else used_in_year,
            "left": standing.left if standing else None,
        })
    return {
        "member_id": member.id,
        "enrolments": [{"id": e.id, "product_code": e.product_code,
                        "product_name": name_of(e.product_code), "shares": e.shares,
                        "start_date": e.start_date, "end_date": e.end_date,
                        "current": e.start_date <= today <= e.end_date} for e in enrolments],
        "claims": [{"claim_no": c.claim_no, "product_code": c.product_code,
                    "product_name": name_of(c.product_code), "cause": c.cause,
                    "incident_date": c.incident_date, "year": c.incident_date.year,
                    "state": c.state, "state_label": STATES[c.state], "batch_no": batch_no,
                    "estimate": c.estimate, "approved_amount": c.approved_amount,
                    "paid_amount": c.paid_amount, "collected_on": c.collected_on,
                    "reason": c.last_reason, "reason_code": c.last_reason_code,
                    "reason_label": reasons.label_of(c.last_reason_code)}
                   for c, batch_no in claims],
        "caps": caps,
    }


def masked_history(history: dict[str, Any]) -> dict[str, Any]:
    """The history as the public status check shows it to the worker: no ids, no batch, no
    internal codes; amounts and dates only, as the rest of the status answer."""
    return {
        "enrolments": [{k: e[k] for k in ("product_name", "shares", "start_date", "end_date",
                                          "current")} for e in history["enrolments"]],
        "claims": [{"claim_no": c["claim_no"], "product_name": c["product_name"],
                    "incident_date": c["incident_date"], "state_label": c["state_label"],
                    "amount_estimated": c["estimate"], "amount_approved": c["approved_amount"],
                    "amount_paid": c["paid_amount"]} for c in history["claims"]],
        "caps": [{k: row[k] for k in ("product_name", "year", "cap_period", "cap", "used",
                                      "left")} for row in history["caps"]],
    }

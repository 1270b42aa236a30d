"""What the rules need to know about a claim, read from the database (rules never touch it)."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.models import Claim, Enrolment
from claims.rules import ClaimFacts, Coverage, estimate
from config.catalogue import Product

# The states in which an approved amount counts as paid towards a cap (SPEC §2).
PAID_STATES = ("approved", "funds_received", "notified", "onsite_scheduled", "collected")
# A claim in these states is over without payment: it is nobody's duplicate.
ENDED_UNPAID = ("withdrawn", "rejected")


def claim_facts(claim: Claim, logged_on: date | None = None) -> ClaimFacts:
    return ClaimFacts(
        cause=claim.cause,
        incident_date=claim.incident_date,
        admission_date=claim.admission_date,
        discharge_date=claim.discharge_date,
        total_expense=claim.total_expense,
        insurance_paid=claim.insurance_paid,
        self_paid=claim.self_paid,
        disability_grade=claim.disability_grade,
        disability_assessed_on=claim.disability_assessed_on,
        death=claim.death,
        logged_on=logged_on or claim.logged_on,
    )


def coverage_on(session: Session, member_id: int, product_code: str,
                on: date) -> tuple[Enrolment | None, Coverage | None]:
    """The enrolment covering `on`, and the coverage the rules judge the claim by: that
    enrolment, with the start of its unbroken run of renewals; else the member's enrolment
    in the product nearest `on` (so the refusal can name its dates); else None."""
    terms = session.exec(select(Enrolment).where(
        Enrolment.member_id == member_id, Enrolment.product_code == product_code,
    ).order_by(Enrolment.start_date)).all()  # type: ignore[arg-type]
    covering = next((t for t in terms if t.start_date <= on <= t.end_date), None)
    if covering is None:
        before = [t for t in terms if t.end_date < on]
        nearest = before[-1] if before else next(iter(terms), None)
        return None, coverage_of(nearest)
    since = covering.start_date
    ends = {t.end_date: t.start_date for t in terms}
    while since - timedelta(days=1) in ends:  # renewed the day after the last term ended
        since = ends[since - timedelta(days=1)]
    return covering, Coverage(covering.start_date, covering.end_date, covering.shares,
                              continuous_from=since)


def coverage_of(enrolment: Enrolment | None) -> Coverage | None:
    if enrolment is None:
        return None
    return Coverage(enrolment.start_date, enrolment.end_date, enrolment.shares)


def paid_on_product(session: Session, member_id: int, product_code: str, *,
                    year: int | None = None, excluding: int | None = None) -> int:
    """Approved amounts (fen) of the member's claims on the product, in the paid states."""
    query = select(sa.func.coalesce(sa.func.sum(Claim.approved_amount), 0)).where(
        Claim.member_id == member_id,
        Claim.product_code == product_code,
        Claim.state.in_(PAID_STATES),  # type: ignore[attr-defined]
    )
    if year is not None:
        query = query.where(Claim.incident_date >= date(year, 1, 1),
                            Claim.incident_date <= date(year, 12, 31))
    if excluding is not None:
        query = query.where(Claim.id != excluding)
    return int(session.scalar(query) or 0)


def earlier_duplicate(session: Session, claim: Claim) -> Claim | None:
    """Another claim, logged earlier, for the same member, product and incident date, still live."""
    query = select(Claim).where(
        Claim.member_id == claim.member_id,
        Claim.product_code == claim.product_code,
        Claim.incident_date == claim.incident_date,
        Claim.state.not_in(ENDED_UNPAID),  # type: ignore[attr-defined]
    )
    if claim.id is not None:
        query = query.where(Claim.id < claim.id)
    return session.exec(query.order_by(Claim.id)).first()


def other_live_claim(session: Session, claim: Claim) -> bool:
    """Whether another live claim of the member on the product comes first: one logged earlier,
    or one already verified (so two once-only claims can never both be ready)."""
    query = select(Claim.id).where(
        Claim.member_id == claim.member_id,
        Claim.product_code == claim.product_code,
        Claim.id != claim.id,
        Claim.state.not_in(ENDED_UNPAID),  # type: ignore[attr-defined]
        sa.or_(Claim.id < claim.id,  # type: ignore[operator]
               Claim.state.not_in(("logged", "pending_materials"))),  # type: ignore[attr-defined]
    )
    return session.exec(query.limit(1)).first() is not None


def current_estimate(session: Session, product: Product, claim: Claim,
                     enrolment: Enrolment | None) -> int:
    """The benefit estimate (fen) with the shares covering the incident and what was paid."""
    return estimate(
        product, claim_facts(claim), enrolment.shares if enrolment else 0,
        paid_this_year=paid_on_product(session, claim.member_id, claim.product_code,
                                       year=claim.incident_date.year, excluding=claim.id),
        paid_lifetime=paid_on_product(session, claim.member_id, claim.product_code,
                                      excluding=claim.id),
    )

"""Discrepancies (对账差异): each claim-level kind as one SQL condition over a claim and its
money, the per-claim figures, and the batch and remittance totals that do not add up.
workflows/reconcile.py puts them beside the totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from claims.models import Batch, Claim, Remittance, RemittanceItem, Unit
from claims.money import format_fen
from claims.runtime import Runtime
from workflows.facts import PAID_STATES

# Money has arrived and waits for the worker.
AWAITING_COLLECTION = ("funds_received", "notified", "onsite_scheduled")
# Every kind of discrepancy, with the line a clerk reads.
KINDS: dict[str, str] = {
    "approved_not_remitted": "已核准但逾期未到账",
    "remitted_differs": "到账金额与核准金额不符",
    "paid_differs": "兑付金额与核准金额不符",
    "remitted_not_approved": "到账明细对应的理赔未核准",
    "uncollected": "到账后逾期未领取",
    "batch_total_differs": "批次合计与所含理赔不符",
    "remittance_total_differs": "到账总额与明细合计不符",
}

_c = Claim.__table__  # type: ignore[attr-defined]
_b = Batch.__table__  # type: ignore[attr-defined]
_u = Unit.__table__  # type: ignore[attr-defined]
_r = Remittance.__table__  # type: ignore[attr-defined]
_ri = RemittanceItem.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Scope:
    """Which claims are reconciled: all, or one batch, one year (logged), one unit."""

    batch_no: str | None = None
    year: int | None = None
    unit_code: str | None = None

    def claim_filters(self) -> list[Any]:
        filters: list[Any] = []
        if self.batch_no is not None:
            filters.append(_c.c.batch_id == sa.select(_b.c.id).where(
                _b.c.batch_no == self.batch_no).scalar_subquery())
        if self.year is not None:
            filters.append(_c.c.logged_on.between(date(self.year, 1, 1),
                                                  date(self.year, 12, 31)))
        if self.unit_code is not None:
            filters.append(_c.c.unit_id == sa.select(_u.c.id).where(
                _u.c.code == self.unit_code).scalar_subquery())
        return filters

    @property
    def narrowed(self) -> bool:
        return any(v is not None for v in (self.batch_no, self.year, self.unit_code))

    def as_dict(self) -> dict[str, Any]:
        return {"batch_no": self.batch_no, "year": self.year, "unit_code": self.unit_code}


@dataclass
class Discrepancy:
    kind: str
    message: str
    claims: list[str] = field(default_factory=list)
    batch_no: str | None = None
    reference: str | None = None  # the remittance
    expected: int | None = None  # fen
    actual: int | None = None  # fen
    since: date | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": KINDS[self.kind], "message": self.message,
                "claims": self.claims, "batch_no": self.batch_no, "reference": self.reference,
                "expected": self.expected, "actual": self.actual, "since": self.since}


def money_by_claim(*, received_on: bool = False) -> sa.Subquery:
    """Per claim: the money remitted for it (and the day it first arrived, if asked)."""
    if not received_on:
        return (sa.select(_ri.c.claim_id, sum_fen(_ri.c.amount).label("remitted"))
                .group_by(_ri.c.claim_id).subquery("money"))
    return (sa.select(_ri.c.claim_id, sum_fen(_ri.c.amount).label("remitted"),
                      sa.func.min(_r.c.received_on).label("received_on"))
            .join(_r, _r.c.id == _ri.c.remittance_id)
            .group_by(_ri.c.claim_id).subquery("money"))


def sum_fen(value: Any) -> Any:
    """SUM as a 64-bit integer: PostgreSQL sums bigint into numeric (Decimal in Python)."""
    return sa.cast(sa.func.sum(value), sa.BigInteger)


def _flags(runtime: Runtime, money: sa.Subquery) -> dict[str, Any]:
    """Each claim-level kind as a condition on a claim joined to its money."""
    today, settings = runtime.today(), runtime.settings
    unremitted_cutoff = today - timedelta(days=settings.reconcile_unremitted_days)
    uncollected_cutoff = today - timedelta(days=settings.reconcile_uncollected_days)
    in_paid = _c.c.state.in_(PAID_STATES)
    has_money = money.c.claim_id.is_not(None)
    return {
        "approved_not_remitted": in_paid & ~has_money & (_c.c.approved_on <= unremitted_cutoff),
        "remitted_differs": has_money & in_paid & _c.c.approved_amount.is_not(None)
        & (money.c.remitted != _c.c.approved_amount),
        "paid_differs": ((_c.c.paid_amount.is_not(None)
                          & (_c.c.paid_amount != sa.func.coalesce(_c.c.approved_amount, -1)))
                         | ((_c.c.state == "collected") & _c.c.paid_amount.is_(None))),
        "remitted_not_approved": has_money & (~in_paid | _c.c.approved_amount.is_(None)),
        "uncollected": _c.c.state.in_(AWAITING_COLLECTION)
        & (money.c.received_on <= uncollected_cutoff),
    }


CLAIM_KINDS = ("approved_not_remitted", "remitted_differs", "paid_differs",
               "remitted_not_approved", "uncollected")


def claim_figures(runtime: Runtime, scope: Scope, *, discrepant_only: bool = False,
                  with_unit: bool = False) -> sa.Select[Any]:
    """Per claim of the scope: estimate, approved, remitted, paid, and a 0/1 column per
    claim-level kind of discrepancy; oldest first."""
    money = money_by_claim(received_on=True)
    flags = _flags(runtime, money)
    joined = (_c.outerjoin(money, money.c.claim_id == _c.c.id)
              .outerjoin(_b, _b.c.id == _c.c.batch_id))
    unit = []
    if with_unit:
        joined = joined.join(_u, _u.c.id == _c.c.unit_id)
        unit = [_u.c.code.label("unit_code")]
    query = (
        sa.select(_c.c.claim_no, _c.c.state, *unit, _c.c.product_code, _b.c.batch_no,
                  _c.c.logged_on, _c.c.estimate, _c.c.approved_amount, _c.c.approved_on,
                  sa.func.coalesce(money.c.remitted, 0).label("remitted"), money.c.received_on,
                  _c.c.paid_amount,
                  *(sa.case((condition, 1), else_=0).label(kind)
                    for kind, condition in flags.items()))
        .select_from(joined).where(*scope.claim_filters()).order_by(_c.c.id)
    )
    if discrepant_only:
        query = query.where(sa.or_(*flags.values()))
    return query


def flagged_claims(session: Session, runtime: Runtime, scope: Scope) -> list[Discrepancy]:
    """Every claim-level discrepancy of the scope, in one pass over its claims."""
    found: list[Discrepancy] = []
    for row in session.execute(claim_figures(runtime, scope, discrepant_only=True)):
        for kind in CLAIM_KINDS:
            if getattr(row, kind):
                found.append(_claim_discrepancy(kind, row))
    return found


def _claim_discrepancy(kind: str, row: Any) -> Discrepancy:
    approved, remitted, paid = row.approved_amount, row.remitted, row.paid_amount
    common = {"claims": [row.claim_no], "batch_no": row.batch_no}
    if kind == "approved_not_remitted":
        return Discrepancy(kind, f"{row.claim_no} 于 {row.approved_on} 核准 "
                                 f"{format_fen(approved)} 元，至今未到账。",
                           expected=approved, actual=0, since=row.approved_on, **common)
    if kind == "remitted_differs":
        return Discrepancy(kind, f"{row.claim_no} 核准 {format_fen(approved)} 元，到账 "
                                 f"{format_fen(remitted)} 元。",
                           expected=approved, actual=remitted, since=row.received_on, **common)
    if kind == "paid_differs":
        return Discrepancy(kind, f"{row.claim_no} 核准 {format_fen(approved)} 元，兑付 "
                                 f"{format_fen(paid) or '0.00'} 元。",
                           expected=approved, actual=paid, **common)
    if kind == "remitted_not_approved":
        return Discrepancy(kind, f"{row.claim_no} 状态为 {row.state}，未核准，却到账 "
                                 f"{format_fen(remitted)} 元。",
                           expected=0, actual=remitted, since=row.received_on, **common)
    return Discrepancy(kind, f"{row.claim_no} 的互助金 {format_fen(remitted)} 元于 "
                             f"{row.received_on} 到账，至今未领取。",
                       expected=remitted, actual=0, since=row.received_on, **common)


def _scoped_exists(scope: Scope, link: Any) -> Any:
    """Some claim of the scope is linked by `link` (a batch or a remittance in scope)."""
    return sa.exists(sa.select(_c.c.id).where(link, *scope.claim_filters()))


def batch_totals(session: Session, scope: Scope) -> list[Any]:
    """Each batch in scope with its recorded count and total beside the claims in it now."""
    in_batch = (sa.select(_c.c.batch_id, sa.func.count().label("n"),
                          sum_fen(_c.c.estimate).label("total"))
                .where(_c.c.batch_id.is_not(None)).group_by(_c.c.batch_id).subquery())
    query = (sa.select(_b.c.id, _b.c.batch_no, _b.c.claim_count, _b.c.total_claimed,
                       _b.c.delivered_at, sa.func.coalesce(in_batch.c.n, 0).label("n"),
                       sa.func.coalesce(in_batch.c.total, 0).label("total"))
             .select_from(_b.outerjoin(in_batch, in_batch.c.batch_id == _b.c.id)))
    if scope.batch_no is not None:
        query = query.where(_b.c.batch_no == scope.batch_no)
    elif scope.narrowed:
        query = query.where(_scoped_exists(scope, _c.c.batch_id == _b.c.id))
    return list(session.execute(query.order_by(_b.c.id)))


def batch_discrepancies(session: Session, batches: list[Any]) -> list[Discrepancy]:
    """Batches whose recorded count or total differs from the claims now in them."""
    rows = [row for row in batches
            if row.n != row.claim_count or row.total != row.total_claimed]
    if not rows:
        return []
    members = _claim_nos(session, _c.c.batch_id, [row.id for row in rows])
    return [Discrepancy("batch_total_differs",
                        f"批次 {row.batch_no} 记录 {row.claim_count} 件、"
                        f"{format_fen(row.total_claimed)} 元，所含理赔为 {row.n} 件、"
                        f"{format_fen(row.total)} 元。",
                        claims=members.get(row.id, []), batch_no=row.batch_no,
                        expected=row.total_claimed, actual=int(row.total))
            for row in rows]


def remittance_discrepancies(session: Session, scope: Scope) -> list[Discrepancy]:
    """Remittances whose total differs from the sum of their items."""
    items = (sa.select(_ri.c.remittance_id, sum_fen(_ri.c.amount).label("total"))
             .group_by(_ri.c.remittance_id).subquery())
    total = sa.func.coalesce(items.c.total, 0)
    query = (sa.select(_r.c.id, _r.c.reference, _r.c.total_amount, _r.c.received_on,
                       total.label("total"))
             .select_from(_r.outerjoin(items, items.c.remittance_id == _r.c.id))
             .where(total != _r.c.total_amount))
    if scope.narrowed:
        query = query.where(_scoped_exists(scope, sa.and_(
            _ri.c.claim_id == _c.c.id, _ri.c.remittance_id == _r.c.id)))
    rows = session.execute(query.order_by(_r.c.id)).all()
    if not rows:
        return []
    item_claims = sa.select(_ri.c.remittance_id, _c.c.claim_no).join(
        _c, _c.c.id == _ri.c.claim_id).where(_ri.c.remittance_id.in_([r.id for r in rows]))
    members: dict[int, list[str]] = {}
    for remittance_id, claim_no in session.execute(item_claims.order_by(_c.c.claim_no)):
        members.setdefault(remittance_id, []).append(claim_no)
    return [Discrepancy("remittance_total_differs",
                        f"到账 {row.reference} 总额 {format_fen(row.total_amount)} 元，明细合计 "
                        f"{format_fen(row.total)} 元。",
                        claims=members.get(row.id, []), reference=row.reference,
                        expected=row.total_amount, actual=int(row.total),
                        since=row.received_on)
            for row in rows]


def _claim_nos(session: Session, column: Any, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    query = sa.select(column, _c.c.claim_no).where(column.in_(ids)).order_by(_c.c.claim_no)
    for key, claim_no in session.execute(query):
        found.setdefault(key, []).append(claim_no)
    return found

"""Reconciliation (对账) to the fen: per batch, per year and product, and every discrepancy with
the claims it touches. Set-based: a handful of GROUP BY queries, never a loop over claims.

Amounts are fen. "Claimed" is the sum of the estimates of the claims in a batch (what went
to the city office); "approved" the approved amounts of claims in the states approved to
collected; "remitted" the remittance items; "paid" what the workers were paid; "outstanding"
approved less paid. A claim's year is the year it was logged (configured time zone), as in
the year's reports.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from claims.models import Batch, Claim, ClaimEvent, Remittance, RemittanceItem
from claims.money import format_fen
from claims.runtime import Runtime
from workflows.discrepancies import (
    AWAITING_COLLECTION,
    CLAIM_KINDS,
    KINDS,
    Scope,
    batch_discrepancies,
    batch_totals,
    claim_figures,
    flagged_claims,
    money_by_claim,
    remittance_discrepancies,
    sum_fen,
)
from workflows.facts import PAID_STATES

_c = Claim.__table__  # type: ignore[attr-defined]
_b = Batch.__table__  # type: ignore[attr-defined]
_r = Remittance.__table__  # type: ignore[attr-defined]
_ri = RemittanceItem.__table__  # type: ignore[attr-defined]
_e = ClaimEvent.__table__  # type: ignore[attr-defined]
__all__ = ["CLAIM_KINDS", "KINDS", "Scope", "claim_figures", "reconcile", "summary"]


def _sum_if(condition: Any, value: Any) -> Any:
    return sa.func.coalesce(sum_fen(sa.case((condition, value), else_=0)), 0)


def _count_if(condition: Any) -> Any:
    return sa.func.coalesce(sum_fen(sa.case((condition, 1), else_=0)), 0)


FIGURES = ("claims", "claimed", "approved_count", "approved", "rejected_count", "rejected",
           "returned_count", "remitted", "paid", "awaiting_funds", "awaiting_collection",
           "outstanding")


def _figures(session: Session, scope: Scope, money: sa.Subquery) -> list[dict[str, Any]]:
    """One row per (batch, logged year, product) of the scope's claims, with their sums."""
    in_paid = _c.c.state.in_(PAID_STATES)
    remitted = sa.func.coalesce(money.c.remitted, 0)
    # By day, not year: a year() per row costs more than the few more groups (years in Python).
    query = (
        sa.select(
            _c.c.batch_id, _c.c.logged_on, _c.c.product_code,
            sa.func.count().label("claims"),
            _sum_if(_c.c.batch_id.is_not(None), _c.c.estimate).label("claimed"),
            _count_if(in_paid).label("approved_count"),
            _sum_if(in_paid, _c.c.approved_amount).label("approved"),
            _count_if(_c.c.state == "rejected").label("rejected_count"),
            _sum_if(_c.c.state == "rejected", _c.c.estimate).label("rejected"),
            sa.func.coalesce(sum_fen(remitted), 0).label("remitted"),
            sa.func.coalesce(sum_fen(_c.c.paid_amount), 0).label("paid"),
            _sum_if(in_paid & money.c.claim_id.is_(None), _c.c.approved_amount)
            .label("awaiting_funds"),
            _sum_if(_c.c.state.in_(AWAITING_COLLECTION), remitted).label("awaiting_collection"),
        )
        .select_from(_c.outerjoin(money, money.c.claim_id == _c.c.id))
        .where(*scope.claim_filters())
        .group_by(_c.c.batch_id, _c.c.logged_on, _c.c.product_code)
    )
    return [dict(row._mapping, year=row.logged_on.year) for row in session.execute(query)]


def _returned(session: Session, scope: Scope) -> dict[tuple[str | None, int, str], int]:
    """Returns (the city office sent a claim back), by the batch it left, year and product."""
    batch_no = _e.c.payload["batch_no"].as_string()
    year = sa.extract("year", _c.c.logged_on)
    filters = [_e.c.event == "return", *Scope(year=scope.year,
                                              unit_code=scope.unit_code).claim_filters()]
    if scope.batch_no is not None:
        filters.append(batch_no == scope.batch_no)
    rows = session.execute(
        sa.select(batch_no, year, _c.c.product_code, sa.func.count())
        .select_from(_e.join(_c, _c.c.id == _e.c.claim_id))
        .where(*filters).group_by(batch_no, year, _c.c.product_code))
    return {(b, int(y), p): int(n) for b, y, p, n in rows}


def _add(total: dict[str, int], row: dict[str, Any]) -> None:
    for name in FIGURES:
        total[name] = total.get(name, 0) + int(row.get(name) or 0)


def _finish(figures: dict[str, int]) -> dict[str, int]:
    figures = {name: figures.get(name, 0) for name in FIGURES}
    figures["outstanding"] = figures["approved"] - figures["paid"]
    return figures


def _checks(session: Session, scope: Scope, totals: dict[str, int],
            batch_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The identities that prove the books balance, each with its two sides (fen)."""
    remittances = sa.select(sa.func.coalesce(sum_fen(_r.c.total_amount), 0))
    items = sa.select(sa.func.coalesce(sum_fen(_ri.c.amount), 0))
    if scope.narrowed:
        items = items.where(_ri.c.claim_id.in_(sa.select(_c.c.id).where(*scope.claim_filters())))
    recorded = sum(row["recorded_total_claimed"] for row in batch_rows)
    in_batches = sum(row["batch_claimed"] for row in batch_rows)
    money_in = int(session.scalar(items) or 0)
    checks = [
        ("batch_totals", "批次记录合计 = 所含理赔估算之和", recorded, in_batches),
        ("approved", "核准 = 已兑付 + 待领取 + 待到账", totals["approved"],
         totals["paid"] + totals["awaiting_collection"] + totals["awaiting_funds"]),
        ("remitted", "到账明细 = 已兑付 + 待领取", money_in,
         totals["paid"] + totals["awaiting_collection"]),
    ]
    if not scope.narrowed:  # a remittance may pay claims of several batches, years, units
        checks.append(("remittances", "到账总额 = 到账明细合计",
                       int(session.scalar(remittances) or 0), money_in))
    return [{"name": name, "label": label, "left": left, "right": right,
             "equal": left == right} for name, label, left, right in checks]


def reconcile(session: Session, runtime: Runtime, scope: Scope | None = None) -> dict[str, Any]:
    """The reconciliation of the scope: totals, per batch, per year and product, discrepancies."""
    scope = scope or Scope()
    rows = _figures(session, scope, money_by_claim())
    returned = _returned(session, scope)
    batch_nos = dict(session.execute(sa.select(_b.c.id, _b.c.batch_no)).all())
    by_batch: dict[str | None, dict[str, int]] = {}
    by_year: dict[tuple[int, str], dict[str, int]] = {}
    totals: dict[str, int] = {}
    for row in rows:
        batch_no = batch_nos.get(row["batch_id"]) if row["batch_id"] is not None else None
        key = (int(row["year"]), row["product_code"])
        if batch_no is not None:
            _add(by_batch.setdefault(batch_no, {}), row)
        _add(by_year.setdefault(key, {}), row)
        _add(totals, row)
    for (batch_no, year, product), count in returned.items():
        if batch_no is not None:
            by_batch.setdefault(batch_no, {})["returned_count"] = (
                by_batch[batch_no].get("returned_count", 0) + count)
        by_year.setdefault((year, product), {})["returned_count"] = (
            by_year[(year, product)].get("returned_count", 0) + count)
        totals["returned_count"] = totals.get("returned_count", 0) + count
    batches = batch_totals(session, scope)
    batch_rows = _batch_rows(batches, by_batch)
    discrepancies = (flagged_claims(session, runtime, scope)
                     + batch_discrepancies(session, batches)
                     + remittance_discrepancies(session, scope))
    totals = _finish(totals)
    checks = _checks(session, scope, totals, batch_rows)
    counts: dict[str, int] = {}
    for item in discrepancies:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    return {
        "as_of": runtime.today(),
        "scope": scope.as_dict(),
        "balanced": not discrepancies and all(check["equal"] for check in checks),
        "totals": totals,
        "checks": checks,
        "discrepancy_counts": counts,
        "discrepancies": [item.as_dict() for item in discrepancies],
        "batches": batch_rows,
        "years": _year_rows(session, runtime, by_year),
        "settings": {"unremitted_days": runtime.settings.reconcile_unremitted_days,
                     "uncollected_days": runtime.settings.reconcile_uncollected_days},
    }


def _batch_rows(batches: list[Any],
                by_batch: dict[str | None, dict[str, int]]) -> list[dict[str, Any]]:
    """Each batch in scope: its recorded totals, the whole batch's claims, the scope's figures."""
    return [{"batch_no": row.batch_no, "delivered": row.delivered_at is not None,
             "recorded_claim_count": row.claim_count, "recorded_total_claimed": row.total_claimed,
             "batch_claim_count": int(row.n), "batch_claimed": int(row.total),
             **_finish(by_batch.get(row.batch_no, {}))} for row in batches]


def _year_rows(session: Session, runtime: Runtime,
               by_year: dict[tuple[int, str], dict[str, int]]) -> list[dict[str, Any]]:
    """Per year and product: the figures, and the subsidy the year's enrolments commit."""
    committed = _subsidy_committed(session, runtime, {year for year, _ in by_year})
    rows = []
    for (year, product_code), figures in sorted(by_year.items()):
        product = runtime.catalogue.get(product_code)
        rows.append({"year": year, "product_code": product_code,
                     "product_name": product.name if product else product_code,
                     **_finish(figures),
                     "subsidy_committed": committed.get((year, product_code))})
    return rows


def _subsidy_committed(session: Session, runtime: Runtime,
                       years: set[int]) -> dict[tuple[int, str], int]:
    """The programme's budget committed per year and product (workflows/reports.py defines it:
    one year's fee for every enrolment covering the year)."""
    try:
        from workflows.report_sql import Year
        from workflows.reports import subsidy_budget
    except ImportError:  # the reports are optional for reconciliation
        return {}
    committed: dict[tuple[int, str], int] = {}
    for year in years:
        budget = subsidy_budget(session, runtime.catalogue, Year(year, runtime.settings.tz),
                                getattr(runtime.settings, "subsidy_fen", 0))
        for item in budget["by_product"]:
            committed[(year, item["product_code"])] = int(item["committed"])
    return committed


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the reconcile job records in its JobRun: the verdict, counts and totals (yuan)."""
    return {"as_of": result["as_of"].isoformat(), "balanced": result["balanced"],
            "discrepancies": sum(result["discrepancy_counts"].values()),
            "by_kind": result["discrepancy_counts"],
            "totals": {name: format_fen(value) if name not in (
                "claims", "approved_count", "rejected_count", "returned_count") else value
                for name, value in result["totals"].items()},
            "checks_failed": [c["name"] for c in result["checks"] if not c["equal"]]}

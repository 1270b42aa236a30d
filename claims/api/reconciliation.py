"""Reconciliation (对账) to the fen: GET /api/v1/reconciliation as JSON, or as an XLSX workbook
with ?format=xlsx or `Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage, attachment
from claims.api.security import STAFF_ONLY
from claims.models import Batch, Unit
from claims.money import format_fen
from claims.runtime import get_runtime, get_session
from claims.schemas.reconciliation import (
    COUNTS,
    ReconciliationClaimSchema,
    ReconciliationClaimsQuerySchema,
    ReconciliationQuerySchema,
    ReconciliationSchema,
)
from workflows.errors import FieldError, RuleFailed
from workflows.lifecycle import STATES
from workflows.reconcile import CLAIM_KINDS, KINDS, Scope, claim_figures, reconcile
from workflows.report_xlsx import Sheet, Yuan, workbook

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_CLAIM_ROWS = 20_000  # the workbook lists each claim up to this many (a year: filter it)

blp = Blueprint("reconciliation", __name__, url_prefix="/api/v1/reconciliation",
                description="Reconciliation to the fen: batches, years, remittances, payouts")

FIGURE_HEADERS: dict[str, str] = {
    "claims": "理赔件数", "claimed": "申请（估算）", "approved_count": "核准件数",
    "approved": "核准金额", "rejected_count": "不予赔付件数", "rejected": "不予赔付（估算）",
    "returned_count": "退回件次", "remitted": "到账金额", "paid": "已兑付",
    "awaiting_funds": "待到账", "awaiting_collection": "待领取", "outstanding": "未兑付",
}


def _unknown(field: str, code: str, message: str) -> RuleFailed:
    return RuleFailed(message, [FieldError(field, code, message)])


def _scope(query: dict[str, Any]) -> Scope:
    """The filters, each naming something that exists (else 422 naming it)."""
    session = get_session()
    batch_no, unit_code = query.get("batch_no"), query.get("unit_code")
    if batch_no is not None and session.exec(
            select(Batch.id).where(Batch.batch_no == batch_no)).first() is None:
        raise _unknown("batch_no", "unknown_batch", f"No batch {batch_no}.")
    if unit_code is not None and session.exec(
            select(Unit.id).where(Unit.code == unit_code)).first() is None:
        raise _unknown("unit_code", "unknown_unit", f"No unit {unit_code}.")
    return Scope(batch_no=batch_no, year=query.get("year"), unit_code=unit_code)


def wants_xlsx(query: dict[str, Any]) -> bool:
    if "format" in query:
        return bool(query["format"] == "xlsx")
    best = request.accept_mimetypes.best_match(["application/json", XLSX_MIMETYPE])
    return best == XLSX_MIMETYPE


def _figures(row: dict[str, Any]) -> list[Any]:
    return [row[name] if name in COUNTS else Yuan(row[name]) for name in FIGURE_HEADERS]


def claim_sheet(rows: Any) -> Sheet:
    """One row per claim: its four figures and the discrepancies that touch it."""
    return Sheet("理赔明细", ("理赔编号", "单位", "险种", "批次", "登记日期", "状态", "估算",
                          "核准", "核准日期", "到账", "到账日期", "兑付", "差异"),
                 ([r.claim_no, r.unit_code, r.product_code, r.batch_no, r.logged_on,
                   STATES[r.state], Yuan(r.estimate), Yuan(r.approved_amount), r.approved_on,
                   Yuan(r.remitted), r.received_on, Yuan(r.paid_amount),
                   "、".join(KINDS[k] for k in CLAIM_KINDS if getattr(r, k))] for r in rows))


def reconciliation_sheets(result: dict[str, Any]) -> list[Sheet]:
    """The workbook: the verdict and checks, batches, years and products, discrepancies."""
    scope = result["scope"]
    overview: list[list[Any]] = [
        ["对账日期", result["as_of"]], ["批次", scope["batch_no"] or "全部"],
        ["年度（登记）", scope["year"] or "全部"], ["单位", scope["unit_code"] or "全部"],
        ["结论", "账实相符" if result["balanced"] else "存在差异"],
        ["差异条数", len(result["discrepancies"])],
        *([FIGURE_HEADERS[name], value if name in COUNTS else Yuan(value)]
          for name, value in result["totals"].items()),
        *([check["label"], "相符" if check["equal"] else
           f"不符：{format_fen(check['left'])} ≠ {format_fen(check['right'])}"]
          for check in result["checks"]),
    ]
    headers = list(FIGURE_HEADERS.values())
    batches = [[b["batch_no"], b["recorded_claim_count"], Yuan(b["recorded_total_claimed"]),
                b["batch_claim_count"], Yuan(b["batch_claimed"]), *_figures(b)]
               for b in result["batches"]]
    years = [[y["year"], y["product_name"], *_figures(y), Yuan(y["subsidy_committed"])]
             for y in result["years"]]
    # One row per claim a discrepancy touches, so a filter in the sheet finds a claim.
    found = [[KINDS[d["kind"]], claim_no, d["batch_no"], d["reference"], Yuan(d["expected"]),
              Yuan(d["actual"]), d["since"], d["message"]]
             for d in result["discrepancies"] for claim_no in (d["claims"] or [None])]
    return [
        Sheet("对账结论", ("项目", "数值"), overview),
        Sheet("差异明细", ("差异类型", "理赔编号", "批次", "到账单号", "应为", "实为", "起始日期",
                       "说明"), found),
        Sheet("分批次", ("批次", "记录件数", "记录金额", "实际件数", "实际金额", *headers),
              batches),
        Sheet("分年度险种", ("年度", "险种", *headers, "补贴占用"), years),
    ]


@blp.route("")
class ReconciliationView(MethodView):
    @STAFF_ONLY
    @blp.arguments(ReconciliationQuerySchema, location="query")
    @blp.response(200, ReconciliationSchema)
    @blp.doc(responses={"200": {"description": "The reconciliation, as JSON or XLSX", "content": {
        "application/json": {"schema": ReconciliationSchema},
        XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}}}}})
    @blp.alt_response(422, description="An unknown filter, batch or unit")
    def get(self, query: dict[str, Any]) -> Any:
        """Reconcile to the fen: totals, per batch, per year and product, every discrepancy
        with the claims it touches; balanced when all is well."""
        scope = _scope(query)
        result = reconcile(get_session(), get_runtime(), scope)
        if not wants_xlsx(query):
            return result
        sheets = reconciliation_sheets(result)
        if result["totals"]["claims"] <= MAX_CLAIM_ROWS:  # else: the filters narrow it
            rows = get_session().execute(claim_figures(get_runtime(), scope, with_unit=True))
            sheets.append(claim_sheet(rows))
        name = "-".join(str(v) for v in result["scope"].values() if v is not None) or "all"
        filename = f"reconciliation-{name}-{result['as_of'].isoformat()}.xlsx"
        return Response(workbook(sheets), mimetype=XLSX_MIMETYPE,
                        headers={"Content-Disposition": attachment(filename),
                                 "Cache-Control": "no-store"})



class ClaimFiguresPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        query = self.query.offset(self.page_params.first_item).limit(self.page_params.page_size)
        return [{**row._mapping, "discrepancies": [k for k in CLAIM_KINDS if getattr(row, k)]}
                for row in self.session.execute(query)]


@blp.route("/claims")
class ReconciliationClaimsView(MethodView):
    @STAFF_ONLY
    @blp.arguments(ReconciliationClaimsQuerySchema, location="query")
    @blp.response(200, ReconciliationClaimSchema(many=True))
    @blp.paginate(ClaimFiguresPage)
    @blp.alt_response(422, description="An unknown filter, batch or unit")
    def get(self, query: dict[str, Any]) -> Any:
        """Per claim: estimate, approved, remitted, paid, and its discrepancies; oldest first."""
        figures = claim_figures(get_runtime(), _scope(query),
                                discrepant_only=bool(query.get("discrepant")), with_unit=True)
        return Listing(get_session(), figures)

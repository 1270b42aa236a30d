"""Coded reasons: the table clerks pick from, and the report counting the reasons given."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Page
from sqlmodel import select

from claims.api.base import Blueprint
from claims.api.security import ANY_STAFF, current_actor
from claims.models import Unit
from claims.runtime import get_runtime, get_session
from claims.schemas.common import QuerySchema
from claims.schemas.reasons import ReasonReportQuerySchema, ReasonReportSchema, ReasonSchema
from config.reasons import EVENT_KINDS
from workflows.errors import FieldError, RuleFailed
from workflows.reasons import reason_counts, reasons_of

blp = Blueprint("reasons", __name__, url_prefix="/api/v1",
                description="Coded reasons for returns, rejections and documents")


@blp.route("/reasons")
class ReasonsView(MethodView):
    @ANY_STAFF
    @blp.arguments(QuerySchema, location="query")
    @blp.response(200, ReasonSchema(many=True))
    @blp.paginate(Page)  # slices the list, counts it for X-Pagination, as every list (§7)
    def get(self, _filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Every reason code (config/reasons.toml), with the events that take it."""
        return [{"code": r.code, "label": r.label, "kind": r.kind,
                 "events": [e for e, kinds in EVENT_KINDS.items() if r.kind in kinds]}
                for r in reasons_of(get_runtime()).reasons.values()]


@blp.route("/reports/reasons")
class ReasonReportView(MethodView):
    @ANY_STAFF
    @blp.arguments(ReasonReportQuerySchema, location="query")
    @blp.response(200, ReasonReportSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Reasons given in a year (returns, rejections, materials asked for), counted per unit
        and per product; unit_staff see their own unit's."""
        session, runtime, actor = get_session(), get_runtime(), current_actor()
        unit_id = actor.unit_id if actor.is_unit_staff else None
        if "unit_code" in query:
            found = session.exec(select(Unit.id).where(Unit.code == query["unit_code"])).first()
            if found is None or (unit_id is not None and found != unit_id):
                message = f"No unit {query['unit_code']}."
                raise RuleFailed(message, [FieldError("unit_code", "unknown_unit", message)])
            unit_id = found
        return reason_counts(session, runtime, year=query.get("year", runtime.today().year),
                             unit_id=unit_id, product_code=query.get("product_code"))

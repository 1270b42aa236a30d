"""Holiday visits (逢年过节上门慰问): who to visit before a festival, with contacts; exportable."""

from __future__ import annotations

from datetime import date
from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest import Page

from claims.api.base import Blueprint, attachment
from claims.api.security import ANY_STAFF, current_actor
from claims.runtime import get_runtime, get_session
from claims.schemas.common import QuerySchema
from claims.schemas.fields import Money
from workflows.errors import FieldError, RuleFailed
from workflows.visits import (
    FESTIVALS,
    FIRST_YEAR,
    LAST_YEAR,
    VisitRow,
    chosen_festival,
    csv_text,
    export_name,
    title_for,
    visit_list,
    xlsx_bytes,
)

blp = Blueprint("visits", __name__, url_prefix="/api/v1/visits",
                description="Holiday visits: members with serious-illness or large claims")

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class VisitQuerySchema(QuerySchema):
    festival = ma.fields.String(validate=ma.validate.OneOf(list(FESTIVALS)), metadata={
        "description": "spring (春节) or mid_autumn (中秋节); default: the next festival"})
    year = ma.fields.Integer(strict=False, validate=ma.validate.Range(FIRST_YEAR, LAST_YEAR),
                             metadata={"description": "the festival's year; with festival only"})


class VisitExportQuerySchema(VisitQuerySchema):
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(("xlsx", "csv")))


class VisitSchema(ma.Schema):
    festival = ma.fields.String()
    festival_date = ma.fields.Date()
    unit_code = ma.fields.String()
    unit_name = ma.fields.String()
    union_contact = ma.fields.String(allow_none=True)
    union_phone = ma.fields.String(allow_none=True)
    member_id = ma.fields.Integer()
    member_name = ma.fields.String()
    id_number_masked = ma.fields.String()
    sex = ma.fields.String()
    member_phone = ma.fields.String(allow_none=True)
    reasons = ma.fields.List(ma.fields.String())
    claim_nos = ma.fields.List(ma.fields.String())
    largest_amount = Money()
    latest_incident = ma.fields.Date()


def _festival(query: dict[str, Any]) -> tuple[str, int, date]:
    """The festival asked for; by default the next one (today counts)."""
    if "year" in query and "festival" not in query:
        raise RuleFailed("Name the festival of that year.", [FieldError(
            "festival", "required", "Give festival (spring or mid_autumn) with year.")])
    return chosen_festival(get_runtime().today(), query.get("festival"), query.get("year"))


def _rows(festival: str, day: date) -> list[VisitRow]:
    actor = current_actor()
    return visit_list(get_session(), get_runtime(), day,
                      unit_id=actor.unit_id if actor.is_unit_staff else None)


@blp.route("")
class VisitsView(MethodView):
    @ANY_STAFF
    @blp.arguments(VisitQuerySchema, location="query")
    @blp.response(200, VisitSchema(many=True), headers={
        "X-Festival": {"description": "the festival listed", "schema": {"type": "string"}},
        "X-Festival-Date": {"description": "its date", "schema": {"type": "string"}}})
    @blp.paginate(Page)
    def get(self, query: dict[str, Any]) -> Any:
        """Members to visit before the festival, by unit; unit_staff see their own unit."""
        festival, _year, day = _festival(query)
        body = [{"festival": festival, "festival_date": day, **vars(row)}
                for row in _rows(festival, day)]
        return body, {"X-Festival": festival, "X-Festival-Date": day.isoformat()}


@blp.route("/export")
class VisitsExportView(MethodView):
    @ANY_STAFF
    @blp.arguments(VisitExportQuerySchema, location="query")
    @blp.response(200, {"format": "binary", "type": "string"},
                  content_type=XLSX_MIMETYPE, description="The list as XLSX (or CSV)")
    @blp.doc(responses={"200": {"description": "The visit list as XLSX or CSV", "content": {
        XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
        "text/csv": {"schema": {"type": "string"}}}}})
    def get(self, query: dict[str, Any]) -> Response:
        """The list as a spreadsheet to print or pass on (format=xlsx, the default, or csv)."""
        festival, year, day = _festival(query)
        rows = _rows(festival, day)
        name = export_name(festival, year, query["format"])
        if query["format"] == "csv":
            response = Response(csv_text(rows), mimetype="text/csv")
        else:
            response = Response(xlsx_bytes(rows, title_for(festival, year, day)),
                                mimetype=XLSX_MIMETYPE)
        response.headers["Content-Disposition"] = attachment(name)
        return response

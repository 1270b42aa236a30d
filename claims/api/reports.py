"""Reports (统计报表) for the county office and the units: JSON, and XLSX at `<report>.xlsx`.

Unit staff get their own unit's figures (the county's subsidy is for county staff only).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import abort

from claims.api.base import MAX_OFFSET, Blueprint, Listing, SelectPage, attachment
from claims.api.security import ANY_STAFF, STAFF_ONLY, current_actor
from claims.runtime import get_runtime, get_session
from claims.schemas.reports import (
    REPORTS,
    DecidedClaimSchema,
    DecisionsSchema,
    ListQuerySchema,
    SubsidySchema,
    SummarySchema,
    TurnaroundSchema,
    UncollectedSchema,
    UnitFiguresSchema,
    YearQuerySchema,
)
from workflows import report_xlsx
from workflows.reasons import reason_counts
from workflows.report_sql import Year
from workflows.reports import (
    decided_claims,
    decided_view,
    decisions_summary,
    subsidy_budget,
    uncollected_claims,
    uncollected_view,
    unit_assessment,
    year_summary,
)
from workflows.transmission import XLSX_TYPE
from workflows.turnaround import turnaround

# "reports" is the reasons report's blueprint (claims/api/reasons.py): a name of our own.
blp = Blueprint("annual_reports", __name__, url_prefix="/api/v1/reports",
                description="Reports: the year's figures, units, turnaround, money, subsidy")


def report_year(query: dict[str, Any]) -> Year:
    runtime = get_runtime()
    return Year(query.get("year") or runtime.today().year, runtime.settings.tz)


def scope() -> int | None:
    """The unit a unit_staff caller is confined to; None for county staff."""
    actor = current_actor()
    return actor.unit_id if actor.is_unit_staff else None


class RowsPage(SelectPage):
    """Pages a report's select(), each row shown by `view`."""

    def view(self, row: Any) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def items(self) -> list[Any]:
        first, size = self.page_params.first_item, self.page_params.page_size
        if first + size > MAX_OFFSET:
            return []  # far past the last page: the databases take 64-bit offsets
        return [self.view(row) for row in self.session.execute(
            self.query.offset(first).limit(size))]


class UncollectedPage(RowsPage):
    def view(self, row: Any) -> dict[str, Any]:
        return uncollected_view(row, get_runtime().today())


class DecidedPage(RowsPage):
    def view(self, row: Any) -> dict[str, Any]:
        return decided_view(row)


@blp.route("/summary")
class SummaryView(MethodView):
    @ANY_STAFF
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, SummarySchema)
    def get(self, query: dict[str, Any]) -> Any:
        """The year's summary: enrolment, claims by product and state, amounts."""
        return year_summary(get_session(), get_runtime().catalogue, report_year(query), scope())


@blp.route("/units")
class UnitsView(MethodView):
    @ANY_STAFF
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, UnitFiguresSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: Any) -> Any:
        """Per unit for the annual assessment (年度目标责任考核), in unit-code order."""
        units = unit_assessment(get_session(), report_year(query), scope())
        pagination_parameters.item_count = len(units)
        first = pagination_parameters.first_item
        return units[first:first + pagination_parameters.page_size]


@blp.route("/turnaround")
class TurnaroundView(MethodView):
    @ANY_STAFF
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, TurnaroundSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Days per stage (median, 90th percentile) for the year and by ISO week."""
        return turnaround(get_session(), report_year(query), scope())


@blp.route("/uncollected")
class UncollectedView(MethodView):
    @ANY_STAFF
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, UncollectedSchema(many=True))
    @blp.paginate(UncollectedPage)
    def get(self, _query: dict[str, Any]) -> Any:
        """Money arrived but not yet collected, as of today, oldest money first."""
        return Listing(get_session(), uncollected_claims(scope()))


@blp.route("/decisions")
class DecisionsView(MethodView):
    @ANY_STAFF
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, DecisionsSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """The city office's decisions on the year's claims against our estimates."""
        return decisions_summary(get_session(), report_year(query), scope())


@blp.route("/decisions/claims")
class DecidedClaimsView(MethodView):
    @ANY_STAFF
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, DecidedClaimSchema(many=True))
    @blp.paginate(DecidedPage)
    def get(self, query: dict[str, Any]) -> Any:
        """Each approved claim of the year against its estimate, the largest excess first."""
        return Listing(get_session(), decided_claims(report_year(query), scope()))


@blp.route("/subsidy")
class SubsidyView(MethodView):
    @STAFF_ONLY
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, SubsidySchema)
    def get(self, query: dict[str, Any]) -> Any:
        """The county's subsidy for the year, committed by enrolment fees, and what is left."""
        runtime = get_runtime()
        return subsidy_budget(get_session(), runtime.catalogue, report_year(query),
                              runtime.settings.subsidy_fen)


def report_sheets(name: str, year: Year, unit_id: int | None) -> list[report_xlsx.Sheet]:
    """The named report's sheets, as the console and the API download them."""
    session, runtime = get_session(), get_runtime()
    names = {code: p.name for code, p in runtime.catalogue.products.items()}
    if name == "summary":
        return report_xlsx.summary_sheets(year_summary(session, runtime.catalogue, year, unit_id))
    if name == "units":
        return report_xlsx.units_sheets(unit_assessment(session, year, unit_id))
    if name == "turnaround":
        return report_xlsx.turnaround_sheets(turnaround(session, year, unit_id))
    if name == "uncollected":
        today = runtime.today()
        rows = [uncollected_view(r, today) for r in session.execute(uncollected_claims(unit_id))]
        return report_xlsx.uncollected_sheets(rows, names)
    if name == "decisions":
        rows = [decided_view(r) for r in session.execute(decided_claims(year, unit_id))]
        return report_xlsx.decisions_sheets(decisions_summary(session, year, unit_id), rows,
                                            names)
    if name == "reasons":
        return report_xlsx.reasons_sheets(reason_counts(session, runtime, year=year.year,
                                                        unit_id=unit_id))
    return report_xlsx.subsidy_sheets(subsidy_budget(session, runtime.catalogue, year,
                                                     runtime.settings.subsidy_fen))


def xlsx_response(name: str, year: Year, unit_id: int | None) -> Response:
    body = report_xlsx.workbook(report_sheets(name, year, unit_id))
    filename = f"{name}-{year.year}.xlsx" if name != "uncollected" else (
        f"uncollected-{get_runtime().today().isoformat()}.xlsx")
    return Response(body, mimetype=XLSX_TYPE, headers={
        "Content-Disposition": attachment(filename), "Cache-Control": "no-store"})


@blp.route("/<string:name>.xlsx")
class ReportWorkbookView(MethodView):
    @ANY_STAFF
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, content_type=XLSX_TYPE,
                  description="The report as an XLSX workbook (uncollected ignores the year)")
    @blp.alt_response(404, description="No such report")
    def get(self, query: dict[str, Any], name: str) -> Response:
        """Download a report (summary, units, turnaround, uncollected, decisions, reasons,
        subsidy)."""
        if name not in REPORTS:
            abort(404, message="No such report.")
        if name == "subsidy" and current_actor().is_unit_staff:
            abort(403, message="Your role may not make this call.")
        return xlsx_response(name, report_year(query), scope())

"""Console: the holiday visits list (逢年过节上门慰问), by unit with contacts, and its export.
The same list as GET /api/v1/visits; unit staff see their own unit's members only."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from typing import Any

from flask import Response, g, render_template, request
from flask_babel import gettext

from claims.api.base import attachment
from claims.money import format_fen
from claims.runtime import get_runtime, get_session
from claims.web.console import console
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

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _chosen() -> tuple[str, int, date]:
    """The festival in the query string, else the next one (a mistyped one: the next one)."""
    festival = request.args.get("festival", "")
    year = request.args.get("year", type=int)
    if year is not None and not FIRST_YEAR <= year <= LAST_YEAR:
        year = None
    return chosen_festival(get_runtime().today(), festival if festival in FESTIVALS else None,
                           year)


def _rows(day: date) -> list[VisitRow]:
    return visit_list(get_session(), get_runtime(), day,
                      unit_id=g.actor.unit_id if g.actor.is_unit_staff else None)


@console.app_template_filter("visit_reason")
def visit_reason(reason: str) -> str:
    """Why a member is on the list, in the page's language: a product's name, or the large-claim
    reason in workflows.visits' wording; anything else as written."""
    runtime = get_runtime()
    if reason in {p.name for p in runtime.catalogue.products.values()}:
        return gettext(reason)
    amount = format_fen(runtime.settings.onsite_threshold_fen)
    if reason == f"大额理赔（{amount}元及以上）":
        return gettext("大额理赔（%(amount)s元及以上）", amount=amount)
    return reason


@console.get("/visits")
def visits() -> str:
    """Who to visit before the festival, unit by unit, with the union's and the member's phone."""
    festival, year, day = _chosen()
    rows = _rows(day)
    units: list[dict[str, Any]] = [
        {"code": code, "rows": list(group)}
        for code, group in groupby(sorted(rows, key=lambda r: r.unit_code),
                                   key=lambda r: r.unit_code)]
    return render_template("console/visits.html", festival=festival, year=year, day=day,
                           title=title_for(festival, year, day), units=units, total=len(rows),
                           festivals=FESTIVALS)


@console.get("/visits/export.<kind>")
def visits_export(kind: str) -> Response:
    """The list as XLSX or CSV, to print or hand to the unit unions."""
    festival, year, day = _chosen()
    rows = _rows(day)
    if kind == "csv":
        response = Response(csv_text(rows), mimetype="text/csv")
    elif kind == "xlsx":
        response = Response(xlsx_bytes(rows, title_for(festival, year, day)),
                            mimetype=XLSX_MIMETYPE)
    else:
        return Response("Not found", status=404)
    response.headers["Content-Disposition"] = attachment(export_name(festival, year, kind))
    return response

"""Console: the reports page (统计报表) with its charts, tables and XLSX downloads.

The same workflow functions as /api/v1/reports, scoped the same way (unit staff: their unit).
The page carries a CSP nonce for the charts' stylesheets (see claims/web/charts.py).
"""

from __future__ import annotations

import secrets
from typing import Any

import flask
import sqlalchemy as sa
from flask import g, render_template, request
from flask_babel import gettext as _

from claims.api.reports import xlsx_response
from claims.models import Claim
from claims.runtime import get_runtime, get_session
from claims.schemas.reports import REPORTS
from claims.web import charts
from claims.web.console import console
from workflows.report_sql import Year, as_date
from workflows.reports import (
    decisions_summary,
    subsidy_budget,
    uncollected_claims,
    uncollected_view,
    unit_assessment,
    weekly_activity,
    year_summary,
)
from workflows.turnaround import turnaround

UNCOLLECTED_SHOWN = 50


def _unit_id() -> int | None:
    return g.actor.unit_id if g.actor.is_unit_staff else None


def _year() -> Year:
    runtime = get_runtime()
    this_year = runtime.today().year
    asked = request.args.get("year", type=int)
    chosen = asked if asked and 2000 <= asked <= this_year + 1 else this_year
    return Year(chosen, runtime.settings.tz)


def _years() -> list[int]:
    """The years the picker offers: from the first claim's to this one."""
    this_year = get_runtime().today().year
    first = get_session().scalar(sa.select(sa.func.min(Claim.logged_on)))
    start = min(as_date(first).year, this_year) if first else this_year
    return list(range(this_year, max(start, this_year - 9) - 1, -1))


@console.get("/reports")
def reports() -> Any:
    """The year's figures for the county (or the signed-in unit), charted and tabled."""
    session, runtime = get_session(), get_runtime()
    year, unit_id = _year(), _unit_id()
    nonce = secrets.token_urlsafe(16)
    summary = year_summary(session, runtime.catalogue, year, unit_id)
    units = unit_assessment(session, year, unit_id)
    timing = turnaround(session, year, unit_id)
    today = runtime.today()
    uncollected = [uncollected_view(row, today) for row in session.execute(
        uncollected_claims(unit_id).limit(UNCOLLECTED_SHOWN))]
    subsidy = None if g.actor.is_unit_staff else subsidy_budget(
        session, runtime.catalogue, year, runtime.settings.subsidy_fen)
    page = render_template(
        "console/reports.html", year=year.year, years=_years(), summary=summary, units=units,
        turnaround=timing, uncollected=uncollected, uncollected_shown=UNCOLLECTED_SHOWN,
        decisions=decisions_summary(session, year, unit_id), subsidy=subsidy,
        reports=[name for name in REPORTS if subsidy is not None or name != "subsidy"],
        charts={
            "weekly": charts.claims_and_payouts(weekly_activity(session, year, unit_id),
                                                _("每周理赔登记与兑付"), nonce),
            "turnaround": charts.turnaround_trend(timing["stages"], _("办理用时趋势"), nonce),
            "rates": charts.enrolment_rates(units, _("各单位参保率"), nonce),
        })
    response = flask.make_response(page)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; style-src 'self' 'nonce-{nonce}'; frame-ancestors 'none'; "
        "form-action 'self'")
    return response


@console.get("/reports/<name>.xlsx")
def report_download(name: str) -> Any:
    """A report as XLSX, as the API gives it; the subsidy is for county staff."""
    if name not in REPORTS or (name == "subsidy" and g.actor.is_unit_staff):
        flask.abort(404)
    return xlsx_response(name, _year(), _unit_id())

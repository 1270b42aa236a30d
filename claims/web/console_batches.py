"""Console: the weekly batches (批次): list, run now, the batch page, manifest, deliver, the
city office's decisions sheet. Clerk and admin pages; the same workflow functions as the API.
"""

from __future__ import annotations

import re
from typing import Any

import flask
import sqlalchemy as sa
from flask import g, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlmodel import col, select

from claims.api.batches import MANIFEST_TYPES
from claims.api.claims import claim_view, visible_claims
from claims.api.security import PRINT_CSP
from claims.models import Batch, Claim
from claims.runtime import get_runtime, get_session
from claims.schemas.payout import read_decisions_sheet
from claims.web.console import console
from claims.web.console_kit import paged, row_message, staff_only
from claims.web.forms import chinese
from workflows.batch import (
    deliver_batch,
    lock_batches,
    manifest_to_download,
    run_weekly_batch,
    totals_by_state,
)
from workflows.errors import DomainError, FieldError, RuleFailed
from workflows.payout import apply_decisions

# rows.7.核准金额: the sheet's row number and the column the clerk sees.
_SHEET_FIELD = re.compile(r"^rows\.(\d+)\.(.+)$")
# How the manifest goes to the city office (MUTUALAID_TRANSMISSION), and how that went.
TRANSMISSIONS: dict[str, Any] = {"folder": _l("共享文件夹"), "smtp": _l("电子邮件"),
                                 "http": _l("HTTP 接口")}
TRANSMISSION_STATES: dict[str, Any] = {"pending": _l("待传送"), "sent": _l("已传送"),
                                       "failed": _l("传送失败")}


def _batch_or_404(batch_no: str) -> Batch:
    batch = get_session().exec(select(Batch).where(Batch.batch_no == batch_no)).first()
    if batch is None:
        flask.abort(404)
    return batch


def _states_per_batch(batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each batch's claims counted by state, in one query."""
    if not batch_ids:
        return {}
    rows = get_session().execute(
        sa.select(Claim.batch_id, Claim.state, sa.func.count())
        .where(col(Claim.batch_id).in_(batch_ids)).group_by(Claim.batch_id, Claim.state))
    counts: dict[int, dict[str, int]] = {}
    for batch_id, state, count in rows:
        counts.setdefault(batch_id, {})[state] = int(count)
    return counts


@console.get("/batches")
@staff_only
def batches() -> str:
    """Batches newest first: delivered or not, claims by state, totals, transmission."""
    page = paged(sa.select(Batch).order_by(col(Batch.id).desc()))
    listed = [row[0] for row in page.rows]
    counts = _states_per_batch([b.id for b in listed if b.id is not None])
    ready = get_session().scalar(
        sa.select(sa.func.count()).select_from(Claim).where(Claim.state == "ready")) or 0
    return render_template("console/batches.html", page=page, batches=listed, counts=counts,
                           ready=ready, transmissions=TRANSMISSIONS,
                           transmission_states=TRANSMISSION_STATES)


@console.post("/batches/run")
@staff_only
def run_batch() -> Any:
    """Run the weekly batch now: seal the ready claims, write the manifest, transmit it."""
    get_session().commit()  # the run commits step by step in its own transactions
    summary = run_weekly_batch(get_runtime(), g.actor)
    if summary["batch_no"] is None:
        flask.flash(_("没有待报送的理赔，未生成批次。"))
        return redirect(url_for("console.batches"), 303)
    flask.flash(ngettext("已装批 %(num)s 件理赔，批次 %(batch)s。",
                         "已装批 %(num)s 件理赔，批次 %(batch)s。", summary["sealed"],
                         batch=summary["batch_no"]))
    return redirect(url_for("console.batch_page", batch_no=summary["batch_no"]), 303)


def _decision_refusals(error: DomainError) -> list[dict[str, Any]]:
    """A refused sheet as rows to show: sheet row, column, reason (a file problem first)."""
    failures = error.errors or [FieldError("file", error.code, error.message)]
    shown = []
    for failure in failures:
        match = _SHEET_FIELD.match(failure.field or "")
        shown.append({"row": int(match.group(1)) if match else None,
                      "field": match.group(2) if match else (failure.field or ""),
                      "code": failure.code, "message": row_message(failure.code, failure.message)})
    return sorted(shown, key=lambda r: (r["row"] or 0, r["field"]))


def _batch_page(batch_no: str, status: int = 200, **extra: Any) -> Any:
    batch = _batch_or_404(batch_no)
    assert batch.id is not None
    db = get_session()
    by_state = totals_by_state(db, batch.id)
    approved = db.scalar(sa.select(sa.func.coalesce(sa.func.sum(Claim.approved_amount), 0))
                         .where(Claim.batch_id == batch.id)) or 0
    claims = paged(visible_claims().where(Claim.batch_id == batch.id)
                   .order_by(col(Claim.claim_no)), page_size=100)
    return render_template(
        "console/batch.html", batch=batch, by_state=by_state, approved_total=int(approved),
        claims=[claim_view(*row) for row in claims.rows], claims_page=claims,
        refusals=extra.get("refusals", []), file_name=extra.get("file_name"),
        transmissions=TRANSMISSIONS, transmission_states=TRANSMISSION_STATES), status


@console.get("/batches/<batch_no>")
@staff_only
def batch_page(batch_no: str) -> Any:
    """The batch: totals by state, its claims, the manifest, deliver and the decisions sheet."""
    return _batch_page(batch_no)


@console.get("/batches/<batch_no>/manifest.<kind>")
@staff_only
def manifest(batch_no: str, kind: str) -> Any:
    """The manifest (报送清单) as XLSX, CSV or the printable cover sheet, written if missing."""
    if kind not in MANIFEST_TYPES:
        flask.abort(404)
    batch = _batch_or_404(batch_no)
    get_session().commit()  # writing, if needed, takes the batch lock in its own transaction
    files = manifest_to_download(get_runtime(), batch)
    path = {"xlsx": files.xlsx, "csv": files.csv, "cover": files.cover}[kind]
    response = send_file(path, mimetype=MANIFEST_TYPES[kind], as_attachment=kind != "cover",
                         download_name=path.name, max_age=0)
    response.headers["Cache-Control"] = "no-store"  # names every claimant of the batch
    if kind == "cover":
        response.headers["Content-Security-Policy"] = PRINT_CSP
    return response


@console.post("/batches/<batch_no>/deliver")
@staff_only
def deliver(batch_no: str) -> Any:
    """The paper materials went with the manifest: every claim in the batch is submitted."""
    db = get_session()
    lock_batches(db)
    batch = _batch_or_404(batch_no)
    try:
        moved = deliver_batch(db, batch, g.actor)
    except DomainError as error:
        db.rollback()
        flask.flash(chinese(error.code, error.message), "error")
        return redirect(url_for("console.batch_page", batch_no=batch_no), 303)
    db.commit()
    flask.flash(ngettext("批次 %(batch)s 已报送市总，%(num)s 件理赔待市总审核。",
                         "批次 %(batch)s 已报送市总，%(num)s 件理赔待市总审核。", moved,
                         batch=batch_no))
    return redirect(url_for("console.batch_page", batch_no=batch_no), 303)


@console.post("/batches/<batch_no>/decisions")
@staff_only
def upload_decisions(batch_no: str) -> Any:
    """The city office's sheet: every row applied, or none and each bad row listed."""
    db, runtime = get_session(), get_runtime()
    batch = _batch_or_404(batch_no)
    upload = request.files.get("file")
    name = upload.filename if upload is not None else None
    try:
        if upload is None or not upload.filename:
            raise RuleFailed("Choose the decisions sheet.", [FieldError(
                "file", "no_decisions_file", "Choose the decisions sheet.")])
        if not upload.filename.lower().endswith(".xlsx"):
            raise RuleFailed("Not an .xlsx workbook.",
                             [FieldError("file", "not_xlsx", "Not an .xlsx workbook.")])
        decisions = read_decisions_sheet(upload.read())
        applied = apply_decisions(db, runtime, batch, decisions, g.actor)
    except DomainError as error:
        db.rollback()
        return _batch_page(batch_no, error.status, refusals=_decision_refusals(error),
                           file_name=name)
    approved = [d.claim_no for d in decisions if d.outcome == "approved" and d.claim_no]
    flagged = db.exec(select(Claim.claim_no).where(col(Claim.claim_no).in_(approved),
                                                   col(Claim.above_estimate))
                      .order_by(col(Claim.claim_no))).all() if approved else []
    db.commit()
    flask.flash(ngettext("已记录 %(num)s 条市总审核结果。", "已记录 %(num)s 条市总审核结果。",
                         applied))
    if flagged:
        flask.flash(_("核准金额高于估算，请复核：%(claims)s", claims=_("、").join(flagged)),
                    "warning")
    return redirect(url_for("console.batch_page", batch_no=batch_no), 303)

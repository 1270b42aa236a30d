"""Console: money in and out. Remittance entry (到账), the collection counter (领款柜台) with
its receipt (收据), and the button that sends the payout notices now. Clerk and admin pages
over record_remittance and the `collect` event, so the rules are the API's.
"""

from __future__ import annotations

import re
from typing import Any

import flask
import marshmallow as ma
import sqlalchemy as sa
from flask import Response, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlmodel import col

from claims.api.claims import load_claim, receipt_page, visible_claims
from claims.api.security import PRINT_CSP
from claims.idcard import mask
from claims.models import Claim, Member, Remittance
from claims.runtime import get_runtime, get_session
from claims.schemas.fields import IdNumber
from claims.schemas.payout import RemittanceInSchema
from claims.web.console import console
from claims.web.console_kit import paged, row_errors, schema_field_errors, staff_only
from claims.web.forms import Errors, chinese, domain_errors, read_event, typed_amount
from workflows.errors import DomainError
from workflows.jobs import run_job
from workflows.lifecycle import EVENTS_BY_NAME
from workflows.payout import RemittanceLine, record_remittance
from workflows.transitions import fire

BLANK_ROWS = 10  # rows the remittance form offers without JavaScript
MAX_ROWS = 500  # rows one form may post (bigger remittances go through the API)
_ITEM_KEY = re.compile(r"^items-(\d{1,4})-(claim_no|amount)$")
COLLECTABLE = ("notified", "onsite_scheduled")
COLLECT = EVENTS_BY_NAME["collect"]


# --- remittances --------------------------------------------------------------------------


@console.get("/remittances")
@staff_only
def remittances() -> str:
    """Money received, newest first, with how many claims each paid."""
    page = paged(sa.select(Remittance).order_by(col(Remittance.id).desc()))
    return render_template("console/remittances.html", page=page,
                           remittances=[row[0] for row in page.rows])


def _posted_rows(form: Any) -> list[dict[str, str]]:
    """The item rows as typed, in row order: every row the form had, blank ones too."""
    numbers = {int(m.group(1)) for key in form if (m := _ITEM_KEY.match(key))}
    count = max(BLANK_ROWS, min(MAX_ROWS, max(numbers, default=-1) + 1))
    return [{"claim_no": form.get(f"items-{n}-claim_no", "").strip()[:40],
             "amount": typed_amount(form.get(f"items-{n}-amount", ""))[:40]}
            for n in range(count)]


def _remittance_form(rows: list[dict[str, str]], typed: dict[str, str], errors: Errors,
                     status: int = 200) -> tuple[str, int]:
    return render_template("console/remittance_form.html", rows=rows, typed=typed,
                           errors=errors, today=get_runtime().today()), status


@console.route("/remittances/new", methods=["GET", "POST"])
@staff_only
def new_remittance() -> Any:
    """Enter a remittance: reference, date, total and one row per claim; all or nothing."""
    if request.method == "GET":
        return _remittance_form(_posted_rows({}), {}, {})
    typed = {k: request.form.get(k, "").strip() for k in ("reference", "received_on")}
    typed["total_amount"] = typed_amount(request.form.get("total_amount", ""))
    rows = _posted_rows(request.form)
    # Blank rows are skipped; errors about items.N name the Nth filled row: map it back.
    filled = [index for index, row in enumerate(rows) if row["claim_no"] or row["amount"]]
    body = {**{k: v for k, v in typed.items() if v},
            "items": [{k: v for k, v in rows[i].items() if v} for i in filled]}
    db = get_session()
    try:
        fields = RemittanceInSchema().load(body)
        remittance = record_remittance(
            db, get_runtime(), reference=fields["reference"],
            received_on=fields["received_on"], total_amount=fields["total_amount"],
            items=[RemittanceLine(i["claim_no"], i["amount"]) for i in fields["items"]],
            actor=g.actor)
    except ma.ValidationError as error:
        errors = schema_field_errors(error)
        if not filled:  # the schema's "Length must be between 1 and ..." says it in English
            errors["items"] = [chinese("no_items", "")]
    except DomainError as error:
        db.rollback()
        errors = row_errors(error)
    else:
        reference, count = remittance.reference, len(filled)
        db.commit()
        flask.flash(ngettext(
            "已记录到账 %(ref)s：%(num)s 件理赔转为“理赔金已到账”，领取通知已排队。",
            "已记录到账 %(ref)s：%(num)s 件理赔转为“理赔金已到账”，领取通知已排队。",
            count, ref=reference))
        return redirect(url_for("console.remittances"), 303)
    return _remittance_form(rows, typed, _by_form_row(errors, filled), 422)


def _by_form_row(errors: Errors, filled: list[int]) -> Errors:
    """items.2.amount -> items-5-amount when the 3rd filled row is the form's 6th."""
    named: Errors = {}
    for field, messages in errors.items():
        match = re.match(r"^items\.(\d+)\.(claim_no|amount)$", field)
        if match and int(match.group(1)) < len(filled):
            field = f"items-{filled[int(match.group(1))]}-{match.group(2)}"
        named.setdefault(field, []).extend(messages)
    return named


# --- the collection counter ---------------------------------------------------------------


def _found(query: sa.Select[Any]) -> list[dict[str, Any]]:
    rows = get_session().execute(query.order_by(col(Claim.id).desc()).limit(50)).all()
    return [{"claim": claim, "member": member, "unit_code": unit_code,
             "collectable": claim.state in COLLECTABLE} for claim, member, unit_code, _b in rows]


def _counter_page(found: list[dict[str, Any]] | None, errors: Errors, claim_no: str = "",
                  status: int = 200) -> tuple[str, int]:
    waiting = get_session().scalar(sa.select(sa.func.count()).select_from(Claim)
                                   .where(Claim.state == "funds_received")) or 0
    return render_template("console/counter.html", found=found, errors=errors,
                           claim_no=claim_no, waiting=waiting), status


@console.get("/counter")
@staff_only
def counter() -> Any:
    """Find the claim being collected by its number (the ID number form posts, see below)."""
    claim_no = request.args.get("claim_no", "").strip()[:40]
    if not claim_no:
        return _counter_page(None, {})
    return _counter_page(_found(visible_claims().where(Claim.claim_no == claim_no)), {},
                         claim_no)


@console.post("/counter")
@staff_only
def counter_by_id_number() -> Any:
    """Find by the collector's ID number: posted, never in a URL, never written back."""
    try:
        id_number = IdNumber(required=True).deserialize(request.form.get("id_number", ""))
    except ma.ValidationError as error:
        return _counter_page(None, schema_field_errors(ma.ValidationError(
            {"id_number": error.messages})), status=422)
    query = visible_claims().where(sa.or_(
        sa.and_(Member.id_number == id_number, sa.not_(col(Claim.death))),
        sa.and_(col(Claim.death), Claim.beneficiary_id_number == id_number)))
    return _counter_page(_found(query), {})


def _collect_page(claim_no: str, errors: Errors | None = None, typed: dict[str, Any] | None = None,
                  status: int = 200) -> tuple[str, int]:
    claim, member, unit_code, _batch = load_claim(claim_no)
    product = get_runtime().catalogue.get(claim.product_code)
    return render_template(
        "console/collect.html", claim=claim, member=member, unit_code=unit_code,
        product_name=product.name if product else claim.product_code,
        member_masked=mask(member.id_number), beneficiary_masked=mask(
            claim.beneficiary_id_number), errors=errors or {}, typed=typed or {},
        collectable=claim.state in COLLECTABLE), status


@console.get("/counter/<claim_no>")
@staff_only
def collect_form(claim_no: str) -> Any:
    """Check identity and pay the approved amount in full (如数兑付), against a receipt number."""
    return _collect_page(claim_no)


@console.post("/counter/<claim_no>")
@staff_only
def collect(claim_no: str) -> Any:
    """Fire `collect`; its refusals beside the fields, the receipt on success."""
    db = get_session()
    claim = load_claim(claim_no, for_update=True)[0]
    typed = {k: v for k, v in request.form.items() if k not in ("csrf_token", "id_number")}
    try:
        fields = read_event(request.form, COLLECT.name, COLLECT.required + COLLECT.optional)
        version = request.form.get("version", "")
        fire(db, get_runtime(), claim, COLLECT.name, g.actor, fields,
             expected_version=int(version) if version.isdigit() else None)
    except ma.ValidationError as error:
        db.rollback()
        return _collect_page(claim_no, schema_field_errors(error), typed, 422)
    except DomainError as error:
        db.rollback()
        return _collect_page(claim_no, domain_errors(error), typed, error.status)
    db.commit()
    flask.flash(_("已如数兑付，请打印收据交领款人签字。"))
    return redirect(url_for("console.receipt", claim_no=claim_no), 303)


@console.get("/claims/<claim_no>/receipt")
def receipt(claim_no: str) -> Any:
    """The printable receipt (收据) of a collected claim: the API's template, ID masked."""
    claim, member, unit_code, _batch = load_claim(claim_no)
    if claim.state != "collected":
        flask.abort(404)
    page = receipt_page(claim, member, unit_code,
                        back_url=url_for("console.claim_page", claim_no=claim_no))
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PRINT_CSP
    return response


# --- notices --------------------------------------------------------------------------------


@console.post("/jobs/dispatch_notifications")
@staff_only
def dispatch_now() -> Any:
    """Send the queued notices now (the job runs every minute anyway): money in -> notified."""
    get_session().commit()  # the job runs in its own transactions
    run = run_job(get_runtime(), "dispatch_notifications", trigger="manual")
    summary = run.summary or {}
    if run.outcome == "ok":
        counts = {k: summary.get(k, 0) for k in ("notified", "retrying", "failed")}
        flask.flash(ngettext("已发送 %(num)s 条通知，%(notified)s 件理赔已通知领取；"
                             "待重试 %(retrying)s 条，失败 %(failed)s 条。",
                             "已发送 %(num)s 条通知，%(notified)s 件理赔已通知领取；"
                             "待重试 %(retrying)s 条，失败 %(failed)s 条。",
                             summary.get("sent", 0), **counts))
    else:
        flask.flash(_("发送通知失败：%(message)s", message=summary.get("message", "")), "error")
    target = request.form.get("next", "")
    if not target.startswith("/console/") or target.startswith("//"):
        target = url_for("console.counter")
    return redirect(target, 303)

"""Console: logging a claim, with the estimate and the missing documents shown as the clerk
types (computed by the server exactly as logging will), from a member's page or by ID number."""

from __future__ import annotations

import re
from typing import Any

import flask
import marshmallow as ma
from flask import g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from claims.api.members import visible_members
from claims.models import Member
from claims.money import format_fen
from claims.rules import missing_documents
from claims.runtime import get_runtime, get_session
from claims.web.console import console
from claims.web.forms import CAUSES, Errors, domain_errors, read_claim, schema_errors
from workflows.errors import DomainError
from workflows.intake import draft_claim, log_claim

# workflows.intake's warning naming the claim already logged, as a pattern of its wording (its
# other warnings are fixed text, in SHARED_LABELS).
_DUPLICATE_WARNING = re.compile(
    r"同一职工、险种和出险日期已有理赔 (?P<claim_no>\S+)，本件不能核验通过。")


def _warning_shown(warning: str) -> str:
    """A warning of logging in the page's language; one not known here shows as written."""
    duplicate = _DUPLICATE_WARNING.fullmatch(warning)
    if duplicate:
        return _("同一职工、险种和出险日期已有理赔 %(claim_no)s，本件不能核验通过。",
                 claim_no=duplicate["claim_no"])
    return _(warning)


def _chosen_member(member_id: str | None) -> Any:
    """The member a claim is logged for from their page (?member_id=), if the user may see
    them: unit staff never see a full ID number, so they cannot type one."""
    if not member_id or not member_id.isdigit() or len(member_id) > 9:
        return None
    row = get_session().execute(visible_members().where(Member.id == int(member_id))).first()
    return row[0] if row else None


def _claim_form(form: MultiDict[str, str]) -> MultiDict[str, str]:
    """The posted claim form, the chosen member's ID number filled in (never sent to the page)."""
    member = _chosen_member(form.get("member_id"))
    if member is None:
        return form
    filled = form.copy()
    filled["id_number"] = member.id_number
    return filled


@console.post("/claims/estimate")
def estimate_claim() -> flask.Response:
    """The claim form as typed so far -> what logging it would record (JSON, nothing saved):
    the estimate, the documents still missing, warnings, and what is wrong or not yet given."""
    db, runtime = get_session(), get_runtime()
    answer: dict[str, Any] = {"estimate": None, "missing_documents": [], "warnings": [],
                              "errors": {}}
    try:
        draft = draft_claim(db, runtime.catalogue, g.actor,
                            read_claim(_claim_form(request.form)), runtime.today())
    except ma.ValidationError as error:
        answer["errors"] = schema_errors(error)
    except DomainError as error:
        answer["errors"] = domain_errors(error)
    else:
        names = runtime.catalogue.document_names
        answer |= {"estimate": format_fen(draft.claim.estimate),
                   "missing_documents": [_(names.get(c, c))
                                         for c in missing_documents(draft.claim.documents)],
                   "warnings": [_warning_shown(w) for w in draft.warnings]}
    db.rollback()  # a draft: nothing it touched is kept
    return flask.jsonify(answer)


@console.route("/claims/new", methods=["GET", "POST"])
def new_claim() -> Any:
    """The claim form: the product chosen first, so its documents are the boxes shown."""
    catalogue = get_runtime().catalogue
    code = request.values.get("product_code", "")
    product = catalogue.get(code) or next(iter(catalogue.products.values()))
    errors: Errors = {}
    # What was typed comes back after an error, the ID numbers too: the clerk's own entry, on
    # a page no cache keeps, rather than 18 digits to type again (with the typo out of sight).
    typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
    member = _chosen_member(request.values.get("member_id"))
    if request.method == "POST":
        db, runtime = get_session(), get_runtime()
        try:
            claim, _warnings = log_claim(db, catalogue, g.actor,
                                         read_claim(_claim_form(request.form)), runtime.today())
        except ma.ValidationError as error:
            errors = schema_errors(error)
        except DomainError as error:
            db.rollback()
            errors = domain_errors(error)
        else:
            claim_no = claim.claim_no
            db.commit()
            for warning in _warnings:
                flask.flash(_warning_shown(warning), "warning")
            flask.flash(_("已登记理赔 %(claim_no)s", claim_no=claim_no))
            return redirect(url_for("console.claim_page", claim_no=claim_no), 303)
    checked = request.form.getlist("documents") if request.method == "POST" else []
    page = render_template(
        "console/claim_form.html", product=product, products=catalogue.products.values(),
        member=member,
        causes={c: CAUSES.get(c, c) for c in product.causes}, errors=errors, typed=typed,
        checked=checked, has_grade=any(b.when == "disability" for b in product.benefits),
        documents=[(c, catalogue.document_names.get(c, c)) for c in product.document_codes])
    return page, 422 if errors else 200

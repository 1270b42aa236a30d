"""Console: one claim's page, its audit history (events, the notices sent, the documents
brought or asked for) and a form for each event the user may fire now."""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma
from flask import g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from claims.api.claims import claim_view, load_claim
from claims.auth import Actor
from claims.models import Claim, ClaimEvent, Remittance, RemittanceItem
from claims.rules import assessed_late
from claims.runtime import get_runtime, get_session
from claims.web.console import console
from claims.web.forms import (
    CAUSES,
    Errors,
    chinese,
    domain_errors,
    read_event,
    schema_errors,
)
from workflows.batch import lock_batches_for
from workflows.errors import DomainError
from workflows.facts import claim_facts
from workflows.lifecycle import BY_CLAIM, EVENTS_BY_NAME, LOG_EVENT, STATES, allowed_events
from workflows.reasons import reasons_of
from workflows.reports import UNCOLLECTED_STATES
from workflows.transitions import fire


def _event_forms(claim: Claim) -> list[dict[str, Any]]:
    """One form per event the user may fire now through the claim's door, in table order."""
    actor: Actor = g.actor
    names = get_runtime().catalogue.document_names
    reasons = reasons_of(get_runtime())
    forms = []
    for name in allowed_events(claim.state):
        spec = EVENTS_BY_NAME[name]
        if spec.door != BY_CLAIM or actor.role not in spec.roles:
            continue
        offered = [(c, names.get(c, c)) for c in _offered(claim, name)]
        if name == "attach_documents" and not offered:
            continue  # every document is in: nothing to attach
        forms.append({"name": name, "label": spec.label, "required": spec.required,
                      "fields": spec.required + spec.optional,
                      "reasons": [(r.code, r.label) for r in reasons.for_event(name)],
                      "documents": offered})
    return forms


def _offered(claim: Claim, event: str) -> list[str]:
    """The document boxes an event's form offers: the documents this claim needs (not every
    one its product knows), and to attach, only those not yet received."""
    needed = claim.documents
    if event == "attach_documents":
        needed = [doc for doc in needed if doc.get("status") != "received"]
    return [doc["code"] for doc in needed]


# The notices dispatch_notifications sends, by template, and to whom (the audit row of a notice
# that keeps the claim's state: `notification_sent`).
NOTICES = {"funds_received": _l("互助金到账领取通知"), "batch_overdue": _l("批次逾期未决提醒"),
           "funds_received_worker": _l("互助金到账领取通知"),
           "materials_requested": _l("补交材料通知"), "onsite_scheduled": _l("现场理赔通知"),
           "remind_uncollected": _l("互助金待领取提醒"), "chase_materials": _l("补交材料提醒")}
RECIPIENTS = {"unit": _l("单位工会"), "worker": _l("职工")}
# Events whose audit row names documents (payload "documents": codes).
DOCUMENT_EVENTS = frozenset({"attach_documents", "request_materials", "return"})
# What an audit row of one of the claim's notices says (workflows.notify).
NOTICE_EVENTS = {"notification_sent": _l("通知已发送"),
                 "notification_resent": _l("通知已重新排队发送")}


def _event_label(event: ClaimEvent) -> Any:
    """The clerk's name for an audit row: the lifecycle's, or the notice's."""
    if event.event == LOG_EVENT:
        return "登记"
    spec = EVENTS_BY_NAME.get(event.event)
    if spec is not None:
        return spec.label
    return NOTICE_EVENTS.get(event.event, event.event)


def _event_detail(event: ClaimEvent) -> str | None:
    """What an audit row was about, beyond its name: the documents brought or asked for, or
    to whom a notice went and which one (单位工会：补交材料提醒)."""
    codes = [code for code in (event.payload or {}).get("documents") or []
             if isinstance(code, str)] if event.event in DOCUMENT_EVENTS else []
    if codes:
        names = get_runtime().catalogue.document_names
        return _("材料：%(documents)s",
                 documents=_("、").join(_(names.get(code, code)) for code in codes))
    if event.event not in NOTICE_EVENTS:
        return None
    payload = event.payload or {}
    template = payload.get("template") or ""
    return _("%(recipient)s：%(notice)s",
             recipient=RECIPIENTS.get(payload.get("recipient") or "", _("收件人")),
             notice=NOTICES.get(template, template))


def _timeline(claim_id: int) -> list[dict[str, Any]]:
    events = get_session().exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim_id)
                                .order_by(ClaimEvent.id))  # type: ignore[arg-type]
    tz = get_runtime().settings.tz  # stamps are UTC; a clerk reads the county's clock
    return [{"label": _event_label(e), "detail": _event_detail(e),
             "event": e, "at": e.at.astimezone(tz), "to": STATES.get(e.to_state, e.to_state),
             "from": STATES.get(e.from_state or "", ""), "reason": e.payload.get("reason")}
            for e in events]


def _collection(claim: Any) -> dict[str, Any] | None:
    """Once the money is in: when it arrived, how long it has waited, where and when to collect
    it (what the unit union tells the worker, as the payout notice says)."""
    if claim.state not in UNCOLLECTED_STATES:
        return None
    received_on = get_session().exec(
        select(Remittance.received_on).join(RemittanceItem,
                                            RemittanceItem.remittance_id == Remittance.id)
        .where(RemittanceItem.claim_id == claim.id)
        .order_by(RemittanceItem.id.desc()).limit(1)).first()  # type: ignore[union-attr]
    runtime = get_runtime()
    return {"received_on": received_on,
            "days": (runtime.today() - received_on).days if received_on else None,
            "place": runtime.settings.collection_place,
            "hours": runtime.settings.collection_hours}


def _on_form(errors: Errors, fields: tuple[str, ...]) -> Errors:
    """`errors` as an event's form shows them: a rule about something the form has no box for
    (审核通过's missing documents, the on-site threshold) above the form, not lost."""
    shown: Errors = {}
    for field, messages in errors.items():
        shown.setdefault(field if field in fields else "_form", []).extend(messages)
    return shown


def _claim_page(claim_no: str, status: int = 200, *, failed: str | None = None,
                errors: Errors | None = None, typed: dict[str, Any] | None = None) -> Any:
    row = load_claim(claim_no)
    claim = row[0]
    assert claim.id is not None
    events = _event_forms(claim)
    form = next((ev for ev in events if ev["name"] == failed), None)
    if form is not None and errors:
        errors = _on_form(errors, form["fields"])
    product = get_runtime().catalogue.get(claim.product_code)
    page = render_template("console/claim.html", claim=claim_view(*row),
                           collection=_collection(claim),
                           events=events, timeline=_timeline(claim.id),
                           failed=failed, errors=errors or {}, typed=typed or {},
                           product=product, causes=CAUSES,
                           assessed_late=product is not None
                           and assessed_late(product, claim_facts(claim)))
    return page, status


@console.get("/claims/<claim_no>")
def claim_page(claim_no: str) -> Any:
    """The claim: its fields (ID masked), documents, audit timeline and the events allowed now."""
    return _claim_page(claim_no)


@console.post("/claims/<claim_no>/events/<event>")
def fire_event(claim_no: str, event: str) -> Any:
    """Fire one event from its form; the hidden version is the If-Match (a lost update is 412)."""
    db, runtime = get_session(), get_runtime()
    lock_batches_for(db, event)
    claim = load_claim(claim_no, for_update=True)[0]
    spec = EVENTS_BY_NAME.get(event)
    takes = spec.required + spec.optional if spec else ()
    typed = {k: v for k, v in request.form.items() if k not in ("csrf_token", "id_number")}
    try:
        fields = read_event(request.form, event, takes)
        if event == "withdraw" and not request.form.get("confirm"):  # the page's box only
            db.rollback()
            errors: Errors = {"confirm": [_("请勾选确认撤回")]}
            if not fields.get("reason"):
                errors["reason"] = [chinese("required", "")]
            return _claim_page(claim_no, 422, failed=event, typed=typed, errors=errors)
        version = request.form.get("version", "")
        fire(db, runtime, claim, event, g.actor, fields,
             expected_version=int(version) if version.isdigit() else None)
    except ma.ValidationError as error:
        db.rollback()
        return _claim_page(claim_no, 422, failed=event, errors=schema_errors(error), typed=typed)
    except DomainError as error:
        db.rollback()
        return _claim_page(claim_no, error.status, failed=event, errors=domain_errors(error),
                           typed=typed)
    db.commit()
    flask.flash(_("已办理：%(event)s", event=_(spec.label) if spec else event))
    return redirect(url_for("console.claim_page", claim_no=claim_no), 303)



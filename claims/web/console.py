"""The staff console at /console/: sign in, today's work, claims, the claim page, logging a claim.

Server-rendered pages over the same workflow functions as the API (log_claim, fire), with the
API's scoping (visible_claims) and its schemas, so a rule holds the same through either door.
The session cookie is HttpOnly and SameSite=Lax; every POST carries a Flask-WTF CSRF token.
"""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import marshmallow as ma
from flask import Blueprint, Flask, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlmodel import select
from werkzeug.datastructures import MultiDict

from claims.api.claims import (
    claim_list_conditions,
    claim_view,
    load_claim,
    tallied_total,
    visible_claim_ids,
    visible_claims,
)
from claims.api.members import visible_members
from claims.api.security import login_guard
from claims.api.status import client_address
from claims.auth import Actor, check_password
from claims.models import Claim, ClaimEvent, Member, User
from claims.money import format_fen
from claims.rules import missing_documents
from claims.runtime import get_runtime, get_session
from claims.web.forms import (
    CAUSES,
    FIELD_LABELS,
    Errors,
    domain_errors,
    read_claim,
    read_event,
    schema_errors,
)
from workflows.errors import DomainError
from workflows.intake import draft_claim, log_claim
from workflows.lifecycle import BY_CLAIM, EVENTS_BY_NAME, LOG_EVENT, STATES, allowed_events
from workflows.reasons import reasons_of
from workflows.reminders import overdue_batches, overdue_days
from workflows.tally import claims_by_state
from workflows.transitions import fire

console = Blueprint("console", __name__, url_prefix="/console")
csrf = CSRFProtect()
OPEN_OUTSIDE = frozenset({"console.login", "console.static"})
# What "needs doing today" means on the home page: a title and the states it counts.
TODAY_WORK: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("logged", _l("已登记，待审核"), ("logged",)),
    ("pending_materials", _l("待补材料"), ("pending_materials",)),
    ("ready", _l("待报送（本周批次）"), ("ready",)),
    ("money", _l("理赔金已到账，待领取"), ("funds_received", "notified", "onsite_scheduled")),
)


# Console areas beyond the claims, each a module adding its routes to `console` (one line
# here per area, so this module stays about claims).
CONSOLE_AREAS: tuple[str, ...] = (
    "claims.web.console_i18n",
    "claims.web.console_batches",
    "claims.web.console_money",
    "claims.web.console_units",
    "claims.web.console_reports",
    "claims.web.console_members",
    "claims.web.console_roster",
    "claims.web.console_visits",
)


def init_console(app: Flask) -> None:
    """Register the console; CSRF is checked on its forms only (API calls need no token)."""
    for area in CONSOLE_AREAS:
        importlib.import_module(area)
    from claims.web.console_i18n import init_i18n

    init_i18n(app)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # The API and the workers' status form use no cookie session: only the console checks.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.register_blueprint(console)


@console.before_request
def _signed_in() -> flask.Response | None:
    """Every console page but the sign-in needs a signed-in user; every POST a CSRF token."""
    if request.method == "POST":
        csrf.protect()
    user = get_session().get(User, session["user_id"]) if "user_id" in session else None
    if user is not None and user.active:
        g.actor = Actor(username=user.username, role=user.role, unit_id=user.unit_id,
                        user_id=user.id)
        return None
    session.pop("user_id", None)
    if request.endpoint in OPEN_OUTSIDE:
        return None
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))


@console.after_request
def _secure_headers(response: flask.Response) -> flask.Response:
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault(  # a page may narrow it further (the receipt's print button)
        "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
    response.headers["Cache-Control"] = "no-store"  # claim pages hold personal data
    return response


@console.errorhandler(CSRFError)
def _no_csrf(error: CSRFError) -> tuple[str, int]:
    return render_template("console/error.html", title=_("请求已失效"),
                           message=_("页面已过期或来源不明，请返回刷新后重试。")), 400


@console.errorhandler(500)
def _server_error(_error: Exception) -> tuple[str, int]:
    # The exception is in the log under the request id; the clerk gets a page, not JSON.
    return render_template("console/error.html", title=_("系统出错"),
                           message=_("系统出错，这一步没有办完。请刷新页面看一看当前状态再重试；"
                                     "如仍出错，请把编号 %(request_id)s 告诉系统管理员。",
                                     request_id=g.get("request_id", "-"))), 500


@console.errorhandler(404)
def _not_found(_error: Exception) -> tuple[str, int]:
    # Worded for whatever was asked for (a claim, a batch, a unit, a member): a page of
    # another unit answers the same as one that does not exist.
    return render_template("console/error.html", title=_("未找到"),
                           message=_("没有找到这一页，或您无权查看。")), 404


@console.app_template_filter("yuan")
def _yuan(fen: int | None) -> str:
    return format_fen(fen) or ""


@console.context_processor
def _shared() -> dict[str, Any]:
    products = {code: p.name for code, p in get_runtime().catalogue.products.items()}
    return {"actor": g.get("actor"), "states": STATES, "labels": FIELD_LABELS,
            "product_names": products}


# --- sign in and out ------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a console path: never a redirect to another site."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return url_for("console.home")


@console.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form; the same users and passwords as the API."""
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()[:100]
    guard, address = login_guard(), client_address()  # the same counts as the API's sign-in
    lockout = guard.locked(username, address)
    if lockout is not None:
        minutes = -(-lockout.retry_after // 60)
        page = render_template("console/login.html", next=request.form.get("next", ""),
                               username=username,
                               error=_("密码错误次数过多，请 %(minutes)s 分钟后再试",
                                       minutes=minutes))
        return page, 429, {"Retry-After": str(lockout.retry_after)}
    user = get_session().exec(select(User).where(User.username == username)).first()
    if not check_password(user, request.form.get("password", "")):
        guard.failed(username, address)
        return render_template("console/login.html", next=request.form.get("next", ""),
                               username=username, error=_("用户名或密码不正确")), 401
    assert user is not None
    guard.succeeded(username)
    lang = session.get("lang")
    session.clear()  # a fresh session for the new identity, in the language chosen before
    session["user_id"] = user.id
    if lang:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))


@console.post("/logout")
def logout() -> Any:
    """Sign out."""
    session.clear()
    return redirect(url_for("console.login"))


# --- today's work and the list --------------------------------------------------------------


@console.get("/")
def home() -> str:
    """What needs doing today: counts by state, each a link to the list."""
    actor: Actor = g.actor
    by_state = claims_by_state(get_session(), unit_id=actor.unit_id if actor.is_unit_staff
                               else None)  # the claim tally: no count over every claim
    work = [{"key": key, "title": title, "count": sum(by_state.get(s, 0) for s in states),
             "links": [(s, STATES[s], by_state.get(s, 0)) for s in states]}
            for key, title, states in TODAY_WORK]
    overdue: list[Any] = []
    if not g.actor.is_unit_staff:  # batches are the county's business
        days = overdue_days()
        rows = get_session().execute(overdue_batches(
            datetime.now(UTC) - timedelta(days=days))).all()
        tz = get_runtime().settings.tz
        overdue = [{"batch_no": batch.batch_no, "undecided": int(n),
                    "delivered_on": batch.delivered_at.astimezone(tz).date()}
                   for batch, n in rows]
    return render_template("console/home.html", work=work, overdue=overdue,
                           overdue_after=overdue_days())


@console.get("/claims")
def claims() -> str:
    """Claims, newest first, by state, unit code, product and claim number, a page at a time."""
    state = request.args.get("state", "")
    unit_code = request.args.get("unit_code", "").strip()[:40]
    product = request.args.get("product_code", "")
    number = request.args.get("q", "").strip()[:40]
    filters = ({"state": state} if state in STATES else {}) | (
        {"unit_code": unit_code} if unit_code else {}) | (
        {"product_code": product} if get_runtime().catalogue.get(product) else {})
    conditions = claim_list_conditions(filters)
    if number:
        conditions.append(Claim.claim_no.contains(number, autoescape=True))  # type: ignore
    newest_first = Claim.id.desc()  # type: ignore[union-attr]
    query = visible_claims().where(*conditions).order_by(newest_first)
    from claims.web.console_kit import paged  # console_kit builds on this module

    total = None  # a part of a claim number: paged() counts the matching claims' ids
    if not number:  # by state, unit and product only: the claim tally, as the API's list
        total = tallied_total(get_session(), filters,
                              g.actor.unit_id if g.actor.is_unit_staff else None)
    listed = paged(query, {"state": state, "unit_code": unit_code,
                           "product_code": filters.get("product_code", ""), "q": number},
                   total=total,
                   keyed=(Claim.id, visible_claim_ids(conditions).order_by(newest_first)))
    return render_template("console/claims.html", rows=[claim_view(*r) for r in listed.rows],
                           filters=listed.filters, page=listed)


# --- one claim ------------------------------------------------------------------------------


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
        forms.append({"name": name, "label": spec.label, "required": spec.required,
                      "fields": spec.required + spec.optional,
                      "reasons": [(r.code, r.label) for r in reasons.for_event(name)],
                      "documents": [(c, names.get(c, c)) for c in _offered(claim, name)]})
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
NOTICES = {"funds_received": _l("互助金到账领取通知"),
           "funds_received_worker": _l("互助金到账领取通知"),
           "materials_requested": _l("补交材料通知"), "onsite_scheduled": _l("现场理赔通知"),
           "remind_uncollected": _l("互助金待领取提醒"), "chase_materials": _l("补交材料提醒")}
RECIPIENTS = {"unit": _l("单位工会"), "worker": _l("职工")}
# Events whose audit row names documents (payload "documents": codes).
DOCUMENT_EVENTS = frozenset({"attach_documents", "request_materials"})
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
    page = render_template("console/claim.html", claim=claim_view(*row),
                           events=events, timeline=_timeline(claim.id),
                           failed=failed, errors=errors or {}, typed=typed or {},
                           product=get_runtime().catalogue.get(claim.product_code),
                           causes=CAUSES)
    return page, status


@console.get("/claims/<claim_no>")
def claim_page(claim_no: str) -> Any:
    """The claim: its fields (ID masked), documents, audit timeline and the events allowed now."""
    return _claim_page(claim_no)


@console.post("/claims/<claim_no>/events/<event>")
def fire_event(claim_no: str, event: str) -> Any:
    """Fire one event from its form; the hidden version is the If-Match (a lost update is 412)."""
    db, runtime = get_session(), get_runtime()
    claim = load_claim(claim_no, for_update=True)[0]
    spec = EVENTS_BY_NAME.get(event)
    takes = spec.required + spec.optional if spec else ()
    typed = {k: v for k, v in request.form.items() if k not in ("csrf_token", "id_number")}
    try:
        fields = read_event(request.form, event, takes)
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


# --- logging a claim ------------------------------------------------------------------------


# workflows.intake's warning naming the claim already logged, as a pattern of its wording (its
# other warning is fixed text, in SHARED_LABELS).
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

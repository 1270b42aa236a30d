"""The staff console at /console/: sign in, today's work and the claims list; the claim page,
logging a claim and the other areas each in a module of their own (CONSOLE_AREAS).

Server-rendered pages over the same workflow functions as the API (log_claim, fire), with the
API's scoping (visible_claims) and its schemas, so a rule holds the same through either door.
The session cookie is HttpOnly and SameSite=Lax; every POST carries a Flask-WTF CSRF token.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import sqlalchemy as sa
from flask import Blueprint, Flask, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlmodel import select
from werkzeug.exceptions import HTTPException

from claims.api.claims import (
    claim_list_conditions,
    claim_view,
    tallied_total,
    visible_claim_ids,
    visible_claims,
)
from claims.api.security import login_guard
from claims.api.status import client_address
from claims.auth import (
    Actor,
    actor_for_digest,
    check_password,
    issue_token,
    revoke_digest,
    token_digest,
)
from claims.models import Claim, Member, Notification, User
from claims.money import format_fen
from claims.runtime import get_reads, get_runtime, get_session
from claims.schemas.fields import normal_name
from claims.web.forms import FIELD_LABELS
from workflows.lifecycle import STATES
from workflows.reminders import overdue_batches, overdue_days
from workflows.tally import claims_by_state

console = Blueprint("console", __name__, url_prefix="/console")
csrf = CSRFProtect()
OPEN_OUTSIDE = frozenset({"console.login", "console.static"})
SIGN_IN = "sign_in"  # the session key holding the sign-in token's digest
# What "needs doing today" means on the home page: a title and the states it counts.
TODAY_WORK: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("logged", _l("已登记，待核验"), ("logged",)),
    ("pending_materials", _l("待补材料"), ("pending_materials",)),
    ("ready", _l("待报送（本周批次）"), ("ready",)),
    ("money", _l("互助金已到账，待领取"), ("funds_received", "notified", "onsite_scheduled")),
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
    "claims.web.console_notices",
    "claims.web.console_claim",
    "claims.web.console_intake",
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
    # A sign-in is a token like the API's (claims.auth): it expires, and signing out, a new
    # password or a disabled user ends it on the server, not only in this browser's cookie.
    # The session keeps the token's digest, not the token: the cookie is signed, not secret.
    sign_in = session.get(SIGN_IN)
    actor = actor_for_digest(get_reads(), sign_in) if isinstance(sign_in, str) else None
    if actor is not None:
        g.actor = actor
        return None
    session.pop(SIGN_IN, None)
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


@console.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    """Any other refusal of a console page (405, 413, a bad request): the console's page, never
    the API's JSON. 404, 403, 400 (CSRF) and 500 have their own words above."""
    status = error.code or 500
    if status == 404:
        return _not_found(error)
    if status == 405:  # a form's address opened as a link (a bookmark, the language switch)
        return render_template("console/error.html", title=_("不能这样打开此页"),
                               message=_("这个地址只接受工作台表单的提交，不能直接打开。"
                                         "请返回工作台，从页面上的按钮重新办理。")), 405
    if status == 413:
        return render_template("console/error.html", title=_("文件过大"),
                               message=_("上传的内容过大，未能办理。请换一个较小的文件重试。")), 413
    return render_template("console/error.html", title=_("未能办理"),
                           message=_("请求未能办理（错误 %(status)s）。请返回工作台刷新后重试。",
                                     status=status)), status


@console.before_app_request
def _console_address_unknown() -> tuple[str, int] | None:
    """An address under /console/ that no page answers, or not with this method (a POST-only
    form's address opened as a link): routing failed, so no console handler is asked and the
    API's JSON would answer. Caught here, before Flask raises it, as a console page."""
    error = request.routing_exception
    if (isinstance(error, HTTPException) and (error.code or 0) >= 400
            and request.path.startswith("/console/")):
        sign_in = session.get(SIGN_IN)  # the header's menu for a signed-in user
        actor = actor_for_digest(get_reads(), sign_in) if isinstance(sign_in, str) else None
        if actor is not None:
            g.actor = actor
        g.console_address_unknown = True
        return _http_error(error)
    return None


@console.app_context_processor
def _outside_the_routes() -> dict[str, Any]:
    """The console's page context (menu, language switch) for that error page: the console's
    own context processors run for its routes only, and there was none."""
    if not g.get("console_address_unknown"):
        return {}
    from claims.web.console_i18n import page_languages  # console_i18n builds on this module

    return {**_shared(), **page_languages()}


@console.app_template_filter("yuan")
def _yuan(fen: int | None) -> str:
    """An amount as pages show it: 308,237.67 (display only: a form box takes `yuan_typed`)."""
    return format_fen(fen, grouped=True) or ""


@console.app_template_filter("yuan_typed")
def _yuan_typed(fen: int | None) -> str:
    """An amount as a form box holds it, as the API reads it: 308237.67."""
    return format_fen(fen) or ""


@console.context_processor
def _shared() -> dict[str, Any]:
    products = {code: p.name for code, p in get_runtime().catalogue.products.items()}
    return {"actor": g.get("actor"), "states": STATES, "labels": FIELD_LABELS,
            "product_names": products}


# --- sign in and out ------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a console path: never a redirect to another site, nor a header broken by a
    control character (a CR/LF in `next` made the redirect a 500)."""
    if (target and target.startswith("/console/") and "\\" not in target
            and not any(ord(c) < 32 or ord(c) == 127 for c in target)):
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
                               error=ngettext("密码错误次数过多，请 %(num)s 分钟后再试",
                                              "密码错误次数过多，请 %(num)s 分钟后再试", minutes))
        return page, 429, {"Retry-After": str(lockout.retry_after)}
    user = get_session().exec(select(User).where(User.username == username)).first()
    if not check_password(user, request.form.get("password", "")):
        guard.failed(username, address)
        return render_template("console/login.html", next=request.form.get("next", ""),
                               username=username, error=_("用户名或密码不正确")), 401
    assert user is not None
    guard.succeeded(username)
    lang = session.get("lang")
    db = get_session()
    earlier = session.get(SIGN_IN)
    if isinstance(earlier, str):  # signing in over another sign-in ends that one
        revoke_digest(db, earlier)
    token, _ttl = issue_token(db, user, get_runtime().settings.console_session_hours * 3600)
    db.commit()
    session.clear()  # a fresh session for the new identity, in the language chosen before
    session[SIGN_IN] = token_digest(token)
    if lang:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))


@console.post("/logout")
def logout() -> Any:
    """Sign out: the sign-in ends on the server too, so a copy of the cookie is worthless."""
    sign_in = session.get(SIGN_IN)
    if isinstance(sign_in, str):
        db = get_session()
        revoke_digest(db, sign_in)
        db.commit()
    lang = session.get("lang")
    session.clear()
    if lang:  # the language is the desk's, not the user's: the sign-in page keeps it
        session["lang"] = lang
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
    # Notices that failed for good wait for a clerk (console_notices): the county's business.
    failed = 0 if g.actor.is_unit_staff else int(get_session().scalar(
        sa.select(sa.func.count()).where(Notification.state == "failed")) or 0)
    return render_template("console/home.html", work=work, overdue=overdue,
                           overdue_after=overdue_days(), failed_notices=failed)


@console.get("/claims")
def claims() -> str:
    """Claims, newest first, by state, unit code, product and claim number, a page at a time."""
    state = request.args.get("state", "")
    unit_code = request.args.get("unit_code", "").strip().upper()[:40]  # codes are upper-case
    product = request.args.get("product_code", "")
    number = request.args.get("q", "").strip()[:40]
    name = normal_name(request.args.get("name", ""))[:100]  # 张　三 finds 张三
    filters = ({"state": state} if state in STATES else {}) | (
        {"unit_code": unit_code} if unit_code else {}) | (
        {"product_code": product} if get_runtime().catalogue.get(product) else {})
    conditions = claim_list_conditions(filters)
    if number:
        conditions.append(Claim.claim_no.contains(number, autoescape=True))  # type: ignore
    if name:  # a condition on the claim table, as visible_claim_ids needs
        conditions.append(Claim.member_id.in_(  # type: ignore[attr-defined]
            sa.select(Member.id).where(Member.name.contains(name, autoescape=True))))
    newest_first = Claim.id.desc()  # type: ignore[union-attr]
    query = visible_claims().where(*conditions).order_by(newest_first)
    from claims.web.console_kit import paged  # console_kit builds on this module

    total = None  # a part of a claim number or name: paged() counts the matching claims' ids
    if not (number or name):  # by state, unit and product only: the claim tally, as the API's
        total = tallied_total(get_session(), filters,
                              g.actor.unit_id if g.actor.is_unit_staff else None)
    listed = paged(query, {"state": state, "unit_code": unit_code,
                           "product_code": filters.get("product_code", ""), "q": number,
                           "name": name},
                   total=total,
                   keyed=(Claim.id, visible_claim_ids(conditions).order_by(newest_first)))
    return render_template("console/claims.html", rows=[claim_view(*r) for r in listed.rows],
                           filters=listed.filters, page=listed)

"""The worker's pages: the landing page at / and the status check at /status (理赔进度查询).

Plain HTML forms that work without JavaScript: POST /status answers server-side with the same
lookup as POST /api/v1/status, and its wrong guesses count against the same limits.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import flask
import marshmallow as ma
from flask import Blueprint, jsonify, render_template, request

from claims.api.status import TooManyGuesses, too_many_guesses
from claims.runtime import get_reads, get_runtime, get_session
from claims.schemas.status import BY_CLAIM_NO, BY_ID_NUMBER, StatusQuerySchema
from workflows.status import look_up_claims, look_up_history, spoken_date

pages = Blueprint("status_pages", __name__)

SHAPES = {"claim": BY_CLAIM_NO, "id": BY_ID_NUMBER}
# A wrong guess names both fields of the shape asked: the typo may be in either.
NO_MATCH = {
    "claim": "未找到匹配的理赔，请核对理赔编号和身份证号后六位",
    "id": "未找到匹配的理赔，请核对身份证号和姓名",
}
# The limits count per network address and per claim or ID number (SPEC §5): whoever sees this
# may not have guessed wrong at all, so it blames no one and says when to try again.
TOO_MANY = ("暂时不能查询，请 {seconds} 秒后再试。为保护个人信息，输错次数较多时查询会暂停一会儿，"
            "同一网络中其他人的查询也计算在内。")
_EMPTY = {
    "claim_no": "请填写理赔编号",
    "id_last6": "请填写身份证号码的最后六位",
    "id_number": "请填写身份证号码",
    "name": "请填写姓名",
}
_INVALID = {
    "claim_no": "理赔编号的格式应类似 LP2026-000123，请核对",
    "id_last6": "请填写身份证号码的最后六位：数字，最后一位可能是 X",
    "id_number": "身份证号码不正确，请核对 18 位号码",
    "name": "姓名不正确，请核对",
}
# How the state badge looks: what the worker should feel about it at a glance.
TONES = {
    "pending_materials": "action",
    "funds_received": "money",
    "notified": "money",
    "onsite_scheduled": "money",
    "collected": "done",
    "rejected": "stopped",
    "withdrawn": "stopped",
}


def _render(by: str, status: int = 200, *, values: dict[str, str] | None = None,
            errors: dict[str, str] | None = None, summary: str | None = None,
            claims: list[dict[str, Any]] | None = None,
            history: dict[str, Any] | None = None) -> flask.Response:
    """The page; `errors` are told under their fields, `summary` once above the form."""
    # A full ID number is never written into a page, not even the one just typed.
    shown = {name: value for name, value in (values or {}).items() if name != "id_number"}
    page = render_template("status.html", by=by, values=shown, errors=errors or {},
                           summary=summary, claims=claims, tones=TONES, history=history)
    response = flask.make_response(page, status)
    if request.method == "POST":
        response.headers["Cache-Control"] = "no-store"  # personal data: never kept by caches
    return response


def _shape_asked() -> str:
    by = request.values.get("by", "claim")
    return by if by in SHAPES else "claim"


def page_guess() -> dict[str, str]:
    """The form's fields of the shape asked (`by`), each cut to what the page keeps: the query
    the page validates, and the one the wrong-guess limits count."""
    return {name: request.form.get(name, "")[:100] for name in SHAPES[_shape_asked()]}


def _problems(values: dict[str, str]) -> tuple[dict[str, str] | None, dict[str, str]]:
    """The validated query, or None and a message in Chinese beside each field at fault."""
    errors = {name: _EMPTY[name] for name, value in values.items() if not value.strip()}
    if errors:
        return None, errors
    try:
        return StatusQuerySchema().load(values), {}
    except ma.ValidationError as error:
        fields = error.messages if isinstance(error.messages, dict) else {}
        return None, {name: _INVALID.get(name, "请核对此项") for name in fields}


@pages.app_template_filter("spoken_date")
def _spoken_date(day: date, weekday: bool = False) -> str:
    return spoken_date(day, weekday=weekday)


@pages.after_request
def _locked_down(response: flask.Response) -> flask.Response:
    # Everything the pages use comes from this server: no CDN, no inline script, no framing.
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@pages.get("/")
def landing() -> flask.Response:
    """The landing page: the workers' status check and the staff console."""
    if request.accept_mimetypes.best == "application/json":
        settings = get_runtime().settings
        return jsonify(service="mutualaid", api="/api/v1", docs="/api/v1/docs",
                       status="/status", timezone=settings.timezone)
    return flask.make_response(render_template("status_landing.html"))


@pages.get("/status")
def status_form() -> flask.Response:
    """The empty form, on the tab `?by=claim` (default) or `?by=id`."""
    return _render(_shape_asked())


@pages.post("/status")
def status_answer() -> flask.Response:
    """The answer to a filled form, or the form again with what to check."""
    by, values = _shape_asked(), page_guess()
    query, errors = _problems(values)
    if query is None:
        return _render(by, 422, values=values, errors=errors)
    claims = look_up_claims(get_reads(), get_runtime(), query)
    if not claims:  # a wrong guess: 404 counts against the limits, as in the API
        return _render(by, 404, values=values, summary=NO_MATCH[by])
    history = look_up_history(get_session, get_runtime(), query)  # by ID number and name
    return _render(by, values=values, claims=claims, history=history)


@pages.errorhandler(TooManyGuesses)
def _too_many_guesses(error: TooManyGuesses) -> flask.Response:
    by = _shape_asked()
    return too_many_guesses(error, _render(
        by, 429, values=page_guess(), summary=TOO_MANY.format(seconds=error.retry_after)))

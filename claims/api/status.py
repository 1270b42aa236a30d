"""The public status check (SPEC §5): POST /api/v1/status, no token; wrong guesses are limited."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import flask
from flask import current_app, request
from flask.views import MethodView
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import abort

from claims.api.base import Blueprint, error_response
from claims.runtime import get_reads, get_runtime, get_session
from claims.schemas.status import StatusAnswerSchema, StatusQuerySchema, normal_claim_no
from config.settings import Settings
from workflows.status import look_up_claims, look_up_history

blp = Blueprint("status", __name__, url_prefix="/api/v1/status",
                description="Public status check for workers: no token, wrong guesses limited")

# One body for every wrong guess, so an answer never tells whether a claim number exists.
NO_MATCH = "No claim matches these details; check them and try again."
# SPEC §5: 10 wrong guesses a minute per client address and per claim number.
WRONG_GUESSES = "10/minute"
_LIMITER = "mutualaid.status_limiter"


def client_address() -> str:
    """The client's address: the peer, or what MUTUALAID_TRUSTED_PROXIES lets ProxyFix take."""
    return request.remote_addr or "unknown"


def guessed_claim_no() -> str:
    """The claim number a guess names (JSON body or form), as the lookup normalises it."""
    body: Any = request.get_json(silent=True) if request.is_json else request.form
    value = body.get("claim_no") if isinstance(body, Mapping) else None
    return normal_claim_no(value)[:40]  # bounded: a key in the shared limit store


def is_wrong_guess(response: flask.Response) -> bool:
    """Only wrong guesses count against the limits; a right one, or a typo (422), does not."""
    return response.status_code == 404


def limit_wrong_guesses(app: flask.Flask, *blueprints: flask.Blueprint) -> Limiter:
    """This app's limiter for POSTs to `blueprints`: one count per address, one per claim number."""
    # One limiter per app, never a module global: each test app counts from zero. The counts
    # live in MUTUALAID_RATELIMIT_STORAGE_URI, so app hosts sharing e.g. redis:// share them,
    # and the scopes are shared by the blueprints: a guess on the page and one through the API
    # are two guesses from the same address. With the store down, each process counts alone.
    settings: Settings = app.extensions["mutualaid"].settings
    limiter = Limiter(client_address, storage_uri=settings.ratelimit_storage_uri,
                      strategy="moving-window",
                      key_prefix=f"{settings.ratelimit_key_prefix}-status",
                      headers_enabled=False, in_memory_fallback_enabled=True)
    limiter.init_app(app)
    limited = {blueprint.name for blueprint in blueprints}

    @limiter.request_filter
    def _not_a_status_check() -> bool:
        # Flask-Limiter checks every request of the app: the rest skip its lookup of which
        # limits apply (a twentieth of /healthz, a thirtieth of logging a claim).
        return request.blueprint not in limited

    for blueprint in blueprints:
        limiter.shared_limit(WRONG_GUESSES, scope="wrong-guesses-per-address",
                             methods=["POST"], deduct_when=is_wrong_guess)(blueprint)
        limiter.shared_limit(WRONG_GUESSES, scope="wrong-guesses-per-claim",
                             key_func=guessed_claim_no,
                             exempt_when=lambda: not guessed_claim_no(),
                             methods=["POST"], deduct_when=is_wrong_guess)(blueprint)
    app.extensions[_LIMITER] = limiter
    return limiter


def retry_after_seconds() -> int:
    """Seconds until the breached limit lets one more guess through (at least 1)."""
    limiter: Limiter | None = current_app.extensions.get(_LIMITER)
    breached = limiter.current_limit if limiter is not None else None
    if breached is None:
        return 60
    return max(1, math.ceil(breached.window.reset_time - time.time()))


@blp.errorhandler(RateLimitExceeded)
def _too_many_guesses(_error: RateLimitExceeded) -> flask.Response:
    seconds = retry_after_seconds()
    response = error_response(429, f"Too many wrong guesses; try again in {seconds} seconds.",
                              retry_after=seconds)
    response.headers["Retry-After"] = str(seconds)
    return response


@blp.route("")
class StatusView(MethodView):
    @blp.doc(security=[])
    @blp.arguments(StatusQuerySchema)
    @blp.response(200, StatusAnswerSchema)
    @blp.alt_response(404, description="No claim matches: one body for every wrong guess")
    @blp.alt_response(429, description="Too many wrong guesses; see Retry-After")
    def post(self, query: dict[str, str]) -> Any:
        """A worker's claims in plain Chinese: by claim_no + id_last6, or id_number + name."""
        claims = look_up_claims(get_reads(), get_runtime(), query)
        if not claims:
            abort(404, message=NO_MATCH)
        history = look_up_history(get_session(), get_runtime(), query)
        return {"claims": claims, "history": history}, {"Cache-Control": "no-store"}

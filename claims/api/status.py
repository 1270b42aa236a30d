"""The public status check (SPEC §5): POST /api/v1/status, no token; wrong guesses are limited."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import flask
from flask import request
from flask.views import MethodView
from flask_smorest import abort
from limits import parse

from claims.api.base import Blueprint, error_response
from claims.api.security import WindowCounts
from claims.idcard import normalise_id_number
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
_GUARD = "mutualaid.status_guard"


def client_address() -> str:
    """The client's address: the peer, or what MUTUALAID_TRUSTED_PROXIES lets ProxyFix take."""
    return request.remote_addr or "unknown"


def _guessed(field: str) -> Any:
    body: Any = request.get_json(silent=True) if request.is_json else request.form
    return body.get(field) if isinstance(body, Mapping) else None


def guessed_claim_no() -> str:
    """The claim number a guess names (JSON body or form), as the lookup normalises it."""
    return normal_claim_no(_guessed("claim_no"))[:40]  # bounded: a key in the shared limit store


def guessed_id_number_key() -> str:
    """The ID number a guess by ID number and name names, as a keyed digest ("" for none):
    the limit store never holds an ID number, and a digest without the key cannot be
    matched against the few billion numbers there are."""
    value = _guessed("id_number")
    number = normalise_id_number(value) if isinstance(value, str) else ""
    if len(number) != 18:
        return ""
    key = flask.current_app.secret_key
    secret = key.encode() if isinstance(key, str) else bytes(key or b"")
    return hmac.new(secret, number.encode(), hashlib.sha256).hexdigest()[:32]


class TooManyGuesses(Exception):
    """The status check refused before looking: too many wrong guesses (SPEC §5)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class GuessGuard(WindowCounts):
    """Wrong guesses at the status check (a 404), counted per client address and per claim
    number (or ID number) named: past WRONG_GUESSES in a minute either one refuses with 429.
    Right guesses and malformed ones (422) never count. The page and the API share the counts."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "status")
        self.item = parse(WRONG_GUESSES)

    def _keys(self) -> list[tuple[str, str]]:
        keys = [("wrong-guesses-per-address", client_address())]
        claim_no = guessed_claim_no()
        if claim_no:
            keys.append(("wrong-guesses-per-claim", claim_no))
        elif id_number := guessed_id_number_key():
            # Beyond SPEC §5's two limits: names are few, and guessing one name after another
            # for one ID number from many addresses would otherwise never be refused.
            keys.append(("wrong-guesses-per-id-number", id_number))
        return keys

    def check(self) -> None:
        """Before a status check: TooManyGuesses while a limit is reached."""
        if request.method != "POST":
            return
        for scope, key in self._keys():
            seconds = self.wait_seconds(self.item, scope, key)
            if seconds is not None:
                raise TooManyGuesses(seconds)

    def count_wrong_guess(self, response: flask.Response) -> flask.Response:
        """After a status check: a 404 counts against both limits."""
        if request.method == "POST" and response.status_code == 404:
            for scope, key in self._keys():
                self.count(self.item, scope, key)
        return response


def limit_wrong_guesses(app: flask.Flask, *blueprints: flask.Blueprint) -> GuessGuard:
    """This app's guard on POSTs to `blueprints` (the API's and the page's status check)."""
    # The counts live in MUTUALAID_RATELIMIT_STORAGE_URI, so app hosts sharing e.g. redis://
    # share them. A guard on the `limits` library, as the sign-in throttling is: Flask-Limiter
    # checked every request of the app and cost the status check a seventh of its work.
    guard = GuessGuard(app.extensions["mutualaid"].settings)
    names = {blueprint.name for blueprint in blueprints}

    @app.before_request
    def _check_guesses() -> None:
        if request.blueprint in names:
            guard.check()

    @app.after_request
    def _count_wrong_guess(response: flask.Response) -> flask.Response:
        return guard.count_wrong_guess(response) if request.blueprint in names else response

    app.extensions[_GUARD] = guard
    return guard


def too_many_guesses(error: TooManyGuesses, response: flask.Response) -> flask.Response:
    """A 429 answer (JSON or page) with its Retry-After header."""
    response.status_code = 429
    response.headers["Retry-After"] = str(error.retry_after)
    return response


@blp.errorhandler(TooManyGuesses)
def _too_many_guesses(error: TooManyGuesses) -> flask.Response:
    seconds = error.retry_after
    return too_many_guesses(error, error_response(
        429, f"Too many wrong guesses; try again in {seconds} seconds.", retry_after=seconds))


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
        history = look_up_history(get_session, get_runtime(), query)
        return {"claims": claims, "history": history}, {"Cache-Control": "no-store"}

"""The public status check (SPEC §5): POST /api/v1/status, no token; wrong guesses are limited."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping
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
    """The client's address: the peer, or what MUTUALAID_TRUSTED_PROXIES lets ProxyFix take.
    An IPv6 client counts by its /64: one host holds a whole /64 and could step through it."""
    address = request.remote_addr or "unknown"
    if ":" in address:
        try:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        except ValueError:
            return address
    return address


# What a door reads from a request as its status query, before validating it: the API's JSON
# body (or form), the page's form fields (shape chosen, each cut to the page's length). The
# limits key on exactly that, so a value padded past what the page keeps counts as the value.
GuessReader = Callable[[], Mapping[str, Any]]


def api_guess() -> Mapping[str, Any]:
    """The status query the API reads: its JSON body, or a form."""
    body: Any = request.get_json(silent=True) if request.is_json else request.form
    return body if isinstance(body, Mapping) else {}


def claim_no_key(value: Any) -> str:
    """The claim number a guess names, as the lookup normalises it; "" for none."""
    return normal_claim_no(value)[:40]  # bounded: a key in the shared limit store


def id_number_key(value: Any) -> str:
    """The ID number a guess names, as a keyed digest ("" for none): the limit store never
    holds an ID number, and a digest without the key cannot be matched against the few
    billion numbers there are."""
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

    def __init__(self, settings: Settings, readers: Mapping[str, GuessReader]) -> None:
        super().__init__(settings, "status")
        self.item = parse(WRONG_GUESSES)
        self.readers = readers

    def _keys(self) -> list[tuple[str, str]]:
        guess = self.readers[request.blueprint or ""]()
        keys = [("wrong-guesses-per-address", client_address())]
        # Every one named counts: a decoy claim number beside an ID number must not spare it.
        if claim_no := claim_no_key(guess.get("claim_no")):
            keys.append(("wrong-guesses-per-claim", claim_no))
        if id_number := id_number_key(guess.get("id_number")):
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


def limit_wrong_guesses(app: flask.Flask, readers: Mapping[str, GuessReader]) -> GuessGuard:
    """This app's guard on POSTs to the blueprints named in `readers`, each with how it reads
    its query (the API's and the page's status check)."""
    # The counts live in MUTUALAID_RATELIMIT_STORAGE_URI, so app hosts sharing e.g. redis://
    # share them. A guard on the `limits` library, as the sign-in throttling is: Flask-Limiter
    # checked every request of the app and cost the status check a seventh of its work.
    guard = GuessGuard(app.extensions["mutualaid"].settings, readers)

    @app.before_request
    def _check_guesses() -> None:
        if request.blueprint in readers:
            guard.check()

    @app.after_request
    def _count_wrong_guess(response: flask.Response) -> flask.Response:
        return guard.count_wrong_guess(response) if request.blueprint in readers else response

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

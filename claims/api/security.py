"""Bearer-token authentication, role checks, secure headers and sign-in lockout."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

import flask
from flask import g, request
from flask_smorest import abort
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from claims.auth import Actor, actor_for_token
from claims.ratelimit_store import file_uri
from claims.runtime import get_reads
from config.settings import Settings
from workflows.errors import FieldError, TooManyRequests

F = TypeVar("F", bound=Callable[..., Any])
# Paths under /api/v1 that need no token (SPEC §7), and the methods that are open on them.
PUBLIC_PATHS = ("/api/v1/auth/token", "/api/v1/status", "/api/v1/openapi.json", "/api/v1/docs")
_PUBLIC_METHODS: dict[str, frozenset[str]] = {
    "/api/v1/auth/token": frozenset({"POST"}),  # DELETE revokes the caller's own token
}
_PROBES = "mutualaid.register_probes"
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


def is_public(path: str, method: str) -> bool:
    """Whether this call needs no token: the sign-in, the status check, the API document."""
    for prefix in PUBLIC_PATHS:
        if path.startswith(prefix):
            return method in _PUBLIC_METHODS.get(prefix, ALL_METHODS)
    return False


def authenticate() -> None:
    """before_request for /api/v1: a valid bearer token, else 401 JSON (never a redirect)."""
    if request.method == "OPTIONS" or is_public(request.path, request.method):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, message="A bearer token is required.")
    # On the reading connection: a writing request takes SQLite's write lock later, if at all.
    actor = actor_for_token(get_reads(), token.strip())
    if actor is None:
        abort(401, message="The token is invalid, expired or revoked.")
    g.actor = actor


def current_actor() -> Actor:
    actor: Actor | None = g.get("actor")
    if actor is None:  # a view reached without authenticate(): a wiring bug, not a user error
        abort(401, message="A bearer token is required.")
    return actor


def roles_required(*roles: str) -> Callable[[F], F]:
    """Only these roles may make the call; others get 403. The view keeps them readable as
    `allowed_roles` (the role x endpoint matrix test checks every endpoint against it)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_actor().role not in roles:
                abort(403, message="Your role may not make this call.")
            return view(*args, **kwargs)

        wrapper.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def allowed_roles(view_function: Callable[..., Any], method: str) -> frozenset[str] | None:
    """The roles a view (a flask-smorest MethodView's method) declares, None if it declares none."""
    view_class = getattr(view_function, "view_class", None)
    handler = getattr(view_class, method.lower(), None) if view_class else view_function
    return getattr(handler, "allowed_roles", None)


STAFF_ONLY = roles_required("admin", "clerk")
ANY_STAFF = roles_required("admin", "clerk", "unit_staff")


# --- secure headers ---------------------------------------------------------------------------

PAGE_CSP = ("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; "
            "object-src 'none'")
# Swagger UI starts itself with an inline script and styles: that page allows inline code,
# nothing from elsewhere.
INLINE_PAGE_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                   "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                   "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; "
                   "object-src 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Printable pages with their own inline style (the receipt, the manifest's cover sheet) and
# the receipt's one inline handler, `window.print()`, allowed by its hash; nothing else runs.
PRINT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
             "script-src 'unsafe-hashes' 'sha256-MguIPR6qNR8D3B+eAlK+bIRTZe8t3wkOY4B/56Me9FU='; "
             "frame-ancestors 'none'; form-action 'none'")
PUBLIC_DOCS = ("/api/v1/docs", "/api/v1/openapi.json")


def secure_headers(response: flask.Response) -> flask.Response:
    """after_request for every answer: no sniffing, no framing, no referrer off-site, a CSP."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if "Content-Security-Policy" not in headers:
        if response.mimetype == "text/html":
            inline = request.path.startswith("/api/v1/docs")  # the Swagger UI page
            headers["Content-Security-Policy"] = INLINE_PAGE_CSP if inline else PAGE_CSP
        else:
            headers["Content-Security-Policy"] = API_CSP
    if request.path.startswith("/api/v1/") and not request.path.startswith(PUBLIC_DOCS):
        # Answers name workers and their claims: no shared or browser cache keeps a copy.
        headers.setdefault("Cache-Control", "no-store")
    return response


# --- sign-in throttling and lockout -------------------------------------------------------------

log = logging.getLogger("mutualaid.security")


@dataclass(frozen=True)
class Lockout:
    """Why a sign-in is refused before its password is checked, and for how long."""

    scope: str  # "username" or "address"
    retry_after: int  # seconds


def ratelimit_storage_uri(settings: Settings) -> str:
    """MUTUALAID_RATELIMIT_STORAGE_URI, else the SQLite file in the instance folder."""
    # Not memory://: gunicorn's workers are processes, and each would count on its own.
    return settings.ratelimit_storage_uri or file_uri(settings.instance_path / "ratelimit.sqlite3")


class WindowCounts:
    """Moving-window counts in the rate-limit store: by default a SQLite file that the
    processes of one host share; redis:// when several app hosts must share them. In this
    process alone while the store is unreachable. One per app, never a module global: each
    test app counts from zero."""

    # After the store fails, count in memory this long before asking it again: every request
    # of a busy status page must not wait on a store that is down.
    RETRY_STORE_SECONDS = 30.0

    def __init__(self, settings: Settings, name: str) -> None:
        self.prefix = f"{settings.ratelimit_key_prefix}-{name}"
        self.limiter = MovingWindowRateLimiter(
            storage_from_string(ratelimit_storage_uri(settings), wrap_exceptions=True))
        self.fallback = MovingWindowRateLimiter(MemoryStorage())
        self._store_away_until = 0.0

    def _call(self, method: str, *args: Any) -> Any:
        """limiter.method(*args) on the shared store, or in this process while it is away."""
        if time.monotonic() >= self._store_away_until:
            try:
                return getattr(self.limiter, method)(*args)
            except StorageError as error:
                self._store_away_until = time.monotonic() + self.RETRY_STORE_SECONDS
                log.warning("rate-limit storage unreachable, counting in memory for %d s "
                            "(%s): %s", self.RETRY_STORE_SECONDS, self.prefix,
                            type(error.storage_error).__name__)
        return getattr(self.fallback, method)(*args)

    def wait_seconds(self, item: RateLimitItem, scope: str, key: str) -> int | None:
        """Seconds until `key` may count once more within `item`; None while it may now."""
        if self._call("test", item, self.prefix, scope, key):
            return None
        stats = self._call("get_window_stats", item, self.prefix, scope, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def count(self, item: RateLimitItem, scope: str, key: str) -> None:
        self._call("hit", item, self.prefix, scope, key)

    def clear(self, item: RateLimitItem, scope: str, key: str) -> None:
        self._call("clear", item, self.prefix, scope, key)


class RegisterProbes(WindowCounts):
    """Unit staff learning that ID numbers are registered with another unit (a roster's rows;
    registering one member is county work): the register's uniqueness answers it, and enough
    answers unmask an ID number
    shown masked elsewhere (its hidden middle is a birth date: a few thousand candidates). A
    roster says only how many of its rows are such, never which, and each user may come upon
    them in PROBES_PER_DAY requests a day; then 429 until the oldest is a day old."""

    PROBES_PER_DAY = "5/day"
    SCOPE = "other-unit-id-numbers"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "register")
        self.item = parse(self.PROBES_PER_DAY)

    def refuse_if_spent(self, actor: Actor) -> None:
        """Before a unit staff user's roster is checked: TooManyRequests once spent."""
        if not actor.is_unit_staff:
            return
        seconds = self.wait_seconds(self.item, self.SCOPE, actor.username)
        if seconds is not None:
            message = ("Too many rosters naming ID numbers registered with other units were "
                       "checked today; the county office can register or move these members.")
            raise TooManyRequests(message, seconds,
                                  [FieldError("file", "too_many_requests", message)])

    def spend(self, actor: Actor) -> None:
        """A request of a unit staff user named ID numbers registered with another unit."""
        if actor.is_unit_staff:
            log.warning("unit staff named ID numbers registered with another unit user=%s",
                        actor.username)
            self.count(self.item, self.SCOPE, actor.username)


def register_probes() -> RegisterProbes:
    """This app's guard on what unit staff learn of other units' ID numbers."""
    app = flask.current_app
    guard = app.extensions.get(_PROBES)
    if guard is None:
        guard = app.extensions[_PROBES] = RegisterProbes(app.extensions["mutualaid"].settings)
    return cast(RegisterProbes, guard)


class LoginGuard(WindowCounts):
    """Counts wrong passwords per username and per client address (shared by app hosts like
    the status check's wrong guesses).

    After `login_max_failures` wrong passwords for a username within `login_lockout_minutes`
    the username is locked (every sign-in refused, the right password too) until the oldest
    of them is that old; the same for `login_max_failures_per_address` from one address.
    A right password clears the username's count. No table holds any of it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "login")
        minutes = settings.login_lockout_minutes
        self.per_username = parse(f"{settings.login_max_failures}/{minutes} minutes")
        self.per_address = parse(f"{settings.login_max_failures_per_address}/{minutes} minutes")
        self._secret = settings.secret_key.encode()

    def _username_key(self, username: str) -> str:
        """What the store keeps of a username: a keyed digest. People mistype their ID
        number into the username box; the store is a file anyone on the host may read."""
        return hmac.new(self._secret, username.encode(), hashlib.sha256).hexdigest()[:32]

    def _keys(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        return [(self.per_username, "username", self._username_key(username)),
                (self.per_address, "address", address[:64])]

    def locked(self, username: str, address: str) -> Lockout | None:
        """The lockout in force for this username or address, if any."""
        for item, scope, key in self._keys(username, address):
            seconds = self.wait_seconds(item, scope, key)
            if seconds is not None:
                return Lockout(scope, seconds)
        return None

    def failed(self, username: str, address: str) -> None:
        """Count a wrong password against the username and the address."""
        for item, scope, key in self._keys(username, address):
            self.count(item, scope, key)
        log.info("sign-in failed user=%r", username[:100])  # %r: no forged lines

    def succeeded(self, username: str) -> None:
        self.clear(self.per_username, "username", self._username_key(username))


def login_guard() -> LoginGuard:
    """This app's guard (one per app: each test app counts from zero)."""
    app = flask.current_app
    guard: LoginGuard | None = app.extensions.get("mutualaid.login_guard")
    if guard is None:
        guard = app.extensions["mutualaid.login_guard"] = LoginGuard(
            app.extensions["mutualaid"].settings)
    return guard

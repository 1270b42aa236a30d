"""The application factory."""

from __future__ import annotations

from dataclasses import replace
from typing import IO, Any

import sqlalchemy as sa
from flask import Flask, Response, g, jsonify, request, send_from_directory
from flask import Request as FlaskRequest
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from claims.db import make_engine, write_intent
from claims.runtime import Runtime, close_session, get_runtime, get_session
from config.catalogue import load_catalogue
from config.channels import check_channels
from config.settings import Settings

MAX_BODY_BYTES = 1024 * 1024  # SPEC §7: a body over 1 MiB answers 413
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POSTs that only read (the public status check): on SQLite they need not queue for the
# write lock behind every other request (python -m bench load: p99 0.4-0.7 s under load).
READ_ONLY_POSTS = frozenset({"/api/v1/status", "/status"})


class _StreamOverLimit(LimitedStream):
    """A body of unknown length, read to one byte past `limit`: that byte means too large."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(stream, limit + 1, is_max=True)

    def readinto(self, b: bytearray) -> int | None:  # type: ignore[override]
        size = super().readinto(b)
        if self.is_exhausted:
            raise RequestEntityTooLarge()
        return size


class Request(FlaskRequest):
    """Flask's request, with a chunked body (no Content-Length) over the limit answering 413.

    Werkzeug stops reading such a body at max_content_length and hands over what it read,
    silently cut short: the JSON parser then saw a broken body (400 "Invalid JSON body.")."""

    @cached_property
    def stream(self) -> IO[bytes]:  # type: ignore[override]
        limit = self.max_content_length  # read when first used: rosters raise it
        if (self.content_length is None and limit is not None and not self.shallow
                and "wsgi.input_terminated" in self.environ):
            return _StreamOverLimit(self.environ["wsgi.input"], limit)
        return super().stream

    def get_json(self, force: bool = False, silent: bool = False,
                 cache: bool = True) -> Any:
        """As Flask's, but a body nested deeper than the parser's stack is a bad body (400),
        not a RecursionError answering 500 with its traceback in the log."""
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("The JSON body nests too deeply.") from None


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `test_config` overrides Settings fields (database_url, timezone, ...)."""
    settings = Settings.from_env()  # ConfigError on a value that cannot work
    if test_config:
        settings = replace(settings, **test_config)
    check_channels(settings)  # read again per use; checked here so a bad one stops the start
    app = Flask(__name__, instance_path=str(settings.instance_path),
                template_folder="web/templates", static_folder="web/static")
    app.request_class = Request
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        API_TITLE="mutualaid",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/v1/docs/static/",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Chinese as UTF-8, not \uXXXX: readable in curl and logs, and a third of the bytes.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    from claims.api.base import RowIdConverter

    app.url_map.converters["int"] = RowIdConverter  # before any route: ids fit 64 bits
    from claims.logs import configure_logging

    configure_logging(settings)  # JSON lines (or text), request ids, ID numbers masked
    app.extensions["mutualaid"] = Runtime(
        settings=settings,
        catalogue=load_catalogue(settings.products_file),
        engine=make_engine(settings.database_url),
    )
    from workflows.jobs import load_schedules

    # Read at start, so a schedules file naming an unknown job stops the service here.
    app.extensions["mutualaid.schedules"] = load_schedules(settings)
    from config.reasons import reason_table

    reason_table(settings.reasons_file)  # read at start: a broken reasons file stops it here
    from claims.api.security import secure_headers
    from claims.logs import init_request_logging
    from claims.metrics import init_metrics

    init_request_logging(app)  # first: its request id and clock start before anything else
    init_metrics(app)  # /metrics, and every request counted by URL rule and status
    app.after_request(secure_headers)
    _register_request_hooks(app)
    _register_errors(app)
    from claims.api import init_api

    init_api(app)
    _register_operations(app)
    from claims.api.status import api_guess, limit_wrong_guesses
    from claims.api.status import blp as status_api
    from claims.web.status import page_guess
    from claims.web.status import pages as status_pages

    app.register_blueprint(status_pages)  # / and /status, the workers' pages
    limit_wrong_guesses(app, {status_api.name: api_guess, status_pages.name: page_guess})
    from claims.web.console import init_console

    init_console(app)  # /console/, the staff console (session cookie + CSRF)
    if settings.trusted_proxies:  # the client address and scheme the proxies in front saw
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore
                                x_proto=settings.trusted_proxies)
    from claims.cli import register_cli

    register_cli(app)
    # Tests (and the CLI) build apps with test_config: they embed only when it asks to.
    wants_scheduler = test_config is None or bool(test_config.get("embed_scheduler"))
    if settings.embed_scheduler and wants_scheduler and not app.testing:
        from workflows.scheduler import start_embedded

        start_embedded(app)  # it takes the leader lock too: several workers embed safely
    return app


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _mark_write_intent() -> None:
        # Reset every request: a worker thread's context may have served a POST before.
        writes = request.method in WRITE_METHODS and request.path not in READ_ONLY_POSTS
        write_intent.set(writes)
        # Reads run without a transaction on PostgreSQL (claims.db.reader_engine); a GET that
        # must write opens its own session_scope, as the manifest download does.
        g.read_only = not writes

    app.teardown_appcontext(close_session)


def _register_errors(app: Flask) -> None:
    from claims.api.base import error_response, handle_domain_error
    from workflows.errors import DomainError

    app.register_error_handler(DomainError, handle_domain_error)

    @app.errorhandler(sa.exc.OperationalError)
    def _database_unavailable(error: sa.exc.OperationalError) -> Response:
        app.logger.error("database unavailable: %s", type(error.orig).__name__)
        response = error_response(503, "The database is unavailable; try again shortly.")
        response.headers["Retry-After"] = "5"
        return response


def _scheduler_check(database_ok: bool) -> tuple[str, dict[str, Any]]:
    """The scheduler heartbeat: "ok" while younger than the lease, else "stale" or "missing"."""
    from workflows.leader import heartbeat_age

    if not database_ok:
        return "unknown", {}
    try:
        age = heartbeat_age(get_session())
    except sa.exc.SQLAlchemyError:
        return "unknown", {}
    if age is None:
        return "missing", {}
    fresh = age.total_seconds() < get_runtime().settings.scheduler_lease_seconds
    return ("ok" if fresh else "stale"), {"scheduler_heartbeat_age_seconds": round(
        age.total_seconds(), 1)}


def _register_operations(app: Flask) -> None:
    import swagger_ui_bundle

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            get_session().execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError:
            checks["database"] = "unavailable"
        extra: dict[str, Any] = {}
        if get_runtime().settings.readyz_require_scheduler:
            checks["scheduler"], extra = _scheduler_check(checks["database"] == "ok")
        ready = all(v == "ok" for v in checks.values())
        return jsonify(status="ready" if ready else "not_ready", checks=checks, **extra), (
            200 if ready else 503)

    @app.get("/api/v1/docs/static/<path:filename>")
    def swagger_assets(filename: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

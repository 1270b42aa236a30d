"""The application factory."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request, send_from_directory

from claims.db import make_engine, write_intent
from claims.runtime import Runtime, close_session, get_runtime, get_session
from config.catalogue import load_catalogue
from config.settings import Settings

MAX_BODY_BYTES = 1024 * 1024  # SPEC §7: a body over 1 MiB answers 413
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `test_config` overrides Settings fields (database_url, timezone, ...)."""
    settings = Settings.from_env()
    if test_config:
        settings = replace(settings, **test_config)
    app = Flask(__name__, instance_path=str(settings.instance_path),
                template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
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
    logging.basicConfig(level=settings.log_level)
    app.extensions["mutualaid"] = Runtime(
        settings=settings,
        catalogue=load_catalogue(settings.products_file),
        engine=make_engine(settings.database_url),
    )
    _register_request_hooks(app)
    _register_errors(app)
    from claims.api import init_api

    init_api(app)
    _register_operations(app)
    from claims.cli import register_cli

    register_cli(app)
    return app


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _mark_write_intent() -> None:
        # Reset every request: a worker thread's context may have served a POST before.
        write_intent.set(request.method in WRITE_METHODS)

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
        ready = all(v == "ok" for v in checks.values())
        return jsonify(status="ready" if ready else "not_ready", checks=checks), (
            200 if ready else 503)

    @app.get("/api/v1/docs/static/<path:filename>")
    def swagger_assets(filename: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    @app.get("/")
    def index() -> Response:
        settings = get_runtime().settings
        return jsonify(service="mutualaid", api="/api/v1", docs="/api/v1/docs",
                       timezone=settings.timezone)

"""Logs: one JSON object a line (or plain text), a request id on every line of a request,
and no resident ID number or bearer token in any line, whoever wrote it."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import flask
from flask import Flask, g, has_request_context, request

from claims.idcard import mask, written_id_numbers
from config.settings import Settings

ACCESS_LOG = logging.getLogger("mutualaid.access")
# An 18-character resident ID number (17 digits and a digit or X) standing on its own.
_ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")
# A bearer token after its scheme, and tokens in the shape claims.auth issues them.
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# A token or password a client put in a query string (werkzeug's request line shows it).
_SECRET_PARAMETER = re.compile(r"(?i)\b((?:access_)?token|password)=[^&\s\"']+")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Fields the JSON lines carry besides time, level, logger and message.
_CONTEXT_FIELDS = ("request_id", "method", "path", "status", "duration_ms")
_HANDLER_MARK = "_mutualaid_handler"


def mask_secrets(text: str) -> str:
    """The text with every ID number masked (first 6, 8 stars, last 4), however written
    (full-width, in groups), and bearer tokens cut."""
    text = _ID_NUMBER.sub(lambda m: f"{m.group()[:6]}********{m.group()[-4:]}", text)
    for match, number in reversed(written_id_numbers(text)):  # from the end: offsets hold
        text = f"{text[:match.start()]}{mask(number)}{text[match.end():]}"
    text = _BEARER.sub(r"\1[token]", text)
    return _SECRET_PARAMETER.sub(r"\1=[masked]", text)


class RequestContextFilter(logging.Filter):
    """Adds the request's id, method and URL rule to records written during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.__dict__.setdefault("request_id", g.get("request_id"))
            record.__dict__.setdefault("method", request.method)
            record.__dict__.setdefault("path", path_template())
        return True


class _MaskingFormatter(logging.Formatter):
    """Masks the finished line: arguments, exceptions and third-party messages alike."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self.render(record))

    def render(self, record: logging.LogRecord) -> str:
        return super().format(record)


class JsonFormatter(_MaskingFormatter):
    """time, level, logger, message, and the request's fields when there is one."""

    def render(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(_MaskingFormatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def render(self, record: logging.LogRecord) -> str:
        record.__dict__.setdefault("request_id", "-")
        return super().render(record)


def log_handler(log_format: str) -> logging.Handler:
    """A handler writing the service's lines: the format asked for, context added, masked."""
    # The process's own stderr (fd 2), not whatever sys.stderr is swapped for: a command's
    # printed answer (click, tests) stays apart from its log lines.
    handler = logging.StreamHandler(sys.__stderr__ or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestContextFilter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger (replaced, never doubled, when an app is built again)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    root.addHandler(log_handler(settings.log_format))
    root.setLevel(settings.log_level)
    # werkzeug's request lines (the dev server) go through the same handler: masked too.
    logging.getLogger("werkzeug").propagate = True


def path_template() -> str:
    """The URL rule that matched (`/api/v1/claims/<string:claim_no>`), never the raw path."""
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def new_request_id() -> str:
    """A fresh request id that the log's masking leaves as it is: one hex id in a couple of
    thousand has 18 digits in a row, which would be logged masked, not as answered."""
    while True:
        candidate = uuid.uuid4().hex
        if _ID_NUMBER.search(candidate) is None:
            return candidate


def request_id_of(given: str) -> str:
    """The client's X-Request-ID if it is a plain token that logs as sent, else a new one (an
    ID number in it would be masked in the log, and the id found nowhere)."""
    if _REQUEST_ID.match(given) and _ID_NUMBER.search(given) is None:
        return given
    return new_request_id()


def init_request_logging(app: Flask) -> None:
    """A request id from X-Request-ID (or a new one), echoed back; one access line a request."""

    @app.before_request
    def _start() -> None:
        g.request_id = request_id_of(request.headers.get("X-Request-ID", ""))
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: flask.Response) -> flask.Response:
        request_id = g.get("request_id") or new_request_id()
        response.headers["X-Request-ID"] = request_id
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        ACCESS_LOG.info("%s %s %s", request.method, path_template(), response.status_code,
                        extra={"status": response.status_code, "duration_ms": duration_ms})
        return response

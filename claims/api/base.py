"""What every API blueprint shares: the JSON parser, the error shape, pagination over select()."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import flask
import sqlalchemy as sa
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import Page, abort
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from claims.schemas.common import ErrorSchema
from claims.schemas.fields import error_code_for
from workflows.errors import DomainError

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "version_mismatch",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class DecimalJsonParser(FlaskParser):
    """JSON numbers become Decimal, so an amount keeps its spelling: 1.230 stays 1.230.
    Query strings follow their schema's `unknown` (RAISE: a mistyped filter is an error)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "query": None, "querystring": None}

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return json.loads(req.get_data(cache=True), parse_float=Decimal)
        except RecursionError:  # [[[[...]]]]: under 1 MiB, deep enough to exhaust the stack
            raise json.JSONDecodeError("nested too deeply", "", 0) from None


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = DecimalJsonParser()
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 20, "max_page_size": 100}

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """As flask-smorest's, with a schema class made an instance once: webargs would build
        a new one for every request (a tenth of a status check's time)."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        # The header holds a JSON object: say so (a header `schema` means the simple style).
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "Pagination metadata: total, total_pages, page, ... as JSON",
            "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PaginationMetadata"}}},
        }


def attachment(filename: str) -> str:
    """A Content-Disposition naming a download: an ASCII name for old clients, the name as
    it is (RFC 5987, percent-encoded) for the rest. A name built from stored text (a unit
    code) can carry quotes, CR or LF: none of it reaches the header raw."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def error_response(
    status: int,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    code: str | None = None,
    **extra: Any,
) -> flask.Response:
    """The one JSON error shape: code, status, message, errors [{field, code, message}]."""
    body = {
        "code": code or STATUS_CODES.get(status, "error"),
        "status": status,
        "message": message,
        "errors": errors or [],
        **extra,
    }
    response = flask.jsonify(body)
    response.status_code = status
    return response


def flatten_messages(messages: Any, prefix: str = "") -> list[dict[str, Any]]:
    """marshmallow's nested {field: [msg]} as a flat list naming each field (dotted for nesting)."""
    flat: list[dict[str, Any]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.extend(flatten_messages(value, name))
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, dict | list):
                flat.extend(flatten_messages(item, prefix))
            else:
                flat.append({"field": prefix or None, "code": error_code_for(str(item)),
                             "message": str(item)})
    else:
        flat.append({"field": prefix or None, "code": error_code_for(str(messages)),
                     "message": str(messages)})
    return flat


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema  # the OpenAPI document describes the errors we really send

    def handle_http_exception(self, error: HTTPException) -> flask.Response:
        data = getattr(error, "data", None) or {}
        status = error.code or 500
        errors: list[dict[str, Any]] = []
        if "messages" in data:
            # webargs nests by location ("json", "query"); the field name is what users know.
            for _location, messages in data["messages"].items():
                errors.extend(flatten_messages(messages))
        message = data.get("message") or (
            "The request has invalid fields." if errors else error.description or error.name
        )
        response = error_response(status, message, errors)
        for name, value in (data.get("headers") or {}).items():
            response.headers[name] = value
        if error.code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response


def handle_domain_error(error: DomainError) -> flask.Response:
    extra = error.extra()
    response = error_response(
        error.status, error.message, [e.as_dict() for e in error.errors], error.code, **extra)
    if "retry_after" in extra:
        response.headers["Retry-After"] = str(extra["retry_after"])
    return response


@dataclass(frozen=True)
class Listing:
    """What a list view returns for SelectPage: a select() and the session to run it in.
    (Not a tuple: flask-smorest reads a returned tuple as (body, status, headers).)"""

    session: Any
    query: sa.Select[Any]
    # The same rows, cheaper to count (e.g. one table without the joins): X-Pagination's total.
    counted: sa.Select[Any] | None = None
    # Cheaper still: the total without counting rows (e.g. the claim tally); called only
    # when flask-smorest asks for the total.
    total: Callable[[], int] | None = None
    # The rows' ids in the list's order, from one table (rows_of_page): ClaimPage.
    keys: sa.Select[Any] | None = None


MAX_OFFSET = 2**63 - 1


def rows_of_page(query: sa.Select[Any], key: Any, keys: sa.Select[Any], first: int,
                 size: int) -> sa.Select[Any]:
    """`query`'s rows on the page from `first`: the page's `key`s are offset over `keys` (the
    same rows' keys in the same order, from one table's index), and only those rows are
    joined. OFFSET over the joined rows built and dropped every row it skipped: page 400 of
    a million claims took 72 ms on PostgreSQL, 12 ms this way (docs/performance.md)."""
    return query.where(key.in_(keys.offset(first).limit(size).scalar_subquery()))


MAX_ROW_ID = 2**31 - 1  # id columns are INTEGER (32 bits on PostgreSQL)


class RowIdConverter(IntegerConverter):
    """`<int:...>` in URLs: a row id from 1 to MAX_ROW_ID; beyond, no route matches (404),
    rather than the database failing on a number its column cannot hold."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = 1,  # noqa: A002
                 max: int | None = MAX_ROW_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class SelectPage(Page):
    """Pages a SQLAlchemy select(): counts, then offsets."""

    def __init__(self, collection: Listing, page_params: Any) -> None:
        if page_params.first_item + page_params.page_size > MAX_OFFSET:
            # ?page=10**20: the databases take 64-bit offsets; say so rather than fail.
            abort(422, messages={"query": {"page": [
                f"Must be at most {MAX_OFFSET // page_params.page_size}."]}})
        self.session, self.query = collection.session, collection.query
        self.counted, self.total = collection.counted, collection.total
        self.keys = collection.keys
        super().__init__(collection, page_params)

    @property
    def items(self) -> list[Any]:
        query = self.query.offset(self.page_params.first_item).limit(self.page_params.page_size)
        return list(self.session.scalars(query))

    @property
    def item_count(self) -> int:
        if self.total is not None:
            return self.total()
        rows = self.counted if self.counted is not None else self.query.order_by(None)
        counted = sa.select(sa.func.count()).select_from(rows.subquery())
        return int(self.session.scalar(counted) or 0)

"""The OpenAPI document as a client generator reads it: every error answer with its JSON body,
the errors any call can answer (401, 403, 404, 400, 413) listed on each, money and text
fields typed with their limits, nullable objects that keep their shape, one operationId each.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import flask
import marshmallow as ma
from apispec import BasePlugin

from claims.api.security import allowed_roles, is_public
from claims.auth import ROLES
from claims.schemas.fields import Money, Text

ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# What every call may answer beyond what its view documents, and when.
NO_TOKEN = "No bearer token, or one invalid, expired or revoked"
NOT_FOUND = "No such record, or one outside the caller's unit (unit staff)"
BAD_BODY = "The body is not JSON (malformed, or nested too deeply)"
TOO_LARGE = "The body is over 1 MiB"
# Money as the API writes it, and as it reads a string (it also reads a JSON number).
MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$", "example": "1500.00",
         "description": "yuan with two decimal places as a string; in requests a JSON number "
                        "is read too, never rounded: more places, negative, or over "
                        "99999999.99 answers 422"}


class ErrorAnswers(BasePlugin):
    """apispec plugin: the error answers of each operation, and its operationId."""

    def __init__(self, app: flask.Flask) -> None:
        super().__init__()
        self.app = app
        self.operation_ids: set[str] = set()

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        view = self.app.view_functions.get(rule.endpoint) if rule is not None else None
        for method, operation in (operations or {}).items():
            # Status codes as strings: views give some as integers.
            responses = operation["responses"] = {
                str(code): answer for code, answer in operation.get("responses", {}).items()}
            if not is_public(path or "", method.upper()):
                responses.setdefault("401", {"description": NO_TOKEN})
                roles = allowed_roles(view, method) if view is not None else None
                if roles is not None and set(ROLES) - roles:
                    responses.setdefault("403", {"description": "Only " + ", ".join(
                        role for role in ROLES if role in roles) + " may make this call"})
            if path and "{" in path:
                responses.setdefault("404", {"description": NOT_FOUND})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": BAD_BODY})
                responses.setdefault("413", {"description": TOO_LARGE})
            for code, response in responses.items():
                if not isinstance(response, dict):  # a named component ("DEFAULT_ERROR")
                    continue
                if code.isdigit() and int(code) >= 400 and "$ref" not in response:
                    response.setdefault("content", ERROR_BODY)
                if "$ref" not in response:
                    response.setdefault("description", _phrase(code))
            if rule is not None:
                operation.setdefault("operationId", self._operation_id(rule.endpoint, method))

    def _operation_id(self, endpoint: str, method: str) -> str:
        """`get_claim`, `post_claim_events`, `get_annual_reports_units`: the method, then the
        view's name, after its blueprint's unless the view's name starts with it."""
        blueprint, _, view = endpoint.partition(".")
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", view.removesuffix("View")).lower()
        if not name.startswith((blueprint.removesuffix("es"), blueprint.rstrip("s"))):
            name = f"{blueprint}_{name}"
        operation_id = f"{method.lower()}_{name}"
        if operation_id in self.operation_ids:  # found when the app starts, not by a client
            raise ValueError(f"two operations named {operation_id}")
        self.operation_ids.add(operation_id)
        return operation_id


def _phrase(code: str) -> str:
    return HTTPStatus(int(code)).phrase if code.isdigit() else "Any other error"


def typed_fields(_converter: Any, field: ma.fields.Field, ret: dict[str, Any],
                 **_kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: money as a two-place string, text with its length limit,
    and a nullable object as `allOf` + `nullable` (apispec's `anyOf` with a bare object
    first made generated clients read every such object as an untyped dict)."""
    extra: dict[str, Any] = {}
    if isinstance(field, Money):
        ret.pop("type", None)
        extra = {key: value for key, value in MONEY.items() if key not in ret}
        extra["nullable"] = field.allow_none or None
    elif isinstance(field, Text):
        extra["maxLength"] = field.max_length
    branches = ret.get("anyOf")
    if (isinstance(branches, list) and len(branches) == 2
            and branches[0] == {"type": "object", "nullable": True} and "$ref" in branches[1]):
        del ret["anyOf"]
        extra.update({"allOf": [branches[1]], "nullable": True})
    return {key: value for key, value in extra.items() if value is not None}

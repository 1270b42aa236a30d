"""Base schema: unknown fields are refused (SPEC §7), output schemas document the answers."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

PAGINATION_PARAMETERS = ("page", "page_size")


class InputSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class QuerySchema(ma.Schema):
    """Query strings: an unknown filter answers 422 rather than being silently ignored.
    The pagination parameters are declared here only so they pass; the paginator reads them."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _leave_pagination(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {key: data[key] for key in data if key not in PAGINATION_PARAMETERS}

    @ma.validates_schema
    def _no_nul_characters(self, data: dict[str, Any], **kwargs: Any) -> None:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the query.
        bad = {key: ["Must not contain NUL characters."] for key, value in data.items()
               if isinstance(value, str) and "\x00" in value}
        if bad:
            raise ma.ValidationError(bad)


class ErrorItemSchema(ma.Schema):
    field = ma.fields.String(allow_none=True)
    code = ma.fields.String()
    message = ma.fields.String()


class ErrorSchema(ma.Schema):
    """The one error shape (claims.api.base.error_response); some errors add fields of their
    own (allowed_events, state, retry_after), so the document allows more."""

    class Meta:
        unknown = ma.INCLUDE

    code = ma.fields.String()
    status = ma.fields.Integer()
    message = ma.fields.String()
    errors = ma.fields.List(ma.fields.Nested(ErrorItemSchema))
    allowed_events = ma.fields.List(ma.fields.String(), metadata={
        "description": "409 on a claim event: the events that leave from the claim's state"})
    state = ma.fields.String(metadata={"description": "409 on a claim event: the claim's state"})
    retry_after = ma.fields.Integer(metadata={
        "description": "429: seconds to wait, as the Retry-After header says"})

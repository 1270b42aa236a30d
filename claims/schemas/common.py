"""Base schema: unknown fields are refused (SPEC §7), output schemas document the answers."""

from __future__ import annotations

import marshmallow as ma


class InputSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class QuerySchema(ma.Schema):
    """Query strings: pagination parameters travel beside the filters, so others pass."""

    class Meta:
        unknown = ma.EXCLUDE


class ErrorItemSchema(ma.Schema):
    field = ma.fields.String(allow_none=True)
    code = ma.fields.String()
    message = ma.fields.String()


class ErrorSchema(ma.Schema):
    code = ma.fields.String()
    status = ma.fields.Integer()
    message = ma.fields.String()
    errors = ma.fields.List(ma.fields.Nested(ErrorItemSchema))
    allowed_events = ma.fields.List(ma.fields.String())

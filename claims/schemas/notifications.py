"""The outbox as staff see it: who was told what, by which channel, and what failed."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import Text

STATES = ("pending", "sent", "failed")
RECIPIENTS = ("unit", "worker", "county")


class NotificationQuerySchema(QuerySchema):
    state = ma.fields.String(validate=ma.validate.OneOf(STATES))
    recipient_kind = ma.fields.String(validate=ma.validate.OneOf(RECIPIENTS))
    template = Text(max_length=60)
    claim_no = Text(max_length=20)


class SendAgainSchema(InputSchema):
    """No fields: POST {} (unknown fields answer 422, as everywhere)."""


class NotificationSchema(ma.Schema):
    id = ma.fields.Integer()
    claim_no = ma.fields.String(allow_none=True)
    unit_code = ma.fields.String(allow_none=True)
    recipient_kind = ma.fields.String(metadata={
        "description": "unit (the unit union), worker, or county (the county office)"})
    template = ma.fields.String(metadata={
        "description": "the message: config/templates/notifications/<template>.txt"})
    channel = ma.fields.String(allow_none=True, metadata={
        "description": "how it went out (file, notice, smtp, sms); null until sent"})
    state = ma.fields.String(metadata={"description": "pending, sent or failed"})
    attempts = ma.fields.Integer()
    next_try_at = ma.fields.DateTime()
    last_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)

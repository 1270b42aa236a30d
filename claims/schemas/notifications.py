"""The outbox as staff see it: who was told what, by which channel, and what failed."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import Text
from config.notification_templates import template_names

# cancelled: a reminder not sent because its claim moved on, or a payout notice whose money
# was collected first (workflows.notify.notice_outdated)
STATES = ("pending", "sent", "failed", "cancelled")
RECIPIENTS = ("unit", "worker", "county")


class NotificationQuerySchema(QuerySchema):
    state = ma.fields.String(validate=ma.validate.OneOf(STATES))
    recipient_kind = ma.fields.String(validate=ma.validate.OneOf(RECIPIENTS))
    template = ma.fields.String(validate=ma.validate.OneOf(template_names()))
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
    state = ma.fields.String(metadata={
        "description": "pending, sent, failed (given up: may be sent again), or cancelled (a "
                       "reminder not sent because its claim had left the state it reminds of; "
                       "last_error says which state it is in now)"})
    attempts = ma.fields.Integer()
    next_try_at = ma.fields.DateTime()
    last_error = ma.fields.String(allow_none=True, metadata={
        "description": "why the last try failed, or why a cancelled reminder was not sent"})
    created_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)

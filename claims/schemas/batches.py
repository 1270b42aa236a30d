"""Batches (批次): the weekly consignment of claims to the city office."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import Money, Text

MANIFEST_FORMATS = ("xlsx", "csv", "cover")


class BatchQuerySchema(QuerySchema):
    week = Text(max_length=10)
    delivered = ma.fields.Boolean()


class BatchRunInSchema(InputSchema):
    """POST /batches takes an empty object: the run decides everything."""


class BatchEventInSchema(InputSchema):
    event = Text(required=True, max_length=40, metadata={"enum": ["deliver"]})


class ManifestQuerySchema(QuerySchema):
    format = ma.fields.String(load_default="xlsx",
                              validate=ma.validate.OneOf(MANIFEST_FORMATS))


class StateTotalSchema(ma.Schema):
    count = ma.fields.Integer()
    total_estimate = Money()


class ManifestLinksSchema(ma.Schema):
    xlsx = ma.fields.String()
    csv = ma.fields.String()
    cover = ma.fields.String()


class BatchSchema(ma.Schema):
    batch_no = ma.fields.String(allow_none=True)
    week = ma.fields.String()
    sealed = ma.fields.Integer(metadata={"description": "claims sealed by this run (POST only)"})
    claim_count = ma.fields.Integer()
    total_claimed = Money(metadata={"description": "the sum of the claims' estimates"})
    sealed_at = ma.fields.DateTime()
    delivered_at = ma.fields.DateTime(allow_none=True)
    manifest_written_at = ma.fields.DateTime(allow_none=True)
    transmission = ma.fields.String(metadata={"description": "folder, smtp or http"})
    transmission_state = ma.fields.String(metadata={"description": "pending, sent or failed"})
    transmission_attempts = ma.fields.Integer()
    transmission_error = ma.fields.String(allow_none=True)
    transmission_next_try_at = ma.fields.DateTime(allow_none=True)
    transmitted_at = ma.fields.DateTime(allow_none=True)
    overdue_flagged_at = ma.fields.DateTime(allow_none=True)
    totals_by_state = ma.fields.Dict(keys=ma.fields.String(),
                                     values=ma.fields.Nested(StateTotalSchema))
    manifest = ma.fields.Nested(ManifestLinksSchema)



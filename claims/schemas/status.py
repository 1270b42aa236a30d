"""The public status check: a claim number and the last six of an ID number, or ID and name."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma

from claims.schemas.common import InputSchema
from claims.schemas.fields import IdNumber, PersonName, coded
from claims.schemas.history import StatusHistorySchema

BY_CLAIM_NO = ("claim_no", "id_last6")
BY_ID_NUMBER = ("id_number", "name")
SHAPE_MESSAGE = "Send claim_no and id_last6, or id_number and name, not both."
REQUIRED_MESSAGE = "Missing data for required field."
coded("mixed_lookup", SHAPE_MESSAGE)  # registers the message's machine code for the answer
_CLAIM_NO = re.compile(r"^[A-Z0-9-]{1,20}$")
_LAST6 = re.compile(r"^[0-9]{5}[0-9X]$")


def normal_claim_no(value: Any) -> str:
    """A claim number as typed, trimmed and upper-cased: `lp2026-000123 ` -> `LP2026-000123`."""
    return value.strip().upper() if isinstance(value, str) else ""


class ClaimNumber(ma.fields.String):
    """A claim number (LP2026-000123), any case."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = normal_claim_no(super()._deserialize(value, attr, data, **kwargs))
        if not _CLAIM_NO.match(text):
            raise coded("invalid_claim_no", "A claim number looks like LP2026-000123.")
        return text


class IdLastSix(ma.fields.String):
    """The last six characters of an ID number: five digits, then a digit or X (any case)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not _LAST6.match(text):
            raise coded("invalid_id_last6",
                        "The last six characters of the ID number: digits, the last may be X.")
        return text


class StatusQuerySchema(InputSchema):
    class Meta:
        description = "Either claim_no and id_last6, or id_number and name: one pair, not both."

    claim_no = ClaimNumber(metadata={"description": "e.g. LP2026-000123 (any case)"})
    id_last6 = IdLastSix(metadata={"description": "the last six characters of the ID number of "
                                                  "the member (of the beneficiary, for a death "
                                                  "claim); x or X"})
    id_number = IdNumber(metadata={"description": "the member's full ID number"})
    name = PersonName(max_length=100, validate=ma.validate.Length(min=1),
                      metadata={"description": "the member's name as registered (spaces "
                                               "between Chinese characters do not count)"})

    @ma.validates_schema
    def _one_shape(self, data: dict[str, Any], **_kwargs: Any) -> None:
        by_claim = [f for f in BY_CLAIM_NO if f in data]
        by_id = [f for f in BY_ID_NUMBER if f in data]
        if by_claim and by_id:
            raise ma.ValidationError({f: [SHAPE_MESSAGE] for f in by_id})
        shape = BY_ID_NUMBER if by_id else BY_CLAIM_NO
        missing = [f for f in shape if f not in data]
        if missing:
            raise ma.ValidationError({f: [REQUIRED_MESSAGE] for f in missing})


class TimelineStepSchema(ma.Schema):
    at = ma.fields.Date(metadata={"description": "the day, in the configured time zone"})
    label = ma.fields.String()


class WantedDocumentSchema(ma.Schema):
    name = ma.fields.String()
    reason = ma.fields.String(allow_none=True)


class CollectSchema(ma.Schema):
    place = ma.fields.String()
    hours = ma.fields.String()
    bring = ma.fields.String()


class OnsiteSchema(ma.Schema):
    date = ma.fields.Date(allow_none=True)
    place = ma.fields.String(allow_none=True)


class ClaimStatusSchema(ma.Schema):
    claim_no = ma.fields.String()
    state = ma.fields.String()
    state_label = ma.fields.String()
    product_name = ma.fields.String()
    timeline = ma.fields.List(ma.fields.Nested(TimelineStepSchema))
    next_step = ma.fields.String()
    missing_documents = ma.fields.List(ma.fields.Nested(WantedDocumentSchema))
    amount_estimated = ma.fields.String()
    estimate_note = ma.fields.String(allow_none=True, metadata={
        "description": "why the estimate leaves a part out (a late disability assessment)"})
    amount_approved = ma.fields.String(allow_none=True)
    collect = ma.fields.Nested(CollectSchema, allow_none=True)
    onsite = ma.fields.Nested(OnsiteSchema, allow_none=True)


class StatusAnswerSchema(ma.Schema):
    claims = ma.fields.List(ma.fields.Nested(ClaimStatusSchema))
    history = ma.fields.Nested(StatusHistorySchema, allow_none=True, metadata={
        "description": "by ID number and name only: the worker's enrolments, claims and per "
                       "product and year the cap, used and left; null otherwise"})

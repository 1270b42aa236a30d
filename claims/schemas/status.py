"""The public status check: a claim number and the last six of an ID number, or ID and name."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma

from claims.idcard import normalise_id_number
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
_WHOLE_ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
# What a Chinese keyboard gives for "-": the full-width hyphen-minus (NFKC makes it ASCII
# already), dashes, hyphens, the minus sign and the katakana long-vowel mark.
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc", "-"))
# LP<year>-<number> (workflows/intake.py next_claim_no), the prefix and hyphens optional.
_CLAIM_NO_PARTS = re.compile(r"^(?:LP)?-?([0-9]{4})-?([0-9]{6,})$")


def normal_claim_no(value: Any) -> str:
    """A claim number as a phone types it, as the lookup and the wrong-guess limits compare it:
    `ｌｐ２０２６－０００１２３`, `lp2026000123` and `2026-000123` are all `LP2026-000123`."""
    if not isinstance(value, str):
        return ""
    # NFKC, no spaces or invisible characters, upper-cased: as an ID number is read.
    text = normalise_id_number(value).translate(_DASHES)
    parts = _CLAIM_NO_PARTS.match(text)
    return f"LP{parts[1]}-{parts[2]}" if parts else text


def normal_id_last6(value: str) -> str:
    """The last six of an ID number as typed: NFKC, no spaces, upper-cased; a whole ID number
    pasted into the box counts as its last six."""
    text = normalise_id_number(value)
    return text[-6:] if _WHOLE_ID_NUMBER.match(text) else text


class ClaimNumber(ma.fields.String):
    """A claim number (LP2026-000123), any case or width, the prefix and hyphen optional."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = normal_claim_no(super()._deserialize(value, attr, data, **kwargs))
        if not _CLAIM_NO.match(text):
            raise coded("invalid_claim_no", "A claim number looks like LP2026-000123.")
        return text


class IdLastSix(ma.fields.String):
    """The last six characters of an ID number: five digits, then a digit or X (any case or
    width); a whole ID number counts as its last six."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = normal_id_last6(super()._deserialize(value, attr, data, **kwargs))
        if not _LAST6.match(text):
            raise coded("invalid_id_last6",
                        "The last six characters of the ID number: digits, the last may be X.")
        return text


class StatusQuerySchema(InputSchema):
    class Meta:
        description = "Either claim_no and id_last6, or id_number and name: one pair, not both."

    claim_no = ClaimNumber(metadata={"description": "e.g. LP2026-000123 (any case or width; "
                                                    "LP2026000123 and 2026-000123 mean it too)"})
    id_last6 = IdLastSix(metadata={"description": "the last six characters of the ID number of "
                                                  "the member (of the beneficiary, for a death "
                                                  "claim); x or X; a whole ID number counts as "
                                                  "its last six"})
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

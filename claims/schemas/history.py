"""A worker's history (GET /members/{id}/history) and its masked form in the status check."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.fields import Money
from claims.schemas.members import MemberSchema


class HistoryEnrolmentSchema(ma.Schema):
    id = ma.fields.Integer()
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    shares = ma.fields.Integer()
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    current = ma.fields.Boolean(metadata={"description": "covers today"})


class HistoryClaimSchema(ma.Schema):
    claim_no = ma.fields.String()
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    cause = ma.fields.String()
    incident_date = ma.fields.Date()
    year = ma.fields.Integer(metadata={"description": "the calendar year of the incident"})
    state = ma.fields.String()
    state_label = ma.fields.String()
    batch_no = ma.fields.String(allow_none=True)
    estimate = Money()
    approved_amount = Money(allow_none=True)
    paid_amount = Money(allow_none=True)
    collected_on = ma.fields.Date(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    reason_code = ma.fields.String(allow_none=True)
    reason_label = ma.fields.String(allow_none=True)


class HistoryCapSchema(ma.Schema):
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    year = ma.fields.Integer()
    shares = ma.fields.Integer(metadata={"description": "of the latest enrolment in the year"})
    paid_in_year = Money(metadata={"description": "approved, claims of the year (approved to "
                                                  "collected)"})
    cap_period = ma.fields.String(allow_none=True, metadata={
        "description": "year, lifetime (lump sums), or null: no cap beyond each claim's"})
    cap = Money(allow_none=True)
    used = Money()
    left = Money(allow_none=True, metadata={
        "description": "what a new claim of the year can still be paid: its estimate's cap"})


class MemberHistorySchema(ma.Schema):
    member = ma.fields.Nested(MemberSchema)
    enrolments = ma.fields.List(ma.fields.Nested(HistoryEnrolmentSchema))
    claims = ma.fields.List(ma.fields.Nested(HistoryClaimSchema))
    caps = ma.fields.List(ma.fields.Nested(HistoryCapSchema))


class StatusHistoryEnrolmentSchema(ma.Schema):
    product_name = ma.fields.String()
    shares = ma.fields.Integer()
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    current = ma.fields.Boolean()


class StatusHistoryClaimSchema(ma.Schema):
    claim_no = ma.fields.String()
    product_name = ma.fields.String()
    incident_date = ma.fields.Date()
    state_label = ma.fields.String()
    amount_estimated = Money()
    amount_approved = Money(allow_none=True)
    amount_paid = Money(allow_none=True)


class StatusHistoryCapSchema(ma.Schema):
    product_name = ma.fields.String()
    year = ma.fields.Integer()
    cap_period = ma.fields.String(allow_none=True)
    cap = Money(allow_none=True)
    used = Money()
    left = Money(allow_none=True)


class StatusHistorySchema(ma.Schema):
    enrolments = ma.fields.List(ma.fields.Nested(StatusHistoryEnrolmentSchema))
    claims = ma.fields.List(ma.fields.Nested(StatusHistoryClaimSchema))
    caps = ma.fields.List(ma.fields.Nested(StatusHistoryCapSchema))

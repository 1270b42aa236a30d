"""Reports (统计报表): the year's summary, units' assessment, turnaround, uncollected money,
decisions against estimates, the subsidy budget. Amounts are yuan strings; rates are ratios."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import QuerySchema
from claims.schemas.fields import Money

REPORTS = ("summary", "units", "turnaround", "uncollected", "decisions", "reasons", "subsidy")


class YearQuerySchema(QuerySchema):
    year = ma.fields.Integer(validate=ma.validate.Range(min=2000, max=2100), metadata={
        "description": "calendar year in the configured time zone; default this year"})


class ListQuerySchema(QuerySchema):
    """Lists with no year (money not yet collected is a worklist as of today)."""


def _rate(description: str) -> ma.fields.Float:
    return ma.fields.Float(allow_none=True, metadata={"description": description})


class ProductFiguresSchema(ma.Schema):
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    members_insured = ma.fields.Integer()
    claims = ma.fields.Integer()
    by_state = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    claimed = Money(metadata={"description": "estimates of the claims not withdrawn"})
    approved = Money()
    paid = Money(metadata={"description": "the year's claims collected by the workers (to date)"})
    paid_in_year = Money(metadata={
        "description": "paid out at the counter during the year, whenever the claim was logged"})


class UncollectedTotalsSchema(ma.Schema):
    claims = ma.fields.Integer()
    amount = Money()


class SummarySchema(ma.Schema):
    year = ma.fields.Integer()
    units = ma.fields.Integer()
    units_enrolled = ma.fields.Integer(metadata={
        "description": "units with a member whose enrolment covers a day of the year"})
    employees = ma.fields.Integer(metadata={"description": "the units' employee counts"})
    members_insured = ma.fields.Integer()
    enrolment_rate = _rate("members_insured / employees")
    claims = ma.fields.Integer(metadata={"description": "claims logged in the year"})
    claims_by_state = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    claimed = Money()
    approved = Money()
    paid = Money(metadata={"description": "the year's claims collected by the workers (to date)"})
    paid_in_year = Money(metadata={
        "description": "paid out at the counter during the year, whenever the claim was logged"})
    uncollected = ma.fields.Nested(UncollectedTotalsSchema, metadata={
        "description": "money arrived, not yet collected (today, any year)"})
    by_product = ma.fields.List(ma.fields.Nested(ProductFiguresSchema))


class UnitFiguresSchema(ma.Schema):
    unit_code = ma.fields.String()
    unit_name = ma.fields.String()
    area = ma.fields.String(allow_none=True)
    employee_count = ma.fields.Integer()
    members_insured = ma.fields.Integer()
    enrolment_rate = _rate("members_insured / employee_count")
    claims = ma.fields.Integer(metadata={"description": "claims logged in the year"})
    complete_first_time = ma.fields.Integer(metadata={
        "description": "claims with nothing missing when logged and never asked for materials"})
    complete_share = _rate("complete_first_time / claims")
    days_to_log_mean = ma.fields.Float(allow_none=True)
    days_to_log_median = ma.fields.Float(allow_none=True)


class WeekFiguresSchema(ma.Schema):
    week = ma.fields.String()
    count = ma.fields.Integer()
    median_days = ma.fields.Float(allow_none=True)
    p90_days = ma.fields.Float(allow_none=True)


class StageFiguresSchema(WeekFiguresSchema):
    stage = ma.fields.String()
    label = ma.fields.String()
    weeks = ma.fields.List(ma.fields.Nested(WeekFiguresSchema))


class TurnaroundSchema(ma.Schema):
    year = ma.fields.Integer()
    stages = ma.fields.List(ma.fields.Nested(StageFiguresSchema))


class UncollectedSchema(ma.Schema):
    claim_no = ma.fields.String()
    state = ma.fields.String()
    state_label = ma.fields.String()
    product_code = ma.fields.String()
    amount = Money()
    member_name = ma.fields.String()
    unit_code = ma.fields.String()
    unit_name = ma.fields.String()
    received_on = ma.fields.Date(allow_none=True)
    days_waiting = ma.fields.Integer(allow_none=True)
    onsite_date = ma.fields.Date(allow_none=True)


class DecisionsSchema(ma.Schema):
    year = ma.fields.Integer()
    approved_claims = ma.fields.Integer()
    estimate_total = Money()
    approved_total = Money()
    difference = Money(metadata={"description": "approved_total - estimate_total"})
    above = ma.fields.Integer()
    below = ma.fields.Integer()
    equal = ma.fields.Integer()
    flagged_above_estimate = ma.fields.Integer()
    rejected_claims = ma.fields.Integer()
    rejected_estimate_total = Money()


class DecidedClaimSchema(ma.Schema):
    claim_no = ma.fields.String()
    state = ma.fields.String()
    state_label = ma.fields.String()
    product_code = ma.fields.String()
    unit_code = ma.fields.String()
    member_name = ma.fields.String()
    estimate = Money()
    approved_amount = Money()
    difference = Money(metadata={"description": "approved - estimate, signed"})
    above_estimate = ma.fields.Boolean()


class SubsidyProductSchema(ma.Schema):
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    premium_per_share = Money()
    enrolments = ma.fields.Integer()
    shares = ma.fields.Integer()
    committed = Money()


class SubsidySchema(ma.Schema):
    year = ma.fields.Integer()
    subsidy = Money(metadata={"description": "MUTUALAID_SUBSIDY_YUAN"})
    committed = Money(metadata={
        "description": "one year's fee (premium x shares) of every enrolment covering the year"})
    left = Money(metadata={"description": "subsidy - committed (negative: overspent)"})
    committed_share = _rate("committed / subsidy")
    by_product = ma.fields.List(ma.fields.Nested(SubsidyProductSchema))

"""Reconciliation (对账): the query and the answer, amounts in yuan strings."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import QuerySchema
from claims.schemas.fields import Identifier, Money, UnitCode

FORMATS = ("json", "xlsx")
COUNTS = ("claims", "approved_count", "rejected_count", "returned_count")
AMOUNTS = ("claimed", "approved", "rejected", "remitted", "paid", "awaiting_funds",
           "awaiting_collection", "outstanding")


class ReconciliationQuerySchema(QuerySchema):
    batch_no = Identifier(max_length=20)
    year = ma.fields.Integer(validate=ma.validate.Range(min=2000, max=2100),
                             metadata={"description": "the year the claims were logged"})
    unit_code = UnitCode(max_length=40)
    format = ma.fields.String(validate=ma.validate.OneOf(FORMATS), metadata={
        "description": "xlsx: the workbook (also with Accept: the XLSX media type)"})


def _figure_fields() -> dict[str, ma.fields.Field]:
    fields: dict[str, ma.fields.Field] = {name: ma.fields.Integer() for name in COUNTS}
    fields |= {name: Money() for name in AMOUNTS}
    return fields


FiguresSchema = ma.Schema.from_dict(_figure_fields(), name="ReconciliationFigures")


class BatchFiguresSchema(FiguresSchema):  # type: ignore[valid-type,misc]
    batch_no = ma.fields.String()
    delivered = ma.fields.Boolean()
    recorded_claim_count = ma.fields.Integer(metadata={"description": "the batch row's count"})
    recorded_total_claimed = Money(metadata={"description": "the batch row's total"})
    batch_claim_count = ma.fields.Integer(metadata={"description": "claims in it now"})
    batch_claimed = Money(metadata={"description": "the sum of their estimates"})


class YearFiguresSchema(FiguresSchema):  # type: ignore[valid-type,misc]
    year = ma.fields.Integer()
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    subsidy_committed = Money(allow_none=True, metadata={
        "description": "the programme budget committed (GET /reports/subsidy)"})


class CheckSchema(ma.Schema):
    name = ma.fields.String()
    label = ma.fields.String()
    left = Money()
    right = Money()
    equal = ma.fields.Boolean()


class DiscrepancySchema(ma.Schema):
    kind = ma.fields.String(metadata={"description": (
        "approved_not_remitted, remitted_differs, paid_differs, remitted_not_approved, "
        "uncollected, batch_total_differs, remittance_total_differs")})
    label = ma.fields.String()
    message = ma.fields.String()
    claims = ma.fields.List(ma.fields.String(), metadata={"description": "claim numbers"})
    batch_no = ma.fields.String(allow_none=True)
    reference = ma.fields.String(allow_none=True, metadata={"description": "the remittance"})
    expected = Money(allow_none=True)
    actual = Money(allow_none=True)
    since = ma.fields.Date(allow_none=True)


class ReconciliationScopeSchema(ma.Schema):
    batch_no = ma.fields.String(allow_none=True)
    year = ma.fields.Integer(allow_none=True)
    unit_code = ma.fields.String(allow_none=True)


class ReconciliationSettingsSchema(ma.Schema):
    unremitted_days = ma.fields.Integer()
    uncollected_days = ma.fields.Integer()


class ReconciliationSchema(ma.Schema):
    as_of = ma.fields.Date()
    scope = ma.fields.Nested(ReconciliationScopeSchema)
    balanced = ma.fields.Boolean(metadata={"description": "no discrepancy, every check equal"})
    totals = ma.fields.Nested(FiguresSchema)
    checks = ma.fields.List(ma.fields.Nested(CheckSchema))
    discrepancy_counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    discrepancies = ma.fields.List(ma.fields.Nested(DiscrepancySchema))
    batches = ma.fields.List(ma.fields.Nested(BatchFiguresSchema))
    years = ma.fields.List(ma.fields.Nested(YearFiguresSchema))
    settings = ma.fields.Nested(ReconciliationSettingsSchema)


class ReconciliationClaimsQuerySchema(QuerySchema):
    batch_no = Identifier(max_length=20)
    year = ma.fields.Integer(validate=ma.validate.Range(min=2000, max=2100))
    unit_code = UnitCode(max_length=40)
    discrepant = ma.fields.Boolean(metadata={"description": "only claims with a discrepancy"})


class ReconciliationClaimSchema(ma.Schema):
    claim_no = ma.fields.String()
    state = ma.fields.String()
    unit_code = ma.fields.String()
    product_code = ma.fields.String()
    batch_no = ma.fields.String(allow_none=True)
    logged_on = ma.fields.Date()
    estimate = Money()
    approved_amount = Money(allow_none=True)
    approved_on = ma.fields.Date(allow_none=True)
    remitted = Money()
    received_on = ma.fields.Date(allow_none=True, metadata={"description": "money first in"})
    paid_amount = Money(allow_none=True)
    discrepancies = ma.fields.List(ma.fields.String(), metadata={
        "description": "the claim-level kinds that apply to it"})

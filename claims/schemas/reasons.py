"""Coded reasons: the table (GET /reasons) and the report counting them (GET /reports/reasons)."""

from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import QuerySchema
from claims.schemas.fields import Text, UnitCode


class ReasonCountSchema(ma.Schema):
    code = ma.fields.String()
    label = ma.fields.String()
    kind = ma.fields.String(allow_none=True)
    count = ma.fields.Integer()


class UnitReasonsSchema(ma.Schema):
    unit_code = ma.fields.String()
    unit_name = ma.fields.String()
    total = ma.fields.Integer()
    reasons = ma.fields.List(ma.fields.Nested(ReasonCountSchema))


class ProductReasonsSchema(ma.Schema):
    product_code = ma.fields.String()
    product_name = ma.fields.String()
    total = ma.fields.Integer()
    reasons = ma.fields.List(ma.fields.Nested(ReasonCountSchema))


class ReasonReportSchema(ma.Schema):
    year = ma.fields.Integer()
    total = ma.fields.Integer()
    reasons = ma.fields.List(ma.fields.Nested(ReasonCountSchema))
    by_unit = ma.fields.List(ma.fields.Nested(UnitReasonsSchema))
    by_product = ma.fields.List(ma.fields.Nested(ProductReasonsSchema))


class ReasonReportQuerySchema(QuerySchema):
    year = ma.fields.Integer(validate=ma.validate.Range(min=2000, max=2100), metadata={
        "description": "the calendar year the reasons were given (default: this year)"})
    unit_code = UnitCode(max_length=40)
    product_code = Text(max_length=40)


class ReasonSchema(ma.Schema):
    code = ma.fields.String()
    label = ma.fields.String()
    kind = ma.fields.String()
    events = ma.fields.List(ma.fields.String(), metadata={"description": "events that take it"})

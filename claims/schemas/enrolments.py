from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import IdNumber, StrictInteger, Text, UnitCode


class EnrolmentInSchema(InputSchema):
    id_number = IdNumber(required=True)
    product_code = Text(required=True, max_length=40)
    shares = StrictInteger(required=True)
    start_date = ma.fields.Date(required=True)
    end_date = ma.fields.Date(required=True)


class EnrolmentSchema(ma.Schema):
    id = ma.fields.Integer()
    member_id = ma.fields.Integer()
    id_number_masked = ma.fields.String()
    member_name = ma.fields.String()
    unit_code = ma.fields.String()
    product_code = ma.fields.String()
    shares = ma.fields.Integer()
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    warnings = ma.fields.List(ma.fields.String())


class EnrolmentQuerySchema(QuerySchema):
    # An id column is INTEGER: a larger number is no member (PostgreSQL refused to compare).
    member_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=2**31 - 1))
    unit_code = UnitCode(max_length=40)
    product_code = Text(max_length=40)

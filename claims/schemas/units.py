from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import StrictInteger, Text, UnitCode


class UnitInSchema(InputSchema):
    code = UnitCode(required=True, max_length=40, validate=ma.validate.Length(min=1))
    name = Text(required=True, validate=ma.validate.Length(min=1))
    area = Text(allow_none=True)
    union_contact = Text(allow_none=True)
    union_phone = Text(allow_none=True)
    union_email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=200))
    employee_count = StrictInteger(load_default=0, validate=ma.validate.Range(min=0, max=10**7))


class UnitSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    area = ma.fields.String(allow_none=True)
    union_contact = ma.fields.String(allow_none=True)
    union_phone = ma.fields.String(allow_none=True)
    union_email = ma.fields.String(allow_none=True)
    employee_count = ma.fields.Integer()


class UnitQuerySchema(QuerySchema):
    area = Text()

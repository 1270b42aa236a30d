from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import IdNumber, Text


class MemberInSchema(InputSchema):
    unit_code = Text(required=True, max_length=40)
    name = Text(required=True, validate=ma.validate.Length(min=1))
    id_number = IdNumber(required=True)
    phone = Text(allow_none=True, max_length=40)


class MemberSchema(ma.Schema):
    id = ma.fields.Integer()
    unit_code = ma.fields.String()
    name = ma.fields.String()
    id_number_masked = ma.fields.String()
    birth_date = ma.fields.Date()
    sex = ma.fields.String()
    phone = ma.fields.String(allow_none=True)


class MemberQuerySchema(QuerySchema):
    unit_code = Text(max_length=40)
    name = Text()

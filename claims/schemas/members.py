from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import IdNumber, PersonName, Text, UnitCode


class MemberInSchema(InputSchema):
    unit_code = UnitCode(required=True, max_length=40)
    name = PersonName(required=True, validate=ma.validate.Length(min=1))
    id_number = IdNumber(required=True)
    phone = Text(allow_none=True, load_default=None, max_length=40)  # omitted: no phone


class MemberSchema(ma.Schema):
    id = ma.fields.Integer()
    unit_code = ma.fields.String()
    name = ma.fields.String()
    id_number_masked = ma.fields.String()
    birth_year = ma.fields.Integer(metadata={
        "description": "the year only: the masked ID number hides the birth date, which would "
                       "give the whole number back beside it"})
    sex = ma.fields.String(metadata={"enum": ["M", "F"]})
    phone = ma.fields.String(allow_none=True)


class RegisteredMemberSchema(MemberSchema):
    """The answer to a registration (SPEC §7): the birth date read from the number just sent."""

    birth_date = ma.fields.Date()


class MemberQuerySchema(QuerySchema):
    unit_code = UnitCode(max_length=40)
    name = PersonName()

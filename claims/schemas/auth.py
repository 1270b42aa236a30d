from __future__ import annotations

import marshmallow as ma

from claims.schemas.common import InputSchema
from claims.schemas.fields import Text


class TokenRequestSchema(InputSchema):
    username = Text(required=True, max_length=100)
    password = Text(required=True)


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer()

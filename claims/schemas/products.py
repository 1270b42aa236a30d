from __future__ import annotations

import marshmallow as ma


class ProductSchema(ma.Schema):
    code = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String()
    premium_per_share = ma.fields.String()
    max_shares = ma.fields.Integer()
    waiting_days = ma.fields.Integer()
    claim_deadline_days = ma.fields.Integer()
    deadline_from = ma.fields.String()
    causes = ma.fields.List(ma.fields.String())
    min_age = ma.fields.Integer(allow_none=True)
    max_age = ma.fields.Integer(allow_none=True)
    sex = ma.fields.String(allow_none=True)
    disability_assessment_days = ma.fields.Integer(allow_none=True, metadata={
        "description": "a disability grade pays when assessed within this many days of the "
                       "accident; null: no limit"})
    rules = ma.fields.List(ma.fields.Dict())
    required_documents = ma.fields.List(ma.fields.String())
    conditional_documents = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    document_names = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())

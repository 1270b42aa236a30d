from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import has_app_context

from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import (
    Identifier,
    IdNumber,
    Money,
    PersonName,
    Shaped,
    StrictBoolean,
    StrictInteger,
    Text,
    UnitCode,
)
from workflows.intake import EXPENSE_FIELDS
from workflows.lifecycle import EVENTS, LOG_EVENT, STATES

_STATE = {"enum": list(STATES)}
_EVENT_NAMES = [spec.name for spec in EVENTS]


def _event_fields() -> str:
    """Which body fields each event takes, from the lifecycle table."""
    parts = []
    for spec in EVENTS:
        needs = [*spec.required, *(f"{name} (optional)" for name in spec.optional)]
        parts.append(f"{spec.name}: {', '.join(needs) or 'nothing more'}")
    return "; ".join(parts)

REQUIRED = "Missing data for required field."


def _product(code: Any) -> Any:
    """The catalogue's product of that code, when a request is under way."""
    if not isinstance(code, str) or not has_app_context():
        return None
    from claims.runtime import get_runtime

    return get_runtime().catalogue.get(code)


class BeneficiaryInSchema(InputSchema):
    name = PersonName(required=True, validate=ma.validate.Length(min=1))
    id_number = IdNumber(required=True)
    relation = Text(required=True, validate=ma.validate.Length(min=1))


class ClaimInSchema(InputSchema):
    class Meta:
        description = (
            "Required: id_number, product_code, cause, incident_date, and total_expense, "
            "insurance_paid and self_paid unless the product pays a lump sum. "
            "insurance_paid + self_paid may not exceed total_expense. admission_date and "
            "discharge_date go with a hospital stay; disability_grade (1-10) and "
            "disability_assessed_on with an accident; death: true needs the beneficiary. "
            "documents are codes from the product's required_documents and "
            "conditional_documents, received now. A field that does not apply may be omitted "
            "or null; a value where it does not apply answers 422.")

    id_number = IdNumber(required=True)
    product_code = Text(required=True, max_length=40)
    cause = ma.fields.String(required=True, validate=ma.validate.OneOf(["illness", "accident"]))
    incident_date = ma.fields.Date(required=True)
    admission_date = ma.fields.Date(allow_none=True)
    discharge_date = ma.fields.Date(allow_none=True)
    hospital = Text(allow_none=True)
    diagnosis = Text(allow_none=True)
    total_expense = Money(allow_none=True)
    insurance_paid = Money(allow_none=True)
    self_paid = Money(allow_none=True)
    disability_grade = StrictInteger(allow_none=True)
    disability_assessed_on = ma.fields.Date(allow_none=True, metadata={
        "description": "the date on the disability assessment (伤残鉴定书); with a grade only"})
    documents = ma.fields.List(Text(max_length=40), allow_none=True,
                               validate=ma.validate.Length(max=50))
    death = StrictBoolean(allow_none=True)
    beneficiary = ma.fields.Nested(BeneficiaryInSchema, allow_none=True)

    @ma.validates_schema(pass_original=True, skip_on_field_errors=False)
    def _expenses_the_product_needs(self, data: dict[str, Any], original: Any,
                                    **_kwargs: Any) -> None:
        # Named with the other missing fields, not in a second answer after they are fixed
        # (workflows.intake checks the same once the rest is valid).
        product = _product(data.get("product_code"))
        if product is None or product.kind == "lump_sum" or not isinstance(original, dict):
            return
        missing = [name for name in EXPENSE_FIELDS if original.get(name) is None]
        if missing:
            raise ma.ValidationError({name: [REQUIRED] for name in missing})


class DocumentSchema(ma.Schema):
    code = ma.fields.String()
    name = ma.fields.String()
    status = ma.fields.String(metadata={"enum": ["missing", "received", "rejected"]})
    reason = ma.fields.String(allow_none=True)


class BeneficiarySchema(ma.Schema):
    name = ma.fields.String()
    id_number_masked = ma.fields.String()
    relation = ma.fields.String()


class ClaimSchema(ma.Schema):
    claim_no = ma.fields.String()
    state = ma.fields.String(metadata=_STATE)
    state_label = ma.fields.String()
    version = ma.fields.Integer()
    id_number_masked = ma.fields.String()
    member_id = ma.fields.Integer()
    member_name = ma.fields.String()
    unit_code = ma.fields.String()
    product_code = ma.fields.String()
    cause = ma.fields.String(metadata={"enum": ["illness", "accident"]})
    incident_date = ma.fields.Date()
    admission_date = ma.fields.Date(allow_none=True)
    discharge_date = ma.fields.Date(allow_none=True)
    hospital = ma.fields.String(allow_none=True)
    diagnosis = ma.fields.String(allow_none=True)
    total_expense = Money()
    insurance_paid = Money()
    self_paid = Money()
    disability_grade = ma.fields.Integer(allow_none=True)
    disability_assessed_on = ma.fields.Date(allow_none=True)
    death = ma.fields.Boolean()
    beneficiary = Shaped(BeneficiarySchema, allow_none=True)
    documents = Shaped(DocumentSchema, many=True)
    missing_documents = ma.fields.List(ma.fields.String())
    estimate = Money()
    approved_amount = Money(allow_none=True)
    above_estimate = ma.fields.Boolean()
    paid_amount = Money(allow_none=True)
    batch_no = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    reason_code = ma.fields.String(allow_none=True, metadata={
        "description": "the code of the last reason (config/reasons.toml); other: free text"})
    reason_label = ma.fields.String(allow_none=True)
    onsite_date = ma.fields.Date(allow_none=True)
    onsite_place = ma.fields.String(allow_none=True)
    receipt_no = ma.fields.String(allow_none=True)
    logged_on = ma.fields.Date()
    logged_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    allowed_events = ma.fields.List(ma.fields.String(metadata={"enum": _EVENT_NAMES}))
    warnings = ma.fields.List(ma.fields.String())


class ClaimQuerySchema(QuerySchema):
    state = ma.fields.String(validate=ma.validate.OneOf(list(STATES)))
    unit_code = UnitCode(max_length=40)
    product_code = Text(max_length=40)
    batch_no = Identifier(max_length=20)
    member_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=2**31 - 1))


class ClaimEventInSchema(InputSchema):
    class Meta:
        description = ("An event of the claim's lifecycle (docs/lifecycle.md) and the fields it "
                       "takes: " + _event_fields() + ". seal, deliver, receive_funds and notify "
                       "come through their own doors (the batch, remittances, the job).")

    event = Text(required=True, max_length=40, metadata={"enum": _EVENT_NAMES})
    reason = Text(allow_none=True)
    reason_code = Text(allow_none=True, max_length=40, metadata={
        "description": "reject, return, request_materials: a code of config/reasons.toml; "
                       "its label stands in for a missing reason"})
    documents = ma.fields.List(Text(max_length=40), allow_none=True,
                               validate=ma.validate.Length(max=50))
    amount = Money(allow_none=True)
    id_number = IdNumber(allow_none=True)
    receipt_no = Identifier(allow_none=True)
    proxy_name = PersonName(allow_none=True)
    proxy_reference = Text(allow_none=True)
    date = ma.fields.Date(allow_none=True)
    place = Text(allow_none=True)


class ClaimEventSchema(ma.Schema):
    event = ma.fields.String(metadata={"enum": [LOG_EVENT, *_EVENT_NAMES]})
    from_state = ma.fields.String(allow_none=True, metadata=_STATE)
    to_state = ma.fields.String(metadata=_STATE)
    version = ma.fields.Integer()
    actor = ma.fields.String()
    at = ma.fields.DateTime()
    payload = ma.fields.Dict()

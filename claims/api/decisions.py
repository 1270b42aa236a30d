"""The city office's decisions on a delivered batch (SPEC §3 approve/reject/return, §7).

One URL takes the decisions as JSON or as the city office's sheet (.xlsx, multipart field
`file`, or the raw workbook with its own content type); either way all rows or none apply.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import col, select
from werkzeug.exceptions import UnsupportedMediaType

from claims.api.base import Blueprint
from claims.api.security import STAFF_ONLY, current_actor
from claims.models import Batch, Claim
from claims.runtime import get_runtime, get_session
from claims.schemas.payout import (
    XLSX_MIMETYPE,
    DecisionsAppliedSchema,
    DecisionsInSchema,
    decisions_from_json,
    read_decisions_sheet,
)
from workflows.errors import FieldError, RuleFailed
from workflows.payout import Decision, apply_decisions
from workflows.reasons import reasons_of

blp = Blueprint("decisions", __name__, url_prefix="/api/v1/batches",
                description="The city office's decisions on a delivered batch")

_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": DecisionsInSchema},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "The manifest (.xlsx) with 审核结果, "
                                                   "核准金额 and 原因 filled in (and "
                                                   "原因代码, a reason code, if added)"}}}},
        XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
    },
}


def _is_xlsx_upload(filename: str | None, mimetype: str | None) -> bool:
    return (filename or "").lower().endswith(".xlsx") or mimetype == XLSX_MIMETYPE


def decisions_from_request() -> list[Decision]:
    """The decisions sent: a JSON body, an uploaded sheet, or the workbook as the body."""
    return [_coded(decision) for decision in _decisions_sent()]


def _coded(decision: Decision) -> Decision:
    """A sheet's 原因代码 may hold a code or its exact label: either names the code."""
    if not decision.reason_code:
        return decision
    found = reasons_of(get_runtime()).find(decision.reason_code)
    return replace(decision, reason_code=found.code) if found else decision


def _decisions_sent() -> list[Decision]:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise RuleFailed("Upload the decisions sheet as the form field 'file'.",
                             [FieldError("file", "required", "Missing data for required field.")])
        if not _is_xlsx_upload(upload.filename, upload.mimetype):
            raise UnsupportedMediaType("The decisions sheet must be an .xlsx workbook.")
        return read_decisions_sheet(upload.read())
    if request.mimetype == XLSX_MIMETYPE:
        return read_decisions_sheet(request.get_data())
    if request.is_json:
        body = Blueprint.ARGUMENTS_PARSER.parse(DecisionsInSchema(), request, location="json")
        return decisions_from_json(body["decisions"])
    raise UnsupportedMediaType(
        "Send the decisions as JSON, or the .xlsx sheet as multipart/form-data.")


@blp.route("/<string:batch_no>/decisions")
class DecisionsView(MethodView):
    @STAFF_ONLY
    @blp.doc(requestBody=_REQUEST_BODY)
    @blp.response(200, DecisionsAppliedSchema)
    @blp.alt_response(404, description="No such batch")
    @blp.alt_response(413, description="The body is over 1 MiB")
    @blp.alt_response(415, description="Neither JSON nor an .xlsx workbook")
    @blp.alt_response(422, description="A row is invalid: every bad row listed, none applied")
    def post(self, batch_no: str) -> dict[str, Any]:
        """Record the city office's decisions (approve, reject, return) on a batch's claims."""
        session = get_session()
        batch = session.exec(select(Batch).where(Batch.batch_no == batch_no)).first()
        if batch is None:
            abort(404, message=f"No batch {batch_no}.")
        decisions = decisions_from_request()
        applied = apply_decisions(session, get_runtime(), batch, decisions, current_actor())
        approved = [d.claim_no for d in decisions if d.outcome == "approved" and d.claim_no]
        flagged = session.exec(
            select(Claim.claim_no)
            .where(col(Claim.claim_no).in_(approved), col(Claim.above_estimate))
            .order_by(col(Claim.claim_no))
        ).all() if approved else []
        session.commit()
        return {"applied": applied, "above_estimate": list(flagged)}

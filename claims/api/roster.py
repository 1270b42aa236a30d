"""Roster import (名册导入): POST /api/v1/members/import takes a unit's member list as XLSX or CSV.

The file comes as the multipart field `file` (or as the body, with its own content type);
`dry_run` (form field or query) checks without applying. Any invalid row: 422 with every
problem listed and nothing applied. This endpoint alone takes bodies up to 10 MiB.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from werkzeug.exceptions import UnsupportedMediaType

from claims.api.base import Blueprint
from claims.api.security import ANY_STAFF, current_actor, register_probes
from claims.auth import Actor
from claims.runtime import get_runtime, get_session
from claims.schemas.roster import (
    CSV_MIMETYPE,
    MAX_ROSTER_BYTES,
    XLSX_MIMETYPE,
    RosterQuerySchema,
    RosterReportSchema,
    read_roster,
)
from workflows.errors import FieldError, RuleFailed
from workflows.roster import import_roster
from workflows.roster_rows import Roster, RosterRefused, RosterReport

blp = Blueprint("roster", __name__, url_prefix="/api/v1/members",
                description="Roster import: members (and enrolments) from a unit's XLSX or CSV")

FORM_FIELDS = ("dry_run",)
_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "The roster (.xlsx or .csv): 姓名, 身份证号, 手机, "
                                        "单位代码; optionally 险种, 份数, 起保日期, 止保日期"},
                "dry_run": {"type": "boolean", "description": "Check only; apply nothing"}}}},
        XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
        CSV_MIMETYPE: {"schema": {"type": "string"}},
    },
}


@blp.before_request
def _allow_large_rosters() -> None:
    # A 10,000-row roster may exceed the 1 MiB every other call is held to.
    request.max_content_length = MAX_ROSTER_BYTES


def _dry_run(query: dict[str, Any]) -> bool:
    if "dry_run" not in request.form:
        return bool(query["dry_run"])
    value = request.form["dry_run"].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return bool(query["dry_run"])
    raise RuleFailed("dry_run must be true or false.",
                     [FieldError("dry_run", "invalid_type", "Not a valid boolean.")])


def roster_upload() -> tuple[bytes, str]:
    """The uploaded file's bytes and name: multipart field `file`, or the body itself."""
    if request.mimetype == "multipart/form-data":
        unknown = sorted(set(request.form) - set(FORM_FIELDS) - {"file"}
                         | set(request.files) - {"file"})
        if unknown:
            raise RuleFailed("The form has unknown fields.",
                             [FieldError(name, "unknown_field", "Unknown field.")
                              for name in unknown])
        upload = request.files.get("file")
        if upload is None:
            raise RuleFailed("Upload the roster as the form field 'file'.",
                             [FieldError("file", "required", "Missing data for required field.")])
        return upload.read(), upload.filename or ""
    if request.mimetype in (XLSX_MIMETYPE, CSV_MIMETYPE):
        return request.get_data(), ""
    raise UnsupportedMediaType("Send the roster as multipart/form-data (field 'file'), or as "
                               "the body with an .xlsx or text/csv content type.")


def checked_import(session: Any, actor: Actor, roster: Roster, *, dry_run: bool) -> RosterReport:
    """import_roster, with unit staff's requests that name other units' ID numbers counted
    and, past the day's allowance, refused (429) before anything is looked up."""
    probes = register_probes()
    probes.refuse_if_spent(actor)
    try:
        report = import_roster(session, get_runtime(), actor, roster, dry_run=dry_run)
    except RosterRefused as refused:
        if refused.report.get("other_unit_rows"):
            probes.spend(actor)
        raise
    if report.withheld:
        probes.spend(actor)
    return report


@blp.route("/import")
class RosterImportView(MethodView):
    @ANY_STAFF
    @blp.arguments(RosterQuerySchema, location="query")
    @blp.doc(requestBody=_REQUEST_BODY)
    @blp.response(200, RosterReportSchema)
    @blp.alt_response(413, description="The file is over 10 MiB")
    @blp.alt_response(415, description="Neither multipart, XLSX nor CSV")
    @blp.alt_response(422, description="A row is invalid (every problem listed, in `errors` and "
                                       "`report`; nothing applied), or the file is unreadable")
    def post(self, query: dict[str, Any]) -> dict[str, Any]:
        """Import members (created, or updated by ID number) and their enrolments: all or none.
        unit_staff import their own unit's members only."""
        data, filename = roster_upload()
        dry_run = _dry_run(query)
        roster = read_roster(data, source=filename)
        session = get_session()
        report = checked_import(session, current_actor(), roster, dry_run=dry_run)
        if dry_run:
            session.rollback()
        else:
            session.commit()
        return report.as_dict(roster)

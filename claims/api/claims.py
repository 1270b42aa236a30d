"""Claims (理赔): log, list, show, fire lifecycle events, read the audit trail."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import sqlalchemy as sa
from flask import Response, render_template, request
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage, rows_of_page
from claims.api.security import ANY_STAFF, PRINT_CSP, current_actor
from claims.idcard import mask
from claims.models import Batch, Claim, ClaimEvent, Member, Unit
from claims.money import chinese_capital, format_fen
from claims.rules import missing_documents
from claims.runtime import get_reads, get_runtime, get_session
from claims.schemas.claims import (
    ClaimEventInSchema,
    ClaimEventSchema,
    ClaimInSchema,
    ClaimQuerySchema,
    ClaimSchema,
)
from workflows.batch import lock_batches_for
from workflows.errors import Conflict, VersionMismatch
from workflows.intake import draft_claim, save_drafted_claim
from workflows.lifecycle import STATES, allowed_events
from workflows.reasons import reasons_of
from workflows.tally import count_claims
from workflows.transitions import fire

blp = Blueprint("claims", __name__, url_prefix="/api/v1/claims", description="Claims")

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def claim_view(claim: Claim, member: Member, unit_code: str, batch_no: str | None,
               warnings: list[str] | None = None) -> dict[str, Any]:
    """The claim as the API shows it: every logged field, amounts as yuan, ID numbers masked."""
    names = get_runtime().catalogue.document_names
    beneficiary = None
    if claim.death:
        beneficiary = {"name": claim.beneficiary_name, "relation": claim.beneficiary_relation,
                       "id_number_masked": mask(claim.beneficiary_id_number)}
    return {
        **{name: getattr(claim, name) for name in (
            "claim_no", "state", "version", "product_code", "cause", "incident_date",
            "admission_date", "discharge_date", "hospital", "diagnosis", "total_expense",
            "insurance_paid", "self_paid", "disability_grade", "disability_assessed_on", "death",
            "estimate",
            "approved_amount", "above_estimate", "paid_amount", "onsite_date", "onsite_place",
            "receipt_no", "logged_on", "logged_at", "updated_at", "member_id")},
        "state_label": STATES[claim.state],
        "id_number_masked": mask(member.id_number),
        "member_name": member.name,
        "unit_code": unit_code,
        "beneficiary": beneficiary,
        "documents": [{**doc, "name": names.get(doc["code"], doc["code"])}
                      for doc in claim.documents],
        "missing_documents": missing_documents(claim.documents),
        "batch_no": batch_no,
        "reason": claim.last_reason,
        "reason_code": claim.last_reason_code,
        "reason_label": (reasons_of(get_runtime()).label_of(claim.last_reason_code)
                         if claim.last_reason_code else None),  # most claims have none
        "allowed_events": allowed_events(claim.state),
        "warnings": warnings or [],
    }


# Claims with what their view needs, built once (statements are immutable; building one
# costs more than running it).
CLAIM_ROWS = (select(Claim, Member, Unit.code, Batch.batch_no)
              .join(Member, Member.id == Claim.member_id)
              .join(Unit, Unit.id == Claim.unit_id)
              .outerjoin(Batch, Batch.id == Claim.batch_id))


def visible_claims() -> sa.Select[Any]:
    """Claims with what their view needs; unit staff see their own unit's only."""
    query = CLAIM_ROWS
    actor = current_actor()
    if actor.is_unit_staff:
        query = query.where(Claim.unit_id == actor.unit_id)
    return query


def visible_claim_ids(conditions: list[Any]) -> sa.Select[Any]:
    """The ids of visible_claims() meeting `conditions` (on the claim table alone), unordered.
    One index range: the joins never add or drop a row, and at a million claims counting
    through them took a second; the unit and batch filters are subqueries for that reason."""
    query = select(Claim.id).where(*conditions)
    actor = current_actor()
    if actor.is_unit_staff:
        query = query.where(Claim.unit_id == actor.unit_id)
    return query


def _claim_lookups() -> dict[tuple[bool, bool], sa.Select[Any]]:
    """load_claim's four statements, by (unit staff, for update), the unit a parameter."""
    every = CLAIM_ROWS.where(Claim.claim_no == sa.bindparam("claim_no"))
    of_unit = every.where(Claim.unit_id == sa.bindparam("unit_id"))
    return {(staff, locked): (query.with_for_update(of=Claim) if locked else query)
            for staff, query in ((False, every), (True, of_unit)) for locked in (False, True)}


# Built once, as the status check's statement is: building the select was a fifth of a
# GET /claims/{claim_no} (valgrind, in-process: 5.37 -> 4.34 million instructions on SQLite,
# 6.12 -> 5.04 on PostgreSQL).
CLAIM_LOOKUPS = _claim_lookups()


def load_claim(claim_no: str, *, for_update: bool = False) -> tuple[Any, ...]:
    """The claim, its member, unit code and batch number, if the caller may see it; else 404."""
    actor = current_actor()
    query = CLAIM_LOOKUPS[(actor.is_unit_staff, for_update)]
    # Stored upper-case (LP2026-000123); typed any case, as the status check takes it.
    row = get_session().execute(query, {"claim_no": claim_no.strip().upper(),
                                        "unit_id": actor.unit_id}).first()
    if row is None:
        abort(404, message="No such claim.")
    return tuple(row)


def receipt_page(claim: Claim, member: Member, unit_code: str,
                 back_url: str | None = None) -> str:
    """The printable receipt (收据) of a collected claim, the ID number masked; the console's
    has a link back to the claim (`back_url`), not printed."""
    product = get_runtime().catalogue.get(claim.product_code)
    session = get_session()
    unit = session.get(Unit, claim.unit_id)
    # 经办人: the staff user who recorded the payment at the counter (the collect event's actor).
    clerk = session.execute(
        sa.select(ClaimEvent.actor).where(ClaimEvent.claim_id == claim.id,
                                          ClaimEvent.event == "collect")
        .order_by(ClaimEvent.id.desc()).limit(1)).scalar()
    return render_template(
        "receipt.html", claim=claim, member_name=member.name,
        id_number_masked=mask(claim.beneficiary_id_number if claim.death else member.id_number),
        unit_name=unit.name if unit else unit_code,
        product_name=product.name if product else claim.product_code,
        amount=format_fen(claim.paid_amount),
        amount_words=chinese_capital(claim.paid_amount or 0), clerk=clerk or "",
        back_url=back_url)


# The claim's version in its answers, and If-Match on events (SPEC §3), as the document says.
ETAG = {"ETag": {"description": 'The claim\'s version, quoted ("3"): send it as If-Match with '
                                "an event to have it refused (412) if the claim changed since",
                 "schema": {"type": "string"}}}
IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": 'The claim\'s ETag ("3", 3 or W/"3"), or *: the event applies only '
                           "to that version, else 412 version_mismatch. Without it the event "
                           "applies to the current version."}


def etag_headers(claim: Claim) -> dict[str, str]:
    return {"ETag": f'"{claim.version}"'}


def expected_version() -> int | None:
    """The version named by If-Match, if any; '*' matches any version."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _IF_MATCH.match(header)
    if match is None:
        raise VersionMismatch("If-Match must name a claim version, as its ETag gives it.")
    return int(match.group(1))


def claim_list_conditions(filters: dict[str, Any]) -> list[Any]:
    """The list's filters as conditions on the claim table alone (unit and batch by number)."""
    conditions: list[Any] = []
    if "state" in filters:
        conditions.append(Claim.state == filters["state"])
    if "unit_code" in filters:
        unit_id = select(Unit.id).where(Unit.code == filters["unit_code"]).scalar_subquery()
        conditions.append(Claim.unit_id == unit_id)
    if "product_code" in filters:
        conditions.append(Claim.product_code == filters["product_code"])
    if "batch_no" in filters:
        batch_id = select(Batch.id).where(Batch.batch_no == filters["batch_no"]).scalar_subquery()
        conditions.append(Claim.batch_id == batch_id)
    if "member_id" in filters:
        conditions.append(Claim.member_id == filters["member_id"])
    return conditions


# The list's filters the claim tally counts (it keeps claims by unit, state and product).
TALLIED_FILTERS = frozenset({"state", "unit_code", "product_code"})


def tallied_total(session: Any, filters: dict[str, Any], unit_id: int | None) -> int:
    """The number of claims in the filters' state, unit and product (and `unit_id`'s, if
    given)."""
    if "unit_code" in filters:
        coded = session.scalar(select(Unit.id).where(Unit.code == filters["unit_code"]))
        if coded is None or unit_id not in (None, coded):
            return 0  # an unknown unit, or another unit than the unit staff's own
        unit_id = coded
    return count_claims(session, state=filters.get("state"), unit_id=unit_id,
                        product_code=filters.get("product_code"))


class ClaimPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        assert self.keys is not None
        query = rows_of_page(self.query, Claim.id, self.keys, self.page_params.first_item,
                             self.page_params.page_size)
        return [claim_view(*row) for row in self.session.execute(query)]


@blp.route("")
class ClaimsView(MethodView):
    @ANY_STAFF
    @blp.arguments(ClaimQuerySchema, location="query")
    @blp.response(200, ClaimSchema(many=True))
    @blp.paginate(ClaimPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """List claims, newest first, by state, unit, product, batch or member."""
        conditions = claim_list_conditions(filters)
        newest_first = Claim.id.desc()  # type: ignore[union-attr]
        query = visible_claims().where(*conditions).order_by(newest_first)
        session, actor = get_session(), current_actor()
        ids = visible_claim_ids(conditions)
        keys = ids.order_by(newest_first)
        if set(filters) <= TALLIED_FILTERS:
            # By state, unit and product only, X-Pagination's total is the claim tally's sum:
            # counting a million claims took 7 ms on SQLite, 30-65 ms on PostgreSQL, and a
            # product's 134 ms (docs/performance.md).
            unit_id = actor.unit_id if actor.is_unit_staff else None
            return Listing(session, query, keys=keys,
                           total=partial(tallied_total, session, filters, unit_id))
        return Listing(session, query, counted=ids, keys=keys)

    @ANY_STAFF
    @blp.arguments(ClaimInSchema)
    @blp.response(201, ClaimSchema, headers=ETAG)
    def post(self, fields: dict[str, Any]) -> Any:
        """Log a claim brought by a unit union: estimate and missing documents come back."""
        runtime, actor, today = get_runtime(), current_actor(), get_runtime().today()
        # Read before writing, on the reading connection: on SQLite the write lock is then
        # held for the claim number and the two inserts only, not for every read as well.
        draft = draft_claim(get_reads(), runtime.catalogue, actor, fields, today)
        # Nothing else in this request changes the claim: no session.
        claim = save_drafted_claim(runtime.engine, get_reads(), draft, actor, today)
        return (claim_view(claim, draft.member, draft.unit_code, None, warnings=draft.warnings),
                etag_headers(claim))


@blp.route("/<string:claim_no>")
class ClaimView(MethodView):
    @ANY_STAFF
    @blp.response(200, ClaimSchema, headers=ETAG)
    def get(self, claim_no: str) -> Any:
        """One claim; its ETag names its version, for If-Match on events."""
        row = load_claim(claim_no)
        return claim_view(*row), etag_headers(row[0])


@blp.route("/<string:claim_no>/receipt")
class ClaimReceiptView(MethodView):
    @ANY_STAFF
    @blp.response(200, content_type="text/html")
    @blp.alt_response(409, description="The claim has not been collected")
    def get(self, claim_no: str) -> Any:
        """The printable receipt (收据) of a collected claim, as HTML."""
        claim, member, unit_code, _batch = load_claim(claim_no)
        if claim.state != "collected":
            raise Conflict("The claim has not been collected; there is no receipt yet.",
                           code="not_collected")
        return Response(receipt_page(claim, member, unit_code), mimetype="text/html",
                        headers={"Content-Security-Policy": PRINT_CSP})


@blp.route("/<string:claim_no>/events")
class ClaimEventsView(MethodView):
    @ANY_STAFF
    @blp.response(200, ClaimEventSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, claim_no: str) -> Any:
        """The audit trail, oldest first."""
        claim = load_claim(claim_no)[0]
        query = select(ClaimEvent).where(ClaimEvent.claim_id == claim.id).order_by(ClaimEvent.id)
        return Listing(get_session(), query)

    @ANY_STAFF
    @blp.arguments(ClaimEventInSchema)
    @blp.response(200, ClaimSchema, headers=ETAG)
    @blp.doc(parameters=[IF_MATCH])
    @blp.alt_response(403, description="The caller's role may not fire this event")
    @blp.alt_response(409, description="The event does not leave from the claim's state: "
                                       "`allowed_events` lists those that do")
    @blp.alt_response(412, description="If-Match names an older version")
    def post(self, fields: dict[str, Any], claim_no: str) -> Any:
        """Fire a lifecycle event on the claim (docs/lifecycle.md: who may fire which, from
        which state, with which fields)."""
        session = get_session()
        event = fields.pop("event")
        lock_batches_for(session, event)
        claim = load_claim(claim_no, for_update=True)[0]
        fire(session, get_runtime(), claim, event, current_actor(), fields,
             expected_version=expected_version())
        row = load_claim(claim_no)
        session.commit()
        return claim_view(*row), etag_headers(claim)

"""Enrolments (参保): who is covered for which product, and when."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import ANY_STAFF, STAFF_ONLY, current_actor
from claims.idcard import mask
from claims.models import Enrolment, Member, Unit
from claims.registry import enrol
from claims.runtime import get_runtime, get_session
from claims.schemas.enrolments import EnrolmentInSchema, EnrolmentQuerySchema, EnrolmentSchema

blp = Blueprint("enrolments", __name__, url_prefix="/api/v1/enrolments",
                description="Enrolments in products")


def enrolment_view(enrolment: Enrolment, member: Member, unit_code: str,
                   warnings: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": enrolment.id,
        "member_id": member.id,
        "id_number_masked": mask(member.id_number),
        "member_name": member.name,
        "unit_code": unit_code,
        "product_code": enrolment.product_code,
        "shares": enrolment.shares,
        "start_date": enrolment.start_date,
        "end_date": enrolment.end_date,
        "warnings": warnings or [],
    }


def visible_enrolments() -> sa.Select[Any]:
    query = (select(Enrolment, Member, Unit.code)
             .join(Member, Member.id == Enrolment.member_id)
             .join(Unit, Unit.id == Member.unit_id))
    actor = current_actor()
    if actor.is_unit_staff:
        query = query.where(Member.unit_id == actor.unit_id)
    return query


class EnrolmentPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        query = self.query.offset(self.page_params.first_item).limit(self.page_params.page_size)
        return [enrolment_view(*row) for row in self.session.execute(query)]


@blp.route("")
class EnrolmentsView(MethodView):
    @ANY_STAFF
    @blp.arguments(EnrolmentQuerySchema, location="query")
    @blp.response(200, EnrolmentSchema(many=True))
    @blp.paginate(EnrolmentPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """List enrolments, by member, unit and product."""
        query = visible_enrolments()
        if "member_id" in filters:
            query = query.where(Enrolment.member_id == filters["member_id"])
        if "unit_code" in filters:
            query = query.where(Unit.code == filters["unit_code"])
        if "product_code" in filters:
            query = query.where(Enrolment.product_code == filters["product_code"])
        return Listing(get_session(), query.order_by(Enrolment.id))

    @STAFF_ONLY
    @blp.arguments(EnrolmentInSchema)
    @blp.response(201, EnrolmentSchema)
    @blp.alt_response(409, description="Overlaps an enrolment of the member in the product")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Enrol a member in a product for a closed date range (start may lie in the past)."""
        session = get_session()
        enrolment, warnings = enrol(session, get_runtime().catalogue, **fields)
        row = session.execute(visible_enrolments().where(Enrolment.id == enrolment.id)).one()
        session.commit()
        return enrolment_view(*row, warnings=warnings)


@blp.route("/<int:enrolment_id>")
class EnrolmentView(MethodView):
    @ANY_STAFF
    @blp.response(200, EnrolmentSchema)
    def get(self, enrolment_id: int) -> dict[str, Any]:
        """One enrolment."""
        row = get_session().execute(
            visible_enrolments().where(Enrolment.id == enrolment_id)).first()
        if row is None:
            abort(404, message="No such enrolment.")
        return enrolment_view(*row)

"""Members (参保职工): insured workers; ID numbers only ever leave masked."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import ANY_STAFF, STAFF_ONLY, current_actor
from claims.idcard import mask
from claims.models import Member, Unit
from claims.registry import register_member
from claims.runtime import get_runtime, get_session
from claims.schemas.history import MemberHistorySchema
from claims.schemas.members import (
    MemberInSchema,
    MemberQuerySchema,
    MemberSchema,
    RegisteredMemberSchema,
)
from workflows.history import member_history

blp = Blueprint("members", __name__, url_prefix="/api/v1/members", description="Insured workers")


def member_view(member: Member, unit_code: str) -> dict[str, Any]:
    """A member as lists and pages show them: the year of birth, never the date. The mask
    hides exactly the ID number's birth date (6 + 8 * + 4), so a date beside it would give
    the whole number back."""
    return {
        "id": member.id,
        "unit_code": unit_code,
        "name": member.name,
        "id_number_masked": mask(member.id_number),
        "birth_year": member.birth_date.year,
        "sex": member.sex,
        "phone": member.phone,
    }


def visible_members() -> sa.Select[Any]:
    query = select(Member, Unit.code).join(Unit, Unit.id == Member.unit_id)
    actor = current_actor()
    if actor.is_unit_staff:
        query = query.where(Member.unit_id == actor.unit_id)
    return query


class MemberPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        query = self.query.offset(self.page_params.first_item).limit(self.page_params.page_size)
        return [member_view(m, code) for m, code in self.session.execute(query)]


@blp.route("")
class MembersView(MethodView):
    @ANY_STAFF
    @blp.arguments(MemberQuerySchema, location="query")
    @blp.response(200, MemberSchema(many=True))
    @blp.paginate(MemberPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """List members, by unit and name."""
        query = visible_members()
        if "unit_code" in filters:
            query = query.where(Unit.code == filters["unit_code"])
        if "name" in filters:
            query = query.where(Member.name == filters["name"])
        return Listing(get_session(), query.order_by(Member.id))

    @STAFF_ONLY
    @blp.arguments(MemberInSchema)
    @blp.response(201, RegisteredMemberSchema)
    @blp.alt_response(409, description="The ID number is registered already")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Register a member; birth date and sex come from the ID number."""
        session = get_session()
        member = register_member(session, **fields)
        session.commit()
        # SPEC §7's answer has the birth date: the caller has just sent the whole number.
        return member_view(member, fields["unit_code"]) | {"birth_date": member.birth_date}


@blp.route("/<int:member_id>")
class MemberView(MethodView):
    @ANY_STAFF
    @blp.response(200, MemberSchema)
    def get(self, member_id: int) -> dict[str, Any]:
        """One member."""
        row = get_session().execute(visible_members().where(Member.id == member_id)).first()
        if row is None:
            abort(404, message="No such member.")
        return member_view(*row)


@blp.route("/<int:member_id>/history")
class MemberHistoryView(MethodView):
    @ANY_STAFF
    @blp.response(200, MemberHistorySchema)
    @blp.alt_response(404, description="No such member, or another unit's")
    def get(self, member_id: int) -> dict[str, Any]:
        """Every enrolment and claim of the member, and per product and year: cap, used, left."""
        session = get_session()
        row = session.execute(visible_members().where(Member.id == member_id)).first()
        if row is None:
            abort(404, message="No such member.")
        member, unit_code = row
        return {"member": member_view(member, unit_code),
                **member_history(session, get_runtime(), member)}

"""Units (单位): the work units whose unions bring claims."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import ANY_STAFF, STAFF_ONLY, current_actor
from claims.models import Unit
from claims.registry import create_unit
from claims.runtime import get_session
from claims.schemas.units import UnitInSchema, UnitQuerySchema, UnitSchema

blp = Blueprint("units", __name__, url_prefix="/api/v1/units", description="Work units")


def visible_units() -> sa.Select[Any]:
    """Units the caller may see: all for county staff, their own for unit staff."""
    actor = current_actor()
    query = select(Unit)
    if actor.is_unit_staff:
        query = query.where(Unit.id == actor.unit_id)
    return query


@blp.route("")
class UnitsView(MethodView):
    @ANY_STAFF
    @blp.arguments(UnitQuerySchema, location="query")
    @blp.response(200, UnitSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """List units by code."""
        query = visible_units()
        if "area" in filters:
            query = query.where(Unit.area == filters["area"])
        return Listing(get_session(), query.order_by(Unit.code))

    @STAFF_ONLY
    @blp.arguments(UnitInSchema)
    @blp.response(201, UnitSchema)
    @blp.alt_response(409, description="Duplicate code")
    def post(self, fields: dict[str, Any]) -> Unit:
        """Register a unit."""
        session = get_session()
        unit = create_unit(session, fields)
        session.commit()
        return unit


@blp.route("/<string:code>")
class UnitView(MethodView):
    @ANY_STAFF
    @blp.response(200, UnitSchema)
    def get(self, code: str) -> Unit:
        """One unit, by its code in any case (codes are kept upper-cased)."""
        code = code.strip().upper()
        unit = get_session().exec(visible_units().where(Unit.code == code)).first()
        if unit is None:
            abort(404, message="No such unit.")
        return unit



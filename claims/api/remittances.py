"""Money received from the city office (到账): record a remittance, list and show them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import Session, col, select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import STAFF_ONLY, current_actor
from claims.models import Claim, Remittance, RemittanceItem
from claims.runtime import get_runtime, get_session
from claims.schemas.payout import RemittanceInSchema, RemittanceSchema
from workflows.payout import RemittanceLine, record_remittance

blp = Blueprint("remittances", __name__, url_prefix="/api/v1/remittances",
                description="Money received from the city office")


def remittance_views(session: Session, remittances: Sequence[Remittance]) -> list[dict[str, Any]]:
    """Remittances as the API shows them, each with its items (one query for all the items)."""
    ids = [r.id for r in remittances]
    items: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        rows = session.exec(
            select(RemittanceItem.remittance_id, Claim.claim_no, RemittanceItem.amount)
            .join(Claim, col(Claim.id) == RemittanceItem.claim_id)
            .where(col(RemittanceItem.remittance_id).in_(ids))
            .order_by(col(RemittanceItem.id))
        )
        for remittance_id, claim_no, amount in rows:
            items[remittance_id].append({"claim_no": claim_no, "amount": amount})
    return [{"id": r.id, "reference": r.reference, "received_on": r.received_on,
             "total_amount": r.total_amount, "items": items[r.id or 0],
             "recorded_by": r.recorded_by, "recorded_at": r.recorded_at}
            for r in remittances]


class RemittancePage(SelectPage):
    @property
    def items(self) -> list[Any]:
        return remittance_views(self.session, super().items)


@blp.route("")
class RemittancesView(MethodView):
    @STAFF_ONLY
    @blp.response(200, RemittanceSchema(many=True))
    @blp.paginate(RemittancePage)
    def get(self) -> Any:
        """List remittances, newest first."""
        return Listing(get_session(), select(Remittance).order_by(col(Remittance.id).desc()))

    @STAFF_ONLY
    @blp.arguments(RemittanceInSchema)
    @blp.response(201, RemittanceSchema)
    @blp.alt_response(409, description="The reference is recorded already")
    @blp.alt_response(422, description="Items and total disagree, or an item does not match "
                                       "its approved claim: nothing applied")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Record money received: each item's claim moves to funds_received, all or none."""
        session = get_session()
        remittance = record_remittance(
            session, get_runtime(), reference=fields["reference"],
            received_on=fields["received_on"], total_amount=fields["total_amount"],
            items=[RemittanceLine(item["claim_no"], item["amount"]) for item in fields["items"]],
            actor=current_actor(),
        )
        view = remittance_views(session, [remittance])[0]
        session.commit()
        return view


@blp.route("/<path:reference>")
class RemittanceView(MethodView):
    @STAFF_ONLY
    @blp.response(200, RemittanceSchema)
    def get(self, reference: str) -> dict[str, Any]:
        """One remittance by its reference."""
        session = get_session()
        remittance = session.exec(
            select(Remittance).where(Remittance.reference == reference)).first()
        if remittance is None:
            abort(404, message="No such remittance.")
        return remittance_views(session, [remittance])[0]

"""Notifications (通知): the outbox of notices to unit unions and workers; a failed one sent
again once its channel is put right; a reminder whose claim moved on is cancelled, never sent."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import col, select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import ANY_STAFF, STAFF_ONLY, current_actor
from claims.models import Claim, Notification, Unit
from claims.runtime import get_session
from claims.schemas.notifications import (
    NotificationQuerySchema,
    NotificationSchema,
    SendAgainSchema,
)
from workflows.notify import send_again

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications",
                description="The outbox: notices to unit unions and workers")

FIELDS = ("id", "recipient_kind", "template", "channel", "state", "attempts", "next_try_at",
          "last_error", "created_at", "sent_at")
ROWS = (select(Notification, Claim.claim_no, Unit.code)
        .outerjoin(Claim, col(Claim.id) == Notification.claim_id)
        .outerjoin(Unit, col(Unit.id) == Notification.unit_id))


def visible_notifications() -> sa.Select[Any]:
    """Notices with their claim number and unit code; unit staff see their own unit's only."""
    actor = current_actor()
    if actor.is_unit_staff:
        return ROWS.where(Notification.unit_id == actor.unit_id)
    return ROWS


def notification_view(message: Notification, claim_no: str | None,
                      unit_code: str | None) -> dict[str, Any]:
    return {**{name: getattr(message, name) for name in FIELDS},
            "claim_no": claim_no, "unit_code": unit_code}


def load_notification(notification_id: int) -> tuple[Notification, str | None, str | None]:
    row = get_session().execute(
        visible_notifications().where(Notification.id == notification_id)).first()
    if row is None:
        abort(404, message="No such notification.")
    return row[0], row[1], row[2]


class NotificationPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        query = self.query.offset(self.page_params.first_item).limit(self.page_params.page_size)
        return [notification_view(*row) for row in self.session.execute(query)]


@blp.route("")
class NotificationsView(MethodView):
    @ANY_STAFF
    @blp.arguments(NotificationQuerySchema, location="query")
    @blp.response(200, NotificationSchema(many=True))
    @blp.paginate(NotificationPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """List notices, newest first, by state (failed: those to send again; cancelled:
        reminders not sent because their claim moved on), recipient, template or claim."""
        query = visible_notifications()
        for name in ("state", "recipient_kind", "template"):
            if name in filters:
                query = query.where(getattr(Notification, name) == filters[name])
        if "claim_no" in filters:
            query = query.where(Claim.claim_no == filters["claim_no"].strip().upper())
        return Listing(get_session(), query.order_by(col(Notification.id).desc()))


@blp.route("/<int:notification_id>")
class NotificationView(MethodView):
    @ANY_STAFF
    @blp.response(200, NotificationSchema)
    def get(self, notification_id: int) -> dict[str, Any]:
        """One notice: its state, attempts and the last error."""
        return notification_view(*load_notification(notification_id))


@blp.route("/<int:notification_id>/resend")
class NotificationResendView(MethodView):
    @STAFF_ONLY
    @blp.arguments(SendAgainSchema)
    @blp.response(200, NotificationSchema)
    @blp.alt_response(409, description="Only a failed notice is sent again (not a pending, "
                                       "sent or cancelled one)")
    def post(self, _fields: dict[str, Any], notification_id: int) -> dict[str, Any]:
        """Send a failed notice again: due at the next dispatch, its attempts afresh."""
        session = get_session()
        message, claim_no, unit_code = load_notification(notification_id)
        send_again(session, message, current_actor())
        view = notification_view(message, claim_no, unit_code)
        session.commit()
        return view

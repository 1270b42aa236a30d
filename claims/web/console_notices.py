"""Console: the outbox (通知), newest first, by state; a notice that failed for good is sent
again from here once the mail server or the SMS gateway is put right (as the API's
POST /notifications/{id}/resend). For county staff; the home page counts the failed ones."""

from __future__ import annotations

import re
from typing import Any

import flask
from flask import g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlmodel import col

from claims.api.notifications import ROWS, notification_view
from claims.models import Notification
from claims.runtime import get_session
from claims.web.console import console
from claims.web.console_claim import NOTICES, RECIPIENTS
from claims.web.console_kit import paged, staff_only
from claims.web.forms import chinese
from workflows.errors import DomainError
from workflows.lifecycle import STATES
from workflows.notify import send_again

# 已取消: a reminder not sent because its claim moved on (never sent again, never a failure).
NOTICE_STATES: dict[str, Any] = {"failed": _l("发送失败"), "pending": _l("待发送"),
                                 "sent": _l("已发送"), "cancelled": _l("已取消")}


# workflows.notify's reason for a cancelled notice (stored, and answered by the API, as written).
_CANCELLED = re.compile(r"not sent: the claim is now (?P<state>[a-z_]+)")


@console.app_template_filter("notice_error")
def notice_error(text: str | None) -> str:
    """A notice's last error in the page's language where it is the outbox's own (a cancelled
    notice's reason); a mail server's or gateway's answer as it came."""
    cancelled = _CANCELLED.fullmatch(text or "")
    if cancelled is not None and cancelled["state"] in STATES:
        return _("未发送：理赔已转为“%(state)s”", state=_(STATES[cancelled["state"]]))
    return text or ""


@console.get("/notifications")
@staff_only
def notifications() -> str:
    """Notices, newest first, by state (发送失败: the ones to send again)."""
    state = request.args.get("state", "")
    query = ROWS.order_by(col(Notification.id).desc())
    if state in NOTICE_STATES:
        query = query.where(Notification.state == state)
    page = paged(query, {"state": state})
    return render_template("console/notifications.html", page=page, state=state,
                           states=NOTICE_STATES, notices=NOTICES, recipients=RECIPIENTS,
                           rows=[notification_view(*row) for row in page.rows])


@console.post("/notifications/<int:notification_id>/resend")
@staff_only
def resend_notification(notification_id: int) -> Any:
    """Put a failed notice back in the outbox: the next dispatch (within the minute) sends it."""
    db = get_session()
    message = db.get(Notification, notification_id)
    if message is None:
        flask.abort(404)
    try:
        send_again(db, message, g.actor)
    except DomainError as error:
        db.rollback()
        flask.flash(chinese(error.code, error.message), "error")
    else:
        db.commit()
        flask.flash(_("通知已重新排队，将在一分钟内发送。"))
    return redirect(url_for("console.notifications", state=request.form.get("state", "")), 303)

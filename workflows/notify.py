"""The outbox: notifications written in the same transaction as the change that causes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import jinja2
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from claims.auth import Actor
from claims.db import session_scope
from claims.models import Claim, ClaimEvent, Member, Notification, Unit
from claims.money import format_fen
from claims.runtime import Runtime
from config.channels import ChannelSettings
from config.notification_templates import TEMPLATE_DIR
from workflows import channels
from workflows.errors import Conflict

UNIT = "unit"
WORKER = "worker"
COUNTY = "county"  # the county office itself (overdue batches)
# A reminder is about its claim waiting in one state: once the claim has left it, the
# reminder still in the outbox is cancelled rather than sent (notice_outdated).
REMINDED_STATES = {"remind_uncollected": "notified", "chase_materials": "pending_materials"}
# A payout notice sends the worker to collect: once the money is paid (on site, within the
# minute before the dispatch), it would send them for money already in their hands; and the
# counter's notices are wrong once the claim is to be paid at a meeting instead.
OUTDATED_IN: dict[str, frozenset[str]] = {
    "funds_received": frozenset({"onsite_scheduled", "collected"}),
    "funds_received_worker": frozenset({"onsite_scheduled", "collected"}),
    "onsite_scheduled": frozenset({"collected"}),
}


def queue(session: Session, *, claim: Claim | None, recipient_kind: str, template: str,
          payload: dict[str, Any], unit_id: int | None = None,
          dedupe_key: str | None = None) -> Notification | None:
    """Write a pending message; a dedupe_key already used writes nothing (reruns are no-ops)."""
    if dedupe_key is not None:
        exists = session.exec(
            select(Notification.id).where(Notification.dedupe_key == dedupe_key)
        ).first()
        if exists is not None:
            return None
    message = Notification(
        claim_id=claim.id if claim else None,
        unit_id=unit_id if unit_id is not None else (claim.unit_id if claim else None),
        recipient_kind=recipient_kind,
        template=template,
        payload=payload,
        dedupe_key=dedupe_key,
    )
    session.add(message)
    if dedupe_key is not None:
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # another process wrote the same reminder first
            return None
    return message


# --- dispatch ------------------------------------------------------------------------------

_jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                            undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_SMS_PARAMS = ("claim_no", "member_name", "unit_name", "amount", "collection_place",
               "collection_hours", "onsite_date", "onsite_place", "batch_no")


@dataclass
class DispatchSummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    notified: int = 0  # claims moved to `notified` because their unit union was told
    cancelled: int = 0  # reminders no longer true, not sent

    def as_dict(self) -> dict[str, int]:
        counts = dict(self.__dict__)
        if not self.cancelled:  # the usual run's summary keeps its four counts
            del counts["cancelled"]
        return counts


def render(template: str, context: dict[str, Any]) -> channels.Rendered:
    """The template file's first line is the subject, the rest the body."""
    text = _jinja.get_template(f"{template}.txt").render(**context)
    subject, _, body = text.partition("\n")
    params = {k: str(context[k]) for k in _SMS_PARAMS if context.get(k) is not None}
    return channels.Rendered(subject=subject.strip(), body=body.strip() + "\n", params=params)


def message_context(session: Session, runtime: Runtime, message: Notification,
                    settings: ChannelSettings) -> dict[str, Any]:
    """What a template may say: the payload, then the claim, unit and member as they are now."""
    context: dict[str, Any] = dict(message.payload)
    context.setdefault("documents", [])
    context.setdefault("reason", None)
    context.setdefault("returned", False)  # materials_requested: the city office sent it back
    context.setdefault("beneficiary_name", None)  # a death claim's notices name them
    names = runtime.catalogue.document_names
    context["documents"] = [{**doc, "name": names.get(doc["code"], doc["code"])}
                            for doc in context["documents"]]
    app_settings = runtime.settings
    context |= {
        "county_office": settings.county_office,
        "collection_place": getattr(app_settings, "collection_place", settings.county_office),
        "collection_hours": getattr(app_settings, "collection_hours", "工作日办公时间"),
    }
    unit = session.get(Unit, message.unit_id) if message.unit_id else None
    context["unit_name"] = unit.name if unit else ""
    claim = session.get(Claim, message.claim_id) if message.claim_id else None
    if claim is not None:
        member = session.get(Member, claim.member_id)
        product = runtime.catalogue.get(claim.product_code)
        context |= {
            "claim_no": claim.claim_no,
            "member_name": member.name if member else "",
            "product_name": product.name if product else claim.product_code,
            "amount": format_fen(claim.approved_amount),
            "onsite_date": claim.onsite_date.isoformat() if claim.onsite_date else None,
            "onsite_place": claim.onsite_place,
            # A death claim's money goes to the beneficiary: the notices name them, never
            # asking the late worker to come.
            "beneficiary_name": claim.beneficiary_name if claim.death else None,
        }
    return context


def _route(session: Session, runtime: Runtime, message: Notification,
           settings: ChannelSettings) -> tuple[str, Callable[[], str]]:
    """The channel by the recipient kind, and the call that sends the message, rendered now:
    sending it reads nothing more from the database."""
    rendered = render(message.template, message_context(session, runtime, message, settings))
    outbox = runtime.settings.instance_path / "outbox" / message.recipient_kind
    name, key = f"{message.id:08d}-{message.template}", f"notification-{message.id}"
    if message.recipient_kind == UNIT:
        unit = session.get(Unit, message.unit_id) if message.unit_id else None
        channel = settings.unit_channel
        if channel == "smtp" and unit is not None and unit.union_email:
            return channel, partial(channels.send_smtp, settings, unit.union_email, rendered, key)
        if channel == "sms" and unit is not None and unit.union_phone:
            return channel, partial(channels.send_sms, settings, unit.union_phone,
                                    message.template, rendered, key)
        if channel in ("smtp", "sms", "print"):
            # No address for the channel: a notice to print and hand over.
            return "print", partial(channels.send_print, outbox, name, rendered)
        return channel, partial(channels.send_file, outbox, name, rendered)
    if message.recipient_kind == COUNTY:
        if settings.county_email:
            return "smtp", partial(channels.send_smtp, settings, settings.county_email,
                                   rendered, key)
        return "file", partial(channels.send_file, outbox, name, rendered)
    claim = session.get(Claim, message.claim_id) if message.claim_id else None
    member = session.get(Member, claim.member_id) if claim else None
    if settings.worker_channel == "sms" and member is not None and member.phone:
        return "sms", partial(channels.send_sms, settings, member.phone, message.template,
                              rendered, key)
    return "file", partial(channels.send_file, outbox, name, rendered)


def _record_sent(session: Session, runtime: Runtime, message: Notification,
                 summary: DispatchSummary) -> None:
    """A sent message moves its claim to `notified` (the unit's payout notice) or is audited."""
    from claims.auth import system_actor
    from workflows.lifecycle import BY_JOB
    from workflows.transitions import fire

    claim = session.get(Claim, message.claim_id) if message.claim_id else None
    if claim is None:
        return
    actor = system_actor("dispatch_notifications")
    if (message.recipient_kind == UNIT and message.template == "funds_received"
            and claim.state == "funds_received"):
        fire(session, runtime, claim, "notify", actor, door=BY_JOB)
        summary.notified += 1
        return
    _audit_notice(session, claim, message, "notification_sent", actor.username,
                  {"channel": message.channel})


def _audit_notice(session: Session, claim: Claim, message: Notification, event: str,
                  actor: str, extra: dict[str, Any]) -> None:
    """An audit row on the claim for something done to one of its messages; like every event
    that keeps the state, it bumps the claim's version (SPEC §3)."""
    state, now = claim.state, datetime.now(UTC)
    claim.updated_at = now
    session.add(claim)
    session.flush()
    session.add(ClaimEvent(
        claim_id=claim.id, event=event, from_state=state, to_state=state,
        version=claim.version, actor=actor, at=now,
        payload={"template": message.template, "recipient": message.recipient_kind, **extra},
    ))


def send_again(session: Session, message: Notification, actor: Actor) -> Notification:
    """A failed message back in the outbox, due now, its attempts counted afresh (after the
    SMTP or SMS settings were put right); audited on its claim. Nothing else may be resent:
    not a sent one, nor a cancelled reminder (no longer true)."""
    if message.state != "failed":
        raise Conflict(f"Notification {message.id} is {message.state}; only a failed one is "
                       "sent again.", code="not_failed")
    claim = session.get(Claim, message.claim_id) if message.claim_id else None
    if claim is not None:  # the error it gave up on stays in the audit row
        _audit_notice(session, claim, message, "notification_resent", actor.username,
                      {"notification_id": message.id,
                       "last_error": (message.last_error or "")[:200] or None})
    message.state, message.attempts, message.last_error = "pending", 0, None
    message.next_try_at = datetime.now(UTC)
    session.add(message)
    return message


def _next_due(session: Session, now: datetime) -> Notification | None:
    query = (select(Notification)
             .where(Notification.state == "pending", Notification.next_try_at <= now)
             .order_by(Notification.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        # Several dispatchers at once: each takes a different row, none waits for another.
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).first()


def send_lease(settings: ChannelSettings) -> timedelta:
    """How long a message taken for sending is left to its dispatcher: longer than any send
    can take (each step of an SMTP conversation may wait the whole timeout), so another
    dispatcher takes it over only when the first one died."""
    return timedelta(seconds=max(300.0, 10 * settings.smtp_timeout))


@dataclass(frozen=True)
class Outgoing:
    """A message taken for sending: what the send needs, and which lease it is."""

    id: int
    claim_id: int | None
    attempts: int  # a later lease of the message counts more: whose outcome is recorded
    channel: str
    send: Callable[[], str]


def notice_outdated(session: Session, message: Notification) -> str | None:
    """Why a message waiting in the outbox is no longer true, or None: a reminder whose claim
    left the state it reminds of, a payout notice whose money was collected meanwhile (or
    moved to an on-site payment, for the counter's notices)."""
    waits_in = REMINDED_STATES.get(message.template)
    outdated_in = OUTDATED_IN.get(message.template)
    if (waits_in is None and outdated_in is None) or message.claim_id is None:
        return None
    claim = session.get(Claim, message.claim_id)
    if claim is None or claim.state == waits_in:
        return None
    if outdated_in is not None and claim.state not in outdated_in:
        return None
    return f"not sent: the claim is now {claim.state}"


def _take(session: Session, runtime: Runtime, message: Notification,
          settings: ChannelSettings, summary: DispatchSummary) -> Outgoing | None:
    """Lease the message for sending (its attempt counted, its next try pushed past the
    lease), or settle it here: an outdated notice is cancelled, a template that does not
    render is a failed attempt."""
    why = notice_outdated(session, message)
    if why is not None:
        message.state, message.last_error = "cancelled", why
        session.add(message)
        summary.cancelled += 1
        return None
    message.attempts += 1
    message.next_try_at = datetime.now(UTC) + send_lease(settings)
    session.add(message)
    try:
        channel, send = _route(session, runtime, message, settings)
    except jinja2.TemplateError as error:
        _record_failure(session, message, str(error), settings, summary)
        return None
    assert message.id is not None
    return Outgoing(id=message.id, claim_id=message.claim_id, attempts=message.attempts,
                    channel=channel, send=send)


def _record_failure(session: Session, message: Notification, error: str,
                    settings: ChannelSettings, summary: DispatchSummary) -> None:
    """A failed attempt: tried again after a backoff, or failed for good after the last."""
    message.last_error = error[:500]
    if message.attempts >= settings.max_attempts:
        message.state = "failed"
        summary.failed += 1
    else:
        delay = min(settings.backoff_seconds * 2 ** (message.attempts - 1),
                    settings.backoff_cap_seconds)
        message.next_try_at = datetime.now(UTC) + timedelta(seconds=delay)
        summary.retrying += 1
    session.add(message)


def _still_leased(session: Session, outgoing: Outgoing) -> Notification | None:
    """The message, locked, if it is still this dispatcher's to settle: not taken over by
    another one after the lease ran out."""
    if outgoing.claim_id is not None:
        # The claim's two messages may be settled by two dispatchers at once: each writes
        # the claim (notify, or its audit event), so they take turns on its row.
        session.exec(select(Claim).where(Claim.id == outgoing.claim_id).with_for_update()
                     .execution_options(populate_existing=True)).one()
    message = session.exec(select(Notification).where(Notification.id == outgoing.id)
                           .with_for_update()
                           .execution_options(populate_existing=True)).first()
    if message is None or message.state != "pending" or message.attempts != outgoing.attempts:
        return None
    return message


def _send_and_record(runtime: Runtime, outgoing: Outgoing, settings: ChannelSettings,
                     summary: DispatchSummary) -> None:
    """Send with no transaction open, then record the outcome in a short one of its own."""
    error: str | None = None
    try:
        outgoing.send()
    except channels.ChannelError as failure:
        error = str(failure)
    with session_scope(runtime.engine) as session:
        message = _still_leased(session, outgoing)
        if message is None:
            return
        if error is not None:
            _record_failure(session, message, error, settings, summary)
            return
        message.state, message.sent_at, message.last_error = "sent", datetime.now(UTC), None
        message.channel = outgoing.channel
        session.add(message)
        _record_sent(session, runtime, message, summary)
        summary.sent += 1


def dispatch_due(runtime: Runtime, *, limit: int = 500) -> DispatchSummary:
    """Send due outbox messages: each is taken in a short transaction, sent with none open
    (a hung mail server holds up no other writer), and its outcome recorded in another;
    failures back off, then fail for good."""
    settings = ChannelSettings.from_env()
    summary = DispatchSummary()
    started = datetime.now(UTC)
    for _ in range(limit):
        with session_scope(runtime.engine) as session:
            message = _next_due(session, started)
            if message is None:
                break
            outgoing = _take(session, runtime, message, settings, summary)
        if outgoing is not None:
            _send_and_record(runtime, outgoing, settings, summary)
    return summary

"""The outbox: notifications written in the same transaction as the change that causes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from workflows import channels
from workflows.errors import Conflict

UNIT = "unit"
WORKER = "worker"
COUNTY = "county"  # the county office itself (overdue batches)


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

TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "templates" / "notifications"
_jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                            undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_SMS_PARAMS = ("claim_no", "member_name", "unit_name", "amount", "collection_place",
               "collection_hours", "onsite_date", "onsite_place", "batch_no")


@dataclass
class DispatchSummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    notified: int = 0  # claims moved to `notified` because their unit union was told

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


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
        }
    return context


def _send(session: Session, runtime: Runtime, message: Notification,
          settings: ChannelSettings) -> str:
    """Send by the recipient kind's channel; returns the channel used."""
    rendered = render(message.template, message_context(session, runtime, message, settings))
    outbox = runtime.settings.instance_path / "outbox" / message.recipient_kind
    name, key = f"{message.id:08d}-{message.template}", f"notification-{message.id}"
    if message.recipient_kind == UNIT:
        unit = session.get(Unit, message.unit_id) if message.unit_id else None
        channel = settings.unit_channel
        if channel == "smtp" and unit is not None and unit.union_email:
            channels.send_smtp(settings, unit.union_email, rendered, key)
        elif channel == "sms" and unit is not None and unit.union_phone:
            channels.send_sms(settings, unit.union_phone, message.template, rendered, key)
        elif channel in ("smtp", "sms", "print"):
            channel = "print"  # no address for the channel: a notice to print and hand over
            channels.send_print(outbox, name, rendered)
        else:
            channels.send_file(outbox, name, rendered)
        return channel
    if message.recipient_kind == COUNTY:
        if settings.county_email:
            channels.send_smtp(settings, settings.county_email, rendered, key)
            return "smtp"
        channels.send_file(outbox, name, rendered)
        return "file"
    claim = session.get(Claim, message.claim_id) if message.claim_id else None
    member = session.get(Member, claim.member_id) if claim else None
    if settings.worker_channel == "sms" and member is not None and member.phone:
        channels.send_sms(settings, member.phone, message.template, rendered, key)
        return "sms"
    channels.send_file(outbox, name, rendered)
    return "file"


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
    SMTP or SMS settings were put right); audited on its claim. Nothing else may be resent."""
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
        # Several dispatchers at once: each takes a different row, none sends one twice.
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).first()


def dispatch_due(runtime: Runtime, *, limit: int = 500) -> DispatchSummary:
    """Send due outbox messages, one transaction each; failures back off, then fail for good."""
    settings = ChannelSettings.from_env()
    summary = DispatchSummary()
    started = datetime.now(UTC)
    for _ in range(limit):
        with session_scope(runtime.engine) as session:
            message = _next_due(session, started)
            if message is None:
                break
            if message.claim_id is not None:
                # The claim's two messages may be sent by two dispatchers at once: each writes
                # the claim (notify, or its audit event), so they take turns on its row.
                session.exec(select(Claim).where(Claim.id == message.claim_id)
                             .with_for_update()
                             .execution_options(populate_existing=True)).one()
            message.attempts += 1
            try:
                message.channel = _send(session, runtime, message, settings)
            except (channels.ChannelError, jinja2.TemplateError) as error:
                message.last_error = str(error)[:500]
                if message.attempts >= settings.max_attempts:
                    message.state = "failed"
                    summary.failed += 1
                else:
                    delay = min(settings.backoff_seconds * 2 ** (message.attempts - 1),
                                settings.backoff_cap_seconds)
                    message.next_try_at = datetime.now(UTC) + timedelta(seconds=delay)
                    summary.retrying += 1
                session.add(message)
                continue
            message.state, message.sent_at, message.last_error = "sent", datetime.now(UTC), None
            session.add(message)
            _record_sent(session, runtime, message, summary)
            summary.sent += 1
    return summary

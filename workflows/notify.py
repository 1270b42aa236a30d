"""The outbox: notifications written in the same transaction as the change that causes them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from claims.models import Claim, Notification

UNIT = "unit"
WORKER = "worker"


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

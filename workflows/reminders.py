"""The reminder jobs (SPEC §4): uncollected money, materials still missing, overdue batches.

Each writes at most one reminder per claim (or batch) per interval: the outbox's dedupe
key names the interval, so running a job twice, or from two processes, adds nothing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from claims.db import session_scope
from claims.models import Batch, Claim, ClaimEvent
from claims.runtime import Runtime
from workflows import notify


def _days(name: str, default: int) -> int:
    return int(os.environ.get(f"MUTUALAID_{name}", default))


def _since(session: Session, state: str, event_filter: Any, older_than: datetime) -> list[Any]:
    """Claims in `state` whose entering event (per event_filter) is older than `older_than`."""
    entered = (sa.select(ClaimEvent.claim_id, sa.func.max(ClaimEvent.at).label("at"))
               .where(event_filter).group_by(ClaimEvent.claim_id).subquery())
    return list(session.execute(
        sa.select(Claim.id, Claim.unit_id, Claim.claim_no, Claim.documents, entered.c.at)
        .join(entered, entered.c.claim_id == Claim.id)
        .where(Claim.state == state, entered.c.at < older_than)
    ))


def _remind(runtime: Runtime, *, job: str, state: str, event_filter: Any, interval_days: int,
            extra: Any) -> dict[str, int]:
    now = datetime.now(UTC)
    queued = 0
    with session_scope(runtime.engine) as session:
        rows = _since(session, state, event_filter, now - timedelta(days=interval_days))
        for row in rows:
            interval = (now - row.at).days // interval_days
            claim = session.get(Claim, row.id)
            message = notify.queue(
                session, claim=claim, recipient_kind=notify.UNIT, template=job,
                payload=extra(row), dedupe_key=f"{job}:{row.id}:{interval}")
            queued += message is not None
    return {"due": len(rows), "queued": queued}


def remind_uncollected(runtime: Runtime) -> dict[str, int]:
    """Units are reminded of money notified but not collected after 14 days (and every 14 more)."""
    days = _days("REMIND_UNCOLLECTED_DAYS", 14)
    return _remind(
        runtime, job="remind_uncollected", state="notified",
        event_filter=ClaimEvent.event == "notify", interval_days=days,
        extra=lambda row: {"notified_on": row.at.astimezone(runtime.settings.tz).date()
                           .isoformat()},
    )


def chase_materials(runtime: Runtime) -> dict[str, int]:
    """Units are reminded of claims waiting for materials for more than 30 days."""
    days = _days("CHASE_MATERIALS_DAYS", 30)
    return _remind(
        runtime, job="chase_materials", state="pending_materials",
        event_filter=sa.and_(ClaimEvent.to_state == "pending_materials",
                             ClaimEvent.from_state != "pending_materials"),
        interval_days=days,
        extra=lambda row: {
            "pending_since": row.at.astimezone(runtime.settings.tz).date().isoformat(),
            "documents": [d for d in row.documents if d["status"] != "received"],
        },
    )


def overdue_batches(delivered_before: datetime) -> sa.Select[Any]:
    """(batch, undecided claims) of the batches delivered before then with claims still
    undecided by the city office, oldest first."""
    undecided = (sa.select(Claim.batch_id, sa.func.count().label("n"))
                 .where(Claim.state == "submitted").group_by(Claim.batch_id).subquery())
    return (sa.select(Batch, undecided.c.n).join(undecided, undecided.c.batch_id == Batch.id)
            .where(Batch.delivered_at < delivered_before)  # type: ignore[operator]
            .order_by(Batch.delivered_at))


def overdue_days() -> int:
    """After how many days a delivered batch with undecided claims is overdue."""
    return _days("OVERDUE_BATCH_DAYS", 30)


def flag_overdue(runtime: Runtime) -> dict[str, Any]:
    """Batches delivered over 30 days ago with claims still undecided are flagged, once."""
    days = overdue_days()
    now = datetime.now(UTC)
    flagged: list[str] = []
    with session_scope(runtime.engine) as session:
        rows = session.execute(overdue_batches(now - timedelta(days=days)).where(
            Batch.overdue_flagged_at.is_(None))).all()  # type: ignore[union-attr]
        for batch, count in rows:
            batch.overdue_flagged_at = now
            session.add(batch)
            assert batch.delivered_at is not None
            notify.queue(
                session, claim=None, recipient_kind=notify.COUNTY, template="batch_overdue",
                payload={"batch_no": batch.batch_no, "days": days, "undecided": int(count),
                         "delivered_on": batch.delivered_at.astimezone(runtime.settings.tz)
                         .date().isoformat()},
                dedupe_key=f"batch_overdue:{batch.id}")
            flagged.append(batch.batch_no)
    return {"flagged": len(flagged), "batches": flagged}

"""The reminder jobs (SPEC §4): uncollected money, materials still missing, overdue batches.

A claim is reminded at most once per interval of each stay in the state it waits in: the
outbox's dedupe key names the event that began the stay and the interval, so running a job
twice, or from two processes, adds nothing, and a claim back in the state a second time is
reminded afresh. Days are counted between dates in the configured time zone (SPEC §4), so
two claims notified on the same day are reminded on the same day, whatever the hour.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from claims.db import session_scope
from claims.models import Batch, Claim, ClaimEvent
from claims.runtime import Runtime
from workflows import notify


def _days(name: str, default: int) -> int:
    return int(os.environ.get(f"MUTUALAID_{name}", default))


def _stays(session: Session, state: str, entered_by: Any, entered_before: datetime) -> list[Any]:
    """Claims in `state` with the event that began their stay there (the latest one
    `entered_by` matches), when that event is older than `entered_before`."""
    began = (sa.select(ClaimEvent.claim_id, sa.func.max(ClaimEvent.id).label("event_id"))
             .where(entered_by).group_by(ClaimEvent.claim_id).subquery())
    return list(session.execute(
        sa.select(Claim.id, Claim.documents, began.c.event_id, ClaimEvent.at)
        .join(began, began.c.claim_id == Claim.id)
        .join(ClaimEvent, ClaimEvent.id == began.c.event_id)
        .where(Claim.state == state, ClaimEvent.at < entered_before)
    ))


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant the day begins in the time zone."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def _remind(runtime: Runtime, *, job: str, state: str, entered_by: Any, first_day: int,
            every: int, today: date | None,
            extra: Callable[[Any, date], dict[str, Any]]) -> dict[str, int]:
    """Remind the unit of each claim waiting in `state` since `first_day` days or more, then
    every `every` days; the reminder of day n belongs to interval n // every."""
    tz = runtime.settings.tz
    today = today or runtime.today()
    queued = 0
    with session_scope(runtime.engine) as session:
        rows = _stays(session, state, entered_by,
                      local_midnight(today - timedelta(days=first_day - 1), tz))
        for row in rows:
            since = row.at.astimezone(tz).date()
            interval = (today - since).days // every
            message = notify.queue(
                session, claim=session.get(Claim, row.id), recipient_kind=notify.UNIT,
                template=job, payload=extra(row, since),
                dedupe_key=f"{job}:{row.id}:{row.event_id}:{interval}")
            queued += message is not None
    return {"due": len(rows), "queued": queued}


def remind_uncollected(runtime: Runtime, *, today: date | None = None) -> dict[str, int]:
    """Units are reminded of money notified but not collected on day 14 (and every 14 more)."""
    days = _days("REMIND_UNCOLLECTED_DAYS", 14)
    return _remind(
        runtime, job="remind_uncollected", state="notified",
        entered_by=ClaimEvent.event == "notify", first_day=days, every=days, today=today,
        extra=lambda _row, since: {"notified_on": since.isoformat()},
    )


def chase_materials(runtime: Runtime, *, today: date | None = None) -> dict[str, int]:
    """Units are reminded of claims waiting for materials for more than 30 days."""
    days = _days("CHASE_MATERIALS_DAYS", 30)
    return _remind(
        runtime, job="chase_materials", state="pending_materials",
        entered_by=sa.and_(ClaimEvent.to_state == "pending_materials",
                           ClaimEvent.from_state != "pending_materials"),
        first_day=days + 1, every=days, today=today,
        extra=lambda row, since: {
            "pending_since": since.isoformat(),
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

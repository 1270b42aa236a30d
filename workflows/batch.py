"""The weekly batch: seal every ready claim into this week's batch, deliver it (set-based SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.auth import Actor
from claims.models import Batch, Claim, ClaimEvent
from claims.runtime import Runtime
from workflows.errors import Conflict, Forbidden
from workflows.lifecycle import EVENTS_BY_NAME

SEAL = EVENTS_BY_NAME["seal"]
DELIVER = EVENTS_BY_NAME["deliver"]
_claims = Claim.__table__  # type: ignore[attr-defined]
_events = ClaimEvent.__table__  # type: ignore[attr-defined]
# One weekly batch run at a time across processes and hosts (PostgreSQL; SQLite's
# BEGIN IMMEDIATE already makes writers take turns).
_BATCH_LOCK_KEY = 0x6D7574_0001


# The manifest's columns (报送清单), in order: (key, Chinese header). The city office's
# decisions sheet has the same columns plus DECISION_COLUMNS; readers find columns by header.
MANIFEST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("claim_no", "理赔编号"),
    ("unit", "单位"),
    ("member_name", "姓名"),
    ("id_number_masked", "身份证号"),
    ("product", "险种"),
    ("cause", "出险原因"),
    ("incident_date", "出险日期"),
    ("admission_date", "入院日期"),
    ("discharge_date", "出院日期"),
    ("total_expense", "医疗总费用"),
    ("insurance_paid", "医保支付"),
    ("self_paid", "个人自付"),
    ("estimate", "预估互助金"),
    ("documents", "材料"),
)
DECISION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("outcome", "审核结果"),  # approved / rejected / returned, or 核准 / 不予赔付 / 退回
    ("approved_amount", "核准金额"),
    ("reason", "原因"),
)


@dataclass(frozen=True)
class SealResult:
    batch: Batch | None
    sealed: int  # claims sealed by this run (0: nothing was ready, no batch made)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _lock_batches(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BATCH_LOCK_KEY})


def open_batch_for(session: Session, week: str) -> Batch:
    """This week's batch while it is undelivered, else a new supplementary one (2026-W48-2)."""
    batches = session.exec(select(Batch).where(Batch.week == week).order_by(Batch.id)).all()
    for batch in batches:
        if batch.delivered_at is None:
            return batch
    batch_no = week if not batches else f"{week}-{len(batches) + 1}"
    batch = Batch(batch_no=batch_no, week=week)
    session.add(batch)
    session.flush()
    return batch


def _move_claims(session: Session, *, where: Any, values: dict[str, Any], event: str,
                 from_state: str, to_state: str, actor: Actor,
                 payload: dict[str, Any]) -> list[Any]:
    """UPDATE the claims in one statement, then write one audit event each in one more."""
    now = datetime.now(UTC)
    moved = session.execute(
        sa.update(_claims).where(where).values(
            state=to_state, version=_claims.c.version + 1, updated_at=now, **values)
        .returning(_claims.c.id, _claims.c.version, _claims.c.estimate)
        .execution_options(synchronize_session=False)
    ).all()
    if moved:
        session.execute(sa.insert(_events), [
            {"claim_id": row.id, "event": event, "from_state": from_state, "to_state": to_state,
             "version": row.version, "actor": actor.username, "at": now, "payload": payload}
            for row in moved
        ])
    return moved


def seal_weekly_batch(session: Session, runtime: Runtime, actor: Actor) -> SealResult:
    """Seal every `ready` claim into this week's open batch; never an empty batch."""
    _lock_batches(session)
    ready = _claims.c.state == SEAL.sources[0]
    if not session.execute(sa.select(sa.exists().where(ready))).scalar():
        return SealResult(batch=None, sealed=0)
    batch = open_batch_for(session, iso_week(runtime.today()))
    moved = _move_claims(
        session, where=ready, values={"batch_id": batch.id}, event=SEAL.name,
        from_state=SEAL.sources[0], to_state=SEAL.target or "", actor=actor,
        payload={"batch_no": batch.batch_no},
    )
    batch.claim_count += len(moved)
    batch.total_claimed += sum(row.estimate for row in moved)
    # The batch grew: its manifest must be written (and sent) again.
    batch.manifest_written_at = None
    batch.transmission_state = "pending"
    session.add(batch)
    session.flush()
    return SealResult(batch=batch, sealed=len(moved))


def deliver_batch(session: Session, batch: Batch, actor: Actor) -> int:
    """The batch went to the city office: every claim in it moves to `submitted` together."""
    if actor.role != "system" and actor.role not in DELIVER.roles:
        raise Forbidden("Your role may not deliver a batch.")
    if batch.delivered_at is not None:
        raise Conflict(f"Batch {batch.batch_no} was delivered already.",
                       code="batch_delivered")
    moved = _move_claims(
        session,
        where=sa.and_(_claims.c.batch_id == batch.id, _claims.c.state == DELIVER.sources[0]),
        values={}, event=DELIVER.name, from_state=DELIVER.sources[0],
        to_state=DELIVER.target or "", actor=actor, payload={"batch_no": batch.batch_no},
    )
    batch.delivered_at = datetime.now(UTC)
    session.add(batch)
    session.flush()
    return len(moved)

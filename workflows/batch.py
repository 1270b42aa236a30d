"""The weekly batch: seal every ready claim into this week's batch, write its manifest, transmit
it to the city office, deliver it (set-based SQL)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.auth import Actor, system_actor
from claims.db import session_scope
from claims.models import Batch, Claim, ClaimEvent, JSONType, UTCDateTime
from claims.money import format_fen
from claims.runtime import Runtime
from config.settings import Settings
from workflows.errors import Conflict, Forbidden
from workflows.lifecycle import EVENTS_BY_NAME

# The manifest's columns live with the manifest; importable from here as they always were.
from workflows.manifest import DECISION_COLUMNS as DECISION_COLUMNS
from workflows.manifest import MANIFEST_COLUMNS as MANIFEST_COLUMNS
from workflows.manifest import (
    ManifestFiles,
    current_manifest,
    manifest_on_disk,
    write_manifest,
)
from workflows.transmission import Transmission, TransmissionError, transmission_for

log = logging.getLogger("mutualaid.batch")

SEAL = EVENTS_BY_NAME["seal"]
DELIVER = EVENTS_BY_NAME["deliver"]
TRANSMISSION_ACTOR = "transmission"  # a successful smtp/http send delivers as job:transmission
_claims = Claim.__table__  # type: ignore[attr-defined]
_events = ClaimEvent.__table__  # type: ignore[attr-defined]
_AUDIT_COLUMNS = ("claim_id", "event", "from_state", "to_state", "version", "actor", "at",
                  "payload")
# One weekly batch run at a time across processes and hosts (PostgreSQL; SQLite's
# BEGIN IMMEDIATE already makes writers take turns). Deliveries take it too, so a batch never
# grows while it is delivered, and transmissions to lease a batch and to record the outcome,
# never across the send: a batch that grows while on its way is sent again.
_BATCH_LOCK_KEY = 0x6D7574_0001


@dataclass(frozen=True)
class SealResult:
    batch: Batch | None
    sealed: int  # claims sealed by this run (0: nothing was ready, no batch made)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def lock_batches(session: Session) -> None:
    """Take the batch lock until the transaction ends (PostgreSQL; SQLite writers take turns)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BATCH_LOCK_KEY})


# Claim events that change a batch's row (a return lowers its totals).
BATCH_EVENTS = frozenset({"return"})


def lock_batches_for(session: Session, event: str) -> None:
    """Before locking a claim for `event`: the batch lock first when the event changes a
    batch, as runs, deliveries and decisions take it. One order (batch, then claims) on every
    path: a return locking its claim and then the batch row, beside decisions locking the
    batch and then its claims, deadlocked (PostgreSQL ended one, answered 503)."""
    if event in BATCH_EVENTS:
        lock_batches(session)


def manifest_to_download(runtime: Runtime, batch: Batch) -> ManifestFiles:
    """The batch's manifest as on disk, or written now (in a transaction of its own, under the
    batch lock) when missing, older than the batch or not this database's."""
    files = manifest_on_disk(runtime, batch)
    if files is not None:
        return files
    with session_scope(runtime.engine) as session:
        lock_batches(session)
        fresh = session.get(Batch, batch.id)
        assert fresh is not None
        return current_manifest(session, runtime, fresh)


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
                 payload: dict[str, Any]) -> tuple[int, int]:
    """Move the claims `where` picks and write one audit event each, set-based, never a row in
    Python: returns how many moved and the sum of their estimates."""
    now = datetime.now(UTC)
    changes = {"state": to_state, "version": _claims.c.version + 1, "updated_at": now, **values}
    constants = (sa.literal(event), sa.literal(from_state), sa.literal(to_state))
    stamp = (sa.literal(actor.username), sa.literal(now, UTCDateTime()),
             sa.literal(payload, JSONType))
    if session.get_bind().dialect.name == "postgresql":
        # One statement: the UPDATE's RETURNING feeds the audit INSERT, so both see one set.
        moved = (sa.update(_claims).where(where).values(**changes)
                 .returning(_claims.c.id, _claims.c.version, _claims.c.estimate).cte("moved"))
        audit = sa.insert(_events).from_select(
            _AUDIT_COLUMNS, sa.select(moved.c.id, *constants, moved.c.version, *stamp)
        ).cte("audit")
        count, total = session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(moved.c.estimate), 0))
            .select_from(moved).add_cte(audit)
        ).one()
        return int(count), int(total)
    # SQLite runs one writer at a time and a stale snapshot cannot write, so these three
    # statements see the same claims.
    count, total = session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_claims.c.estimate), 0))
        .where(where)
    ).one()
    if count:
        session.execute(sa.insert(_events).from_select(
            _AUDIT_COLUMNS,
            sa.select(_claims.c.id, *constants, _claims.c.version + 1, *stamp).where(where)))
        session.execute(sa.update(_claims).where(where).values(**changes))
    return int(count), int(total)


def seal_weekly_batch(session: Session, runtime: Runtime, actor: Actor) -> SealResult:
    """Seal every `ready` claim into this week's open batch; never an empty batch."""
    lock_batches(session)
    ready = _claims.c.state == SEAL.sources[0]
    if not session.execute(sa.select(sa.exists().where(ready))).scalar():
        return SealResult(batch=None, sealed=0)
    batch = open_batch_for(session, iso_week(runtime.today()))
    sealed, total = _move_claims(
        session, where=ready, values={"batch_id": batch.id}, event=SEAL.name,
        from_state=SEAL.sources[0], to_state=SEAL.target or "", actor=actor,
        payload={"batch_no": batch.batch_no},
    )
    batch.claim_count += sealed
    batch.total_claimed += total
    # The batch grew: sealed as it now stands (the batch page's and the cover sheet's 装批
    # date), and its manifest must be written (and sent) again, now.
    batch.sealed_at = datetime.now(UTC)
    batch.manifest_written_at = None
    batch.transmission_state = "pending"
    batch.transmission_next_try_at = None
    session.add(batch)
    session.flush()
    return SealResult(batch=batch, sealed=sealed)


def deliver_batch(session: Session, batch: Batch, actor: Actor) -> int:
    """The batch went to the city office: every claim in it moves to `submitted` together."""
    if actor.role != "system" and actor.role not in DELIVER.roles:
        raise Forbidden("Your role may not deliver a batch.")
    if batch.delivered_at is not None:
        raise Conflict(f"Batch {batch.batch_no} was delivered already.",
                       code="batch_delivered")
    moved, _total = _move_claims(
        session,
        where=sa.and_(_claims.c.batch_id == batch.id, _claims.c.state == DELIVER.sources[0]),
        values={}, event=DELIVER.name, from_state=DELIVER.sources[0],
        to_state=DELIVER.target or "", actor=actor, payload={"batch_no": batch.batch_no},
    )
    batch.delivered_at = datetime.now(UTC)
    session.add(batch)
    session.flush()
    return moved


def totals_by_state(session: Session, batch_id: int) -> dict[str, dict[str, int]]:
    """The batch's claims by state: {state: {count, total_estimate (fen)}}."""
    rows = session.execute(
        sa.select(_claims.c.state, sa.func.count(), sa.func.sum(_claims.c.estimate))
        .where(_claims.c.batch_id == batch_id).group_by(_claims.c.state)
        .order_by(_claims.c.state)
    )
    return {state: {"count": int(count), "total_estimate": int(total or 0)}
            for state, count, total in rows}


# --- the weekly run: seal, manifest, transmission, each step its own transaction --------


def run_weekly_batch(runtime: Runtime, actor: Actor) -> dict[str, Any]:
    """Seal the ready claims, write the manifests that are missing, transmit what is due.

    Each step commits on its own, so a failed transmission never undoes the seal, and a run
    after a crash finishes what the crashed one left (safe to run twice)."""
    with session_scope(runtime.engine) as session:
        result = seal_weekly_batch(session, runtime, actor)
        batch = result.batch
        summary: dict[str, Any] = {
            "batch_no": batch.batch_no if batch else None, "sealed": result.sealed,
            "claim_count": batch.claim_count if batch else 0,
            "total_claimed": format_fen(batch.total_claimed if batch else 0),
        }
    written = write_missing_manifests(runtime)
    summary["manifests_written"] = written
    summary["transmission"] = transmit_due_batches(runtime)
    if batch is not None:
        summary["batch_transmission"] = sealed_batch_transmission(
            runtime, batch.batch_no, summary["transmission"])
    log.info("weekly batch batch=%s sealed=%s manifests=%s transmission=%s",
             summary["batch_no"], result.sealed, written, summary["transmission"])
    return summary


def sealed_batch_transmission(runtime: Runtime, batch_no: str,
                              transmitted: dict[str, list[str]]) -> str:
    """How the transmission of the batch this run sealed stands: a run at the same time may
    have sent it, or be sending it, leaving this run's own lists empty."""
    for outcome in ("sent", "failed"):
        if batch_no in transmitted[outcome]:
            return outcome
    with session_scope(runtime.engine, write=False) as session:
        batch = session.exec(select(Batch).where(Batch.batch_no == batch_no)).one()
    if batch.transmission_state == "sent":
        return "sent by another run"
    if batch.delivered_at is not None:
        return "delivered"
    return "in another run's hands"  # being sent there, or failed there and due again later


def write_missing_manifests(runtime: Runtime) -> list[str]:
    """Write the manifest of every undelivered batch that lacks a current one."""
    with session_scope(runtime.engine, write=False) as session:
        ids = session.exec(
            select(Batch.id).where(Batch.delivered_at.is_(None),  # type: ignore[union-attr]
                                   Batch.manifest_written_at.is_(None),  # type: ignore[union-attr]
                                   Batch.claim_count > 0).order_by(Batch.id)
        ).all()
    written: list[str] = []
    for batch_id in ids:
        with session_scope(runtime.engine) as session:
            lock_batches(session)
            batch = session.get(Batch, batch_id)
            if batch is None or batch.delivered_at is not None or batch.manifest_written_at:
                continue
            write_manifest(session, runtime, batch)
            written.append(batch.batch_no)
    return written


def backoff_seconds(settings: Settings, attempts: int) -> int:
    """1, 2, 4 ... times the base delay after each failed attempt, capped."""
    base, cap = settings.transmission_backoff_seconds, settings.transmission_backoff_cap_seconds
    return int(min(base * 2 ** max(attempts - 1, 0), cap))


def _due(batch: Batch, now: datetime) -> bool:
    return (batch.delivered_at is None and batch.claim_count > 0
            and batch.transmission_state != "sent"
            and (batch.transmission_next_try_at is None or batch.transmission_next_try_at <= now))


def transmission_lease(settings: Settings) -> timedelta:
    """How long a batch taken for sending is left to its sender: longer than any send can
    take (each step of an SMTP conversation may wait the whole timeout), so another run sends
    it only when the first one died."""
    return timedelta(seconds=max(300.0, 10 * settings.transmission_timeout))


@dataclass(frozen=True)
class Outgoing:
    """A batch taken for sending: the batch as it stood when leased (detached: what the
    transport reads, and the lease's attempt and claim count), its transport and manifest."""

    batch: Batch
    transport: Transmission
    files: ManifestFiles


def _take(runtime: Runtime, batch_id: int, now: datetime) -> Outgoing | None:
    """Lease a due batch for sending, in a short transaction of its own: its manifest made
    current, its attempt counted, its next try pushed past the lease. None when not due."""
    with session_scope(runtime.engine) as session:
        lock_batches(session)
        batch = session.get(Batch, batch_id)
        if batch is None or not _due(batch, now):
            return None
        files = current_manifest(session, runtime, batch)
        transport = transmission_for(runtime)
        batch.transmission = transport.name
        batch.transmission_attempts += 1
        batch.transmission_next_try_at = datetime.now(UTC) + transmission_lease(runtime.settings)
        session.add(batch)
        session.flush()
        return Outgoing(batch=batch, transport=transport, files=files)


def _record_transmission(runtime: Runtime, outgoing: Outgoing, where: str | None,
                         error: str | None) -> str | None:
    """Record how the send went, in a short transaction of its own: "sent", "failed", or
    None when the outcome no longer stands (another run took the batch over after the
    lease, or claims joined it meanwhile: its new manifest is due now)."""
    sent = outgoing.batch
    with session_scope(runtime.engine) as session:
        lock_batches(session)
        batch = session.get(Batch, sent.id)
        if batch is None or batch.transmission_attempts != sent.transmission_attempts:
            return None
        if batch.claim_count != sent.claim_count:
            log.info("transmission superseded batch=%s: claims joined it while its manifest "
                     "was on its way", batch.batch_no)
            batch.transmission_next_try_at = datetime.now(UTC)  # its new manifest: due now
            session.add(batch)
            return None
        if error is not None:
            delay = backoff_seconds(runtime.settings, batch.transmission_attempts)
            batch.transmission_state, batch.transmission_error = "failed", error[:500]
            batch.transmission_next_try_at = datetime.now(UTC) + timedelta(seconds=delay)
            session.add(batch)
            log.warning("transmission failed batch=%s via=%s attempt=%s retry_in=%ss error=%s",
                        batch.batch_no, outgoing.transport.name, batch.transmission_attempts,
                        delay, batch.transmission_error)
            return "failed"
        batch.transmission_state, batch.transmitted_at = "sent", datetime.now(UTC)
        batch.transmission_error = batch.transmission_next_try_at = None
        session.add(batch)
        # A clerk may have recorded deliver while the manifest was on its way.
        if outgoing.transport.delivers and batch.delivered_at is None:
            deliver_batch(session, batch, system_actor(TRANSMISSION_ACTOR))
        log.info("transmission sent batch=%s via=%s to=%s", batch.batch_no,
                 outgoing.transport.name, where)
        return "sent"


def transmit_batch(runtime: Runtime, batch_id: int, *, now: datetime | None = None) -> str | None:
    """Send one due batch: "sent", "failed", or None when it is not due (or the outcome no
    longer stands).

    The batch is leased in one short transaction, sent with none open (a slow mail server or
    endpoint holds up no other writer), and the outcome recorded in another; the lease keeps
    other runs from sending it meanwhile, and a batch marked sent (or delivered) is never
    sent again."""
    outgoing = _take(runtime, batch_id, now or datetime.now(UTC))
    if outgoing is None:
        return None
    try:
        where = outgoing.transport.send(outgoing.batch, outgoing.files)
    except TransmissionError as failure:
        return _record_transmission(runtime, outgoing, None, str(failure))
    return _record_transmission(runtime, outgoing, where, None)


def transmit_due_batches(runtime: Runtime) -> dict[str, list[str]]:
    """Send every undelivered batch whose transmission is pending or due again, each leased
    and recorded in transactions of its own: {"sent": [batch_no, ...], "failed": [...]}."""
    now = datetime.now(UTC)
    with session_scope(runtime.engine, write=False) as session:
        candidates = session.exec(
            select(Batch).where(Batch.delivered_at.is_(None),  # type: ignore[union-attr]
                                Batch.transmission_state != "sent").order_by(Batch.id)
        ).all()
        due = [(b.id, b.batch_no) for b in candidates if _due(b, now)]
    summary: dict[str, list[str]] = {"sent": [], "failed": []}
    for batch_id, batch_no in due:
        assert batch_id is not None
        outcome = transmit_batch(runtime, batch_id, now=now)
        if outcome is not None:
            summary[outcome].append(batch_no)
    return summary

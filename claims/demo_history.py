"""The demo county's past year: claims logged week by week, then carried on through the
weekly batches, the city office's decisions, remittances, notices and collection.

Logging and verifying go through the real workflow (claims/demo.py). The later stages are
written here in bulk, as the workflow would have written them on the days they happened:
one audit event per step with the next version, batches per ISO week, one remittance per
day the money came, so every report and chart has a year to show. Doing these steps one
claim at a time through `fire` would take the demo past ten seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from claims.idcard import mask
from claims.models import Batch, Claim, ClaimEvent, Member, Remittance, RemittanceItem
from claims.money import format_fen
from claims.runtime import Runtime
from workflows.batch import iso_week
from workflows.payout import queue_payout_notices

RETURN_REASON = "市总审核：请补充医院盖章的费用明细清单"
REJECT_REASONS = ("不属于互助保障范围（既往病史）", "已超过理赔申请时效",
                  "费用已由其他保障全额报销")
ONSITE_PLACE = "单位职工之家会议室"


@dataclass
class Path:
    """One claim's later life: the audit rows and the columns it ends with."""

    claim: Claim
    state: str
    version: int
    member: Member | None = None
    notice: str | None = None  # money in today: the payout notices wait in the outbox
    events: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def step(self, event: str, to_state: str, at: datetime, actor: str = "clerk",
             **payload: Any) -> None:
        self.version += 1
        self.events.append({"claim_id": self.claim.id, "event": event, "from_state": self.state,
                            "to_state": to_state, "version": self.version, "actor": actor,
                            "at": at, "payload": payload})
        self.state = to_state


@dataclass
class Ledger:
    """What the past year adds beside the claims: batches and remittances by day."""

    runtime: Runtime
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    remittances: dict[date, list[tuple[Claim, int]]] = field(default_factory=dict)
    receipts: int = 0

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        """The county's wall-clock time on `day`, as UTC."""
        local = datetime.combine(day, time(hour, minute), tzinfo=self.runtime.settings.tz)
        return local.astimezone(UTC)


def _approved_amount(rng: random.Random, estimate: int) -> int:
    """The city office mostly agrees to the fen; sometimes less, now and then more."""
    roll = rng.random()
    if roll < 0.12:
        return max(100, round(estimate * rng.uniform(0.8, 0.95) / 100) * 100)
    if roll < 0.18:
        return estimate + rng.randint(5, 30) * 1000
    return estimate


def carry_on(rng: random.Random, claim: Claim, member: Member, ledger: Ledger,
             last: date, stop: str | None = None) -> Path:
    """Move a ready claim through the stages whose day has come (up to `last`), or until it
    reaches the state `stop`."""
    path = Path(claim, claim.state, claim.version or 1, member)
    at, settings = ledger.at, ledger.runtime.settings
    sealed = claim.logged_on + timedelta(days=7 - claim.logged_on.weekday())  # next Monday
    if sealed > last:
        return path
    week = iso_week(sealed)
    batch = ledger.batches.setdefault(week, {"sealed_at": at(sealed, 9), "delivered_at": None,
                                             "claims": []})
    path.step("seal", "batched", at(sealed, 9), "job:weekly_batch", batch_no=week)
    batch["claims"].append(path)
    if sealed >= last - timedelta(days=6):  # the newest batch waits for its paper materials
        return path
    batch["delivered_at"] = at(sealed + timedelta(days=1), 10)
    path.step("deliver", "submitted", batch["delivered_at"], batch_no=week)
    if stop == path.state:
        return path
    decided = sealed + timedelta(days=rng.randint(15, 36))
    if decided > last:
        return path
    roll = 1.0 if stop else rng.random()
    if roll < 0.04:
        document = claim.documents[0]["code"]
        path.values["documents"] = [
            {**doc, "status": "rejected", "reason": RETURN_REASON} if doc["code"] == document
            else doc for doc in claim.documents]
        path.values |= {"batch_id": None, "last_reason": RETURN_REASON}
        batch["claims"].remove(path)
        path.step("return", "pending_materials", at(decided, 15), reason=RETURN_REASON,
                  documents=[document], batch_no=week)
        return path
    if roll < 0.11:
        reason = rng.choice(REJECT_REASONS)
        path.values["last_reason"] = reason
        path.step("reject", "rejected", at(decided, 15), reason=reason)
        return path
    amount = _approved_amount(rng, claim.estimate)
    above = amount > claim.estimate
    path.values |= {"approved_amount": amount, "approved_on": decided, "above_estimate": above}
    path.step("approve", "approved", at(decided, 15), amount=format_fen(amount),
              above_estimate=above)
    if stop == path.state:
        return path
    received = decided + timedelta(days=rng.randint(6, 20))
    if received > last - timedelta(days=7) or stop == "funds_received":
        if decided > last - timedelta(days=7):
            return path
        received = last + timedelta(days=1)  # this morning: the notices are not out yet
        path.notice = f"SZGH-HZ-{received:%Y%m%d}"
    ledger.remittances.setdefault(received, []).append((claim, amount))
    path.step("receive_funds", "funds_received", at(received, 9), amount=format_fen(amount))
    if path.notice:
        return path
    told = received + timedelta(days=rng.choice((0, 1)))
    if told > last:
        return path
    path.step("notify", "notified", at(told, 16), "job:dispatch_notifications")
    if stop == path.state:
        return path
    collect_on = told + timedelta(days=rng.randint(2, 24))
    if amount >= settings.onsite_threshold_fen:
        collect_on = told + timedelta(days=rng.randint(7, 14))
        if stop == "onsite_scheduled":  # the meeting is still to come
            collect_on = last + timedelta(days=rng.randint(4, 10))
        path.values |= {"onsite_date": collect_on, "onsite_place": ONSITE_PLACE}
        path.step("schedule_onsite", "onsite_scheduled", at(told + timedelta(days=1), 10),
                  date=collect_on.isoformat(), place=ONSITE_PLACE)
    if collect_on > last or rng.random() < 0.04:  # a few workers are slow to come
        return path
    ledger.receipts += 1
    receipt = f"SJ{collect_on:%Y%m%d}-{ledger.receipts:04d}"
    identity = claim.beneficiary_id_number if claim.death else member.id_number
    path.values |= {"paid_amount": amount, "receipt_no": receipt, "collected_on": collect_on}
    path.step("collect", "collected", at(collect_on, 10, 30), amount=format_fen(amount),
              receipt_no=receipt, identity=mask(identity), proxy_name=None,
              proxy_reference=None)
    return path


_CLAIM_COLUMNS = ("state", "version", "batch_id", "documents", "approved_amount", "approved_on",
                  "above_estimate", "last_reason", "paid_amount", "receipt_no", "collected_on",
                  "onsite_date", "onsite_place", "logged_at", "updated_at")


def write_history(session: Session, ledger: Ledger, paths: list[Path],
                  logged_at: Callable[[Claim], datetime]) -> None:
    """Write the batches, remittances, audit rows and claims' final columns, in bulk."""
    batch_ids: dict[str, int] = {}
    for week, batch in sorted(ledger.batches.items()):
        row = Batch(batch_no=week, week=week, sealed_at=batch["sealed_at"],
                    delivered_at=batch["delivered_at"], claim_count=len(batch["claims"]),
                    total_claimed=sum(p.claim.estimate for p in batch["claims"]),
                    transmission_state="sent", transmitted_at=batch["sealed_at"])
        session.add(row)
        session.flush()
        assert row.id is not None
        batch_ids[week] = row.id
        for path in batch["claims"]:
            path.values["batch_id"] = row.id
    for day, items in sorted(ledger.remittances.items()):
        remittance = Remittance(reference=f"SZGH-HZ-{day:%Y%m%d}", received_on=day,
                                total_amount=sum(amount for _, amount in items),
                                recorded_by="clerk", recorded_at=ledger.at(day, 11))
        session.add(remittance)
        session.flush()
        session.add_all([RemittanceItem(remittance_id=remittance.id, claim_id=claim.id,
                                        amount=amount) for claim, amount in items])
    session.flush()
    session.expunge_all()  # the claims are rewritten below, past the ORM's version check
    for path in paths:
        if path.notice and path.member is not None:
            path.claim.approved_amount = path.values["approved_amount"]  # detached: no flush
            queue_payout_notices(session, ledger.runtime, path.claim, path.member, path.notice)
    table, events = Claim.__table__, ClaimEvent.__table__  # type: ignore[attr-defined]
    # The events written so far (log, verify, ...) happened on the logging day, not now.
    session.execute(sa.update(events).where(events.c.claim_id == sa.bindparam("cid"))
                    .values(at=sa.bindparam("stamp")),
                    [{"cid": p.claim.id, "stamp": logged_at(p.claim)} for p in paths])
    rows = [event for path in paths for event in path.events]
    if rows:
        session.execute(sa.insert(events), rows)
    updates = []
    for path in paths:
        claim = path.claim
        current = {name: getattr(claim, name) for name in _CLAIM_COLUMNS}
        stamp = logged_at(claim)
        last = path.events[-1]["at"] if path.events else stamp
        updates.append({"cid": claim.id} | current | path.values | {
            "state": path.state, "version": path.version, "logged_at": stamp,
            "updated_at": last})
    session.execute(sa.update(table).where(table.c.id == sa.bindparam("cid"))
                    .values({name: sa.bindparam(f"v_{name}") for name in _CLAIM_COLUMNS}),
                    [{"cid": u.pop("cid")} | {f"v_{k}": v for k, v in u.items()}
                     for u in updates])

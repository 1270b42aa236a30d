"""Money out: the city office's decisions on a batch, and remittances received (SPEC §3, §4).

Both are all-or-none: every row is checked (and fired in its own SAVEPOINT, so one bad row
does not hide the next), every bad row is listed in one RuleFailed, and nothing is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from claims.auth import Actor
from claims.models import Batch, Claim, Member, Remittance
from claims.models import RemittanceItem as RemittanceItemRow
from claims.money import format_fen
from claims.runtime import Runtime
from workflows import notify
from workflows.batch import lock_batches
from workflows.errors import Conflict, FieldError, Forbidden, RuleFailed
from workflows.lifecycle import BY_REMITTANCE, EVENTS_BY_NAME, STATES
from workflows.transitions import fire

# The city office's word for each decision, and the §3 event that records it.
OUTCOME_EVENTS: dict[str, str] = {"approved": "approve", "rejected": "reject",
                                  "returned": "return"}
REASON_MAX = 200  # the claim keeps the last reason in 200 characters (SPEC §7 text)
# States a claim is in once its remittance was recorded: a second one names the right reason.
RECEIVED = frozenset({"funds_received", "notified", "onsite_scheduled", "collected"})
MAX_DECISIONS = 5000  # far above any weekly batch; bounds the work one upload can ask for
# What the worker brings to collect (SPEC §1: paid in full, identity checked).
BRING = "身份证原件; 代领需授权委托书"
BRING_BENEFICIARY = "受益人身份证原件; 代领需授权委托书"
# An error fire() names by its event field, named here by the decision's field.
_DECISION_FIELD = {"amount": "approved_amount", "reason": "reason",
                   "reason_code": "reason_code", "documents": "documents"}


@dataclass(frozen=True)
class Decision:
    """One city-office decision on one claim, as read from JSON or from a spreadsheet row."""

    claim_no: str | None
    outcome: str | None  # approved / rejected / returned
    approved_amount: int | None  # fen
    reason: str | None
    where: str  # how errors name the row: "decisions.3" (JSON, from 0) or "rows.7" (sheet row)
    labels: Mapping[str, str] = field(default_factory=dict)  # field -> its name in errors
    problems: tuple[FieldError, ...] = ()  # found while reading the row, e.g. a bad amount cell
    reason_code: str | None = None  # config/reasons.toml; its label stands in for a reason
    documents: tuple[str, ...] = ()  # returned: the documents the city office sends back

    def name_of(self, key: str) -> str:
        """The error field for `key` of this row: decisions.3.approved_amount, rows.7.核准金额."""
        return f"{self.where}.{self.labels.get(key, key)}"


@dataclass(frozen=True)
class RemittanceLine:
    """One item of a remittance: the money received for one claim."""

    claim_no: str
    amount: int  # fen


def _require_role(actor: Actor, event: str) -> None:
    if actor.role != "system" and actor.role not in EVENTS_BY_NAME[event].roles:
        raise Forbidden(f"Your role may not record '{event}'.")


def _claims_by_no(session: Session, claim_nos: Iterable[str]) -> dict[str, tuple[Claim, Member]]:
    """The claims named, each with its member, locked for this transaction (in id order)."""
    wanted = sorted(set(claim_nos))
    if not wanted:
        return {}
    query = (select(Claim, Member).join(Member, col(Member.id) == Claim.member_id)
             .where(col(Claim.claim_no).in_(wanted)).order_by(col(Claim.id))
             .with_for_update(of=Claim).execution_options(populate_existing=True))
    return {claim.claim_no: (claim, member) for claim, member in session.exec(query)}


# --- decisions -----------------------------------------------------------------------------


def apply_decisions(session: Session, runtime: Runtime, batch: Batch,
                    decisions: Sequence[Decision], actor: Actor) -> int:
    """Approve, reject or return claims of a delivered batch; all rows or none (422 listing all)."""
    _require_role(actor, "approve")
    if not decisions:
        raise RuleFailed("No decisions were given.",
                         [FieldError("decisions", "required", "Give at least one decision.")])
    if len(decisions) > MAX_DECISIONS:
        raise RuleFailed("Too many decisions in one upload.",
                         [FieldError("decisions", "too_many",
                                     f"At most {MAX_DECISIONS} decisions at once.")])
    # One decisions upload per batch at a time: returns lower the batch's totals. The batch
    # lock first, as deliveries and single returns take it: one lock order, no deadlock.
    lock_batches(session)
    session.refresh(batch, with_for_update=True)
    claims = _claims_by_no(session, (d.claim_no for d in decisions if d.claim_no))
    first_row: dict[str, str] = {}
    errors: list[FieldError] = []
    with session.begin_nested():  # everything or nothing, whatever the caller does next
        for decision in decisions:
            row_errors = _check_decision(decision)
            found = claims.get(decision.claim_no) if decision.claim_no else None
            claim = found[0] if found else None
            row_errors += _check_claim(decision, claim, batch, first_row)
            if not row_errors and claim is not None:
                row_errors = _fire_decision(session, runtime, decision, claim, actor)
            errors += row_errors
        if errors:
            rows = len({e.field.rsplit(".", 1)[0] for e in errors if e.field})
            raise RuleFailed(f"{rows} row(s) cannot be applied; no decision was recorded.",
                             errors)
    return len(decisions)


def _check_decision(decision: Decision) -> list[FieldError]:
    """The rules one row must keep on its own: outcome, amount and reason fit together."""
    errors: list[FieldError] = []
    if not decision.claim_no:
        errors.append(FieldError(decision.name_of("claim_no"), "required",
                                 "The claim number is missing."))
    outcome, amount, reason = decision.outcome, decision.approved_amount, decision.reason
    if outcome is None:
        errors.append(FieldError(decision.name_of("outcome"), "required",
                                 "The outcome is missing: approved, rejected or returned."))
    elif outcome not in OUTCOME_EVENTS:
        errors.append(FieldError(decision.name_of("outcome"), "invalid_choice",
                                 f"'{outcome}' is no outcome: approved (核准), rejected "
                                 "(不予赔付) or returned (退回)."))
    elif outcome == "approved":
        if amount is None:
            errors.append(FieldError(decision.name_of("approved_amount"), "required",
                                     "An approved claim needs its approved amount."))
        elif amount <= 0:
            errors.append(FieldError(decision.name_of("approved_amount"), "amount_not_positive",
                                     "The approved amount must be above 0."))
    else:
        if amount is not None:
            errors.append(FieldError(decision.name_of("approved_amount"), "not_applicable",
                                     f"An approved amount does not apply to a {outcome} claim."))
        if not (reason or "").strip() and not decision.reason_code:
            errors.append(FieldError(decision.name_of("reason"), "required",
                                     f"A {outcome} claim needs a reason (or a reason code)."))
    if decision.documents and outcome != "returned":
        errors.append(FieldError(decision.name_of("documents"), "not_applicable",
                                 "Documents are sent back with a returned claim only."))
    if outcome == "approved" and decision.reason_code:
        errors.append(FieldError(decision.name_of("reason_code"), "not_applicable",
                                 "A reason code is for rejected and returned claims."))
    if reason is not None and len(reason) > REASON_MAX:
        errors.append(FieldError(decision.name_of("reason"), "too_long",
                                 f"At most {REASON_MAX} characters."))
    # A cell that could not be read is reported once, as read, not again as missing.
    unreadable = {p.field for p in decision.problems}
    return list(decision.problems) + [e for e in errors if e.field not in unreadable]


def _check_claim(decision: Decision, claim: Claim | None, batch: Batch,
                 first_row: dict[str, str]) -> list[FieldError]:
    """The claim exists, is decided once in this upload, is in this batch and awaits a decision."""
    if not decision.claim_no:
        return []
    name = decision.name_of("claim_no")
    if decision.claim_no in first_row:
        return [FieldError(name, "duplicate_claim",
                           f"Claim {decision.claim_no} is decided twice (also in "
                           f"{first_row[decision.claim_no]}).")]
    first_row[decision.claim_no] = decision.where
    if claim is None:
        return [FieldError(name, "unknown_claim", f"No claim {decision.claim_no}.")]
    if claim.batch_id != batch.id:
        return [FieldError(name, "not_in_batch",
                           f"Claim {claim.claim_no} is not in batch {batch.batch_no}.")]
    if claim.state != "submitted":
        return [FieldError(name, "not_submitted",
                           f"Claim {claim.claim_no} is {claim.state} ({STATES[claim.state]}), "
                           "not awaiting the city office's decision.")]
    return []


def _fire_decision(session: Session, runtime: Runtime, decision: Decision, claim: Claim,
                   actor: Actor) -> list[FieldError]:
    """Fire the row's event in its own SAVEPOINT; its refusal comes back as the row's errors."""
    assert decision.outcome is not None
    reason = (decision.reason or "").strip() or None
    fields: dict[str, Any] = {"reason": reason}
    if decision.outcome == "approved":
        fields["amount"] = decision.approved_amount
    else:
        fields["reason_code"] = decision.reason_code
    if decision.outcome == "returned":
        fields["documents"] = list(decision.documents)
    try:
        with session.begin_nested():
            fire(session, runtime, claim, OUTCOME_EVENTS[decision.outcome], actor, fields)
    except (RuleFailed, Conflict) as error:
        refusals = error.errors or [FieldError(None, error.code, error.message)]
        return [FieldError(decision.name_of(_DECISION_FIELD.get(e.field or "", "claim_no")),
                           e.code, e.message) for e in refusals]
    return []


# --- remittances ---------------------------------------------------------------------------


def record_remittance(session: Session, runtime: Runtime, *, reference: str, received_on: date,
                      total_amount: int, items: Sequence[RemittanceLine],
                      actor: Actor) -> Remittance:
    """Record money received: each item's claim moves to funds_received and its notices queue."""
    _require_role(actor, "receive_funds")
    taken = select(Remittance.id).where(Remittance.reference == reference)
    if session.exec(taken).first() is not None:
        raise _duplicate_reference(reference)
    with session.begin_nested():  # a refusal below takes the remittance row back with it
        # The reference is written before the claims are locked: the same remittance posted
        # twice at once waits here on the first, and is told it is a duplicate (409), not
        # that its claims' money was received already (422).
        remittance = Remittance(reference=reference, received_on=received_on,
                                total_amount=total_amount, recorded_by=actor.username)
        session.add(remittance)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # another clerk recorded the same reference a moment ago
            raise _duplicate_reference(reference) from None
        claims = _claims_by_no(session, (line.claim_no for line in items))
        errors = _check_remittance(runtime, received_on, total_amount, items, claims,
                                   _delivered_on(session, runtime, claims.values()))
        if errors:
            raise RuleFailed("The remittance does not reconcile; nothing was recorded.", errors)
        assert remittance.id is not None
        for line in items:
            claim, member = claims[line.claim_no]
            assert claim.id is not None
            session.add(RemittanceItemRow(remittance_id=remittance.id, claim_id=claim.id,
                                          amount=line.amount))
            fire(session, runtime, claim, "receive_funds", actor, {"amount": line.amount},
                 door=BY_REMITTANCE)
            queue_payout_notices(session, runtime, claim, member, reference)
        session.flush()
    return remittance


def _duplicate_reference(reference: str) -> Conflict:
    message = f"Remittance {reference} is recorded already."
    return Conflict(message, [FieldError("reference", "duplicate_reference", message)],
                    code="duplicate_reference")


def _delivered_on(session: Session, runtime: Runtime,
                  claims: Iterable[tuple[Claim, Member]]) -> dict[int, date]:
    """The day (in the configured time zone) each claim's batch reached the city office."""
    batch_ids = {claim.batch_id for claim, _member in claims if claim.batch_id is not None}
    if not batch_ids:
        return {}
    rows = session.exec(select(Batch.id, Batch.delivered_at)
                        .where(col(Batch.id).in_(batch_ids),
                               col(Batch.delivered_at).is_not(None))).all()
    return {batch_id: at.astimezone(runtime.settings.tz).date()
            for batch_id, at in rows if batch_id is not None and at is not None}


def _check_remittance(runtime: Runtime, received_on: date, total_amount: int,
                      items: Sequence[RemittanceLine],
                      claims: Mapping[str, tuple[Claim, Member]],
                      delivered_on: Mapping[int, date]) -> list[FieldError]:
    """Every reason the remittance cannot be applied, each naming its field."""
    errors: list[FieldError] = []
    if received_on > runtime.today():
        errors.append(FieldError("received_on", "date_in_future",
                                 "The money cannot be received after today."))
    if not items:
        errors.append(FieldError("items", "required", "A remittance pays at least one claim."))
    first_item: dict[str, int] = {}
    for index, line in enumerate(items):
        name = f"items.{index}"
        if line.claim_no in first_item:
            errors.append(FieldError(f"{name}.claim_no", "duplicate_claim",
                                     f"Claim {line.claim_no} is paid twice (also item "
                                     f"{first_item[line.claim_no]})."))
            continue
        first_item[line.claim_no] = index
        found = claims.get(line.claim_no)
        if found is None:
            errors.append(FieldError(f"{name}.claim_no", "unknown_claim",
                                     f"No claim {line.claim_no}."))
            continue
        claim = found[0]
        if claim.state in RECEIVED:
            errors.append(FieldError(f"{name}.claim_no", "already_received",
                                     f"Claim {claim.claim_no}'s money was already received "
                                     f"({STATES[claim.state]})."))
        elif claim.state != "approved":
            errors.append(FieldError(f"{name}.claim_no", "not_approved",
                                     f"Claim {claim.claim_no} is {claim.state} "
                                     f"({STATES[claim.state]}), not approved."))
        elif line.amount != claim.approved_amount:
            errors.append(FieldError(f"{name}.amount", "amount_mismatch",
                                     f"{format_fen(line.amount)} received, but "
                                     f"{format_fen(claim.approved_amount)} was approved."))
        delivered = delivered_on.get(claim.batch_id) if claim.batch_id is not None else None
        if delivered is not None and received_on < delivered:
            # The city office cannot pay a claim it did not have yet: a mistyped date (it
            # would also read as money waiting since that day in the reports).
            errors.append(FieldError("received_on", "before_delivery",
                                     f"Claim {claim.claim_no} reached the city office on "
                                     f"{delivered.isoformat()}; its money cannot have been "
                                     f"received on {received_on.isoformat()}."))
    paid = sum(line.amount for line in items)
    if items and paid != total_amount:
        errors.append(FieldError("total_amount", "total_mismatch",
                                 f"The items add up to {format_fen(paid)}, not "
                                 f"{format_fen(total_amount)}."))
    return errors


def queue_payout_notices(session: Session, runtime: Runtime, claim: Claim, member: Member,
                         reference: str | None = None) -> None:
    """Tell the unit union (and the worker) where and when to collect; no ID number in them."""
    settings = runtime.settings
    payload: dict[str, Any] = {
        "claim_no": claim.claim_no,
        "member_name": member.name,
        "amount": format_fen(claim.approved_amount),
        "collection_place": settings.collection_place,
        "collection_hours": settings.collection_hours,
        "bring": BRING_BENEFICIARY if claim.death else BRING,
        "remittance": reference,
    }
    if claim.death:
        # The beneficiary collects; a message to the late member's phone helps nobody.
        payload["beneficiary_name"] = claim.beneficiary_name
    notify.queue(session, claim=claim, recipient_kind=notify.UNIT, template="funds_received",
                 payload=payload)
    if not claim.death:
        notify.queue(session, claim=claim, recipient_kind=notify.WORKER,
                     template="funds_received_worker", payload=payload)

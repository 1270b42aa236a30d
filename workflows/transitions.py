"""fire(): guard, move, audit, outbox, all in the caller's one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, select

from claims.auth import Actor
from claims.idcard import mask
from claims.models import Batch, Claim, ClaimEvent, Member
from claims.money import format_fen
from claims.rules import document_statuses, eligibility, missing_documents
from claims.runtime import Runtime
from config.catalogue import Product
from workflows import notify
from workflows.errors import (
    Conflict,
    FieldError,
    Forbidden,
    RuleFailed,
    TransitionNotAllowed,
    VersionMismatch,
)
from workflows.facts import (
    claim_facts,
    coverage_on,
    current_estimate,
    earlier_duplicate,
    other_live_claim,
    paid_on_product,
)
from workflows.lifecycle import (
    BY_CLAIM,
    EVENTS_BY_NAME,
    LOG_EVENT,
    ClaimLifecycle,
    EventSpec,
    allowed_events,
)
from workflows.reasons import record_reason_code, with_reason_code


@dataclass
class Firing:
    """One event being fired: what the guard and effect of an event get to work with."""

    session: Session
    runtime: Runtime
    claim: Claim
    spec: EventSpec
    actor: Actor
    fields: dict[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def product(self) -> Product:
        product = self.runtime.catalogue.get(self.claim.product_code)
        if product is None:  # the catalogue lost a product that claims still use
            raise RuleFailed("The claim's product is no longer in the catalogue.",
                             [FieldError(None, "unknown_product", self.claim.product_code)])
        return product


def _refuse(field_name: str | None, code: str, message: str) -> RuleFailed:
    return RuleFailed(message, [FieldError(field_name, code, message)])


def _blank(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def check_fields(spec: EventSpec, fields: dict[str, Any]) -> None:
    """Every field the event needs is there; none it does not take is (SPEC §7 'does not apply')."""
    errors = [
        FieldError(name, "not_applicable", f"'{name}' does not apply to {spec.name}.")
        for name, value in fields.items()
        if value is not None and name not in spec.required + spec.optional
    ]
    errors += [
        FieldError(name, "required", "Missing data for required field.")
        for name in spec.required
        if _blank(fields.get(name))
    ]
    if errors:
        raise RuleFailed("The event has invalid fields.", errors)


def fire(session: Session, runtime: Runtime, claim: Claim, event: str, actor: Actor,
         fields: dict[str, Any] | None = None, *, door: str = BY_CLAIM,
         expected_version: int | None = None) -> ClaimEvent:
    """Fire one lifecycle event on a claim; raises a DomainError and changes nothing on refusal."""
    if event == LOG_EVENT:  # in the table, but it only leaves from "(new)"
        raise TransitionNotAllowed(event, claim.state, allowed_events(claim.state))
    spec = EVENTS_BY_NAME.get(event)
    if spec is None:
        raise _refuse("event", "unknown_event", f"'{event}' is not an event of the lifecycle.")
    if expected_version is not None and expected_version != claim.version:
        raise VersionMismatch(f"The claim is at version {claim.version}, not {expected_version}.")
    is_user = actor.role != "system"
    # A staff event the caller's role may never fire is a call their role may not make (403);
    # events only the system fires say first whether the state would allow them at all.
    if is_user and spec.roles and actor.role not in spec.roles:
        raise Forbidden(f"Your role may not fire '{event}'.")
    if claim.state not in spec.sources:
        raise TransitionNotAllowed(event, claim.state, allowed_events(claim.state))
    if spec.door != door or (is_user and actor.role not in spec.roles):
        raise Forbidden(f"'{event}' is fired by the {spec.door}, not through this call.")
    fields = {k: v for k, v in (fields or {}).items() if k != "event"}
    fields = with_reason_code(runtime, spec, fields)  # a code's label may stand in for a reason
    check_fields(spec, fields)
    firing = Firing(session, runtime, claim, spec, actor, fields)
    EFFECTS.get(event, lambda _f: None)(firing)
    record_reason_code(firing)
    from_state, version = claim.state, claim.version
    ClaimLifecycle(model=claim, state_field="state").send(event)
    claim.updated_at = datetime.now(UTC)
    session.add(claim)
    try:
        session.flush()  # the version check: UPDATE ... WHERE version = :seen
    except StaleDataError:
        raise VersionMismatch("The claim changed meanwhile; reload it and try again.") from None
    except IntegrityError as error:
        # The one unique value an event sets: a receipt number another clerk's collection
        # took between our check and our write (the check above saw it not yet committed).
        if "receipt_no" not in str(error.orig):
            raise
        raise _duplicate_receipt() from None
    assert claim.version == version + 1
    audit = ClaimEvent(claim_id=claim.id, event=event, from_state=from_state,
                       to_state=claim.state, version=claim.version, actor=actor.username,
                       payload=firing.payload, reason_code=firing.fields.get("reason_code"))
    session.add(audit)
    session.flush()
    return audit


# --- guards and effects, one per event that has any -------------------------------------


def _check_document_codes(firing: Firing, codes: list[str]) -> None:
    unknown = [c for c in codes if c not in firing.product.document_codes]
    if unknown:
        raise _refuse("documents", "unknown_document",
                      f"Not documents of {firing.product.code}: {', '.join(unknown)}.")


def _reject_documents(firing: Firing, codes: list[str], reason: str | None) -> None:
    claim = firing.claim
    _check_document_codes(firing, codes)
    statuses = document_statuses(firing.product, claim_facts(claim), [], claim.documents)
    for doc in statuses:
        if doc["code"] in codes:
            doc["status"], doc["reason"] = "rejected", reason
    known = {doc["code"] for doc in statuses}
    statuses += [{"code": c, "status": "rejected", "reason": reason}
                 for c in codes if c not in known]
    claim.documents = statuses


def _attach_documents(firing: Firing) -> None:
    codes = list(firing.fields["documents"])
    _check_document_codes(firing, codes)
    claim = firing.claim
    claim.documents = document_statuses(firing.product, claim_facts(claim), codes, claim.documents)
    firing.payload = {"documents": codes, "missing_documents": missing_documents(claim.documents)}


def _request_materials(firing: Firing) -> None:
    codes = list(firing.fields.get("documents") or [])
    reason = firing.fields.get("reason")
    if codes and not reason:
        raise _refuse("reason", "required", "Say why the documents are rejected.")
    _reject_documents(firing, codes, reason)
    if not reason and all(d["status"] == "received" for d in firing.claim.documents):
        # The unit union would be told to bring nothing, and the claim would wait for it.
        raise _refuse("documents", "nothing_requested",
                      "Every document is received: name the documents wanted, or say in "
                      "the reason what else the unit must bring.")
    firing.claim.last_reason = reason
    wanted = _ask_unit_for_materials(firing, reason, returned=False)
    firing.payload = {"documents": codes, "reason": reason, "wanted": wanted}


def _ask_unit_for_materials(firing: Firing, reason: str | None, *,
                            returned: bool) -> list[dict[str, Any]]:
    """Tell the unit union what to bring (every document missing or rejected) and why; the
    city office's return says so. The documents wanted, as the notice lists them."""
    claim = firing.claim
    wanted = [{"code": d["code"], "status": d["status"], "reason": d["reason"]}
              for d in claim.documents if d["status"] != "received"]
    notify.queue(firing.session, claim=claim, recipient_kind=notify.UNIT,
                 template="materials_requested",
                 payload={"claim_no": claim.claim_no, "documents": wanted, "reason": reason,
                          "returned": returned})
    return wanted


def _verify(firing: Firing) -> None:
    claim, session = firing.claim, firing.session
    enrolment, coverage = coverage_on(session, claim.member_id, claim.product_code,
                                      claim.incident_date)
    failures = eligibility(
        firing.product, claim_facts(claim), coverage,
        documents=claim.documents,
        has_earlier_duplicate=earlier_duplicate(session, claim) is not None,
        paid_lifetime=paid_on_product(session, claim.member_id, claim.product_code,
                                      excluding=claim.id),
        has_other_live_claim=other_live_claim(session, claim),
    )
    if failures:
        raise RuleFailed("The claim does not pass verification.",
                         [FieldError(f.field, f.code, f.message) for f in failures])
    claim.enrolment_id = enrolment.id if enrolment else claim.enrolment_id
    # Enrolments are often recorded late: the estimate follows what covers the claim now.
    logged_estimate, claim.estimate = claim.estimate, current_estimate(
        session, firing.product, claim, enrolment)
    if claim.estimate != logged_estimate:
        firing.payload = {"estimate": format_fen(claim.estimate),
                          "previous_estimate": format_fen(logged_estimate)}


def _with_reason(firing: Firing) -> None:
    firing.claim.last_reason = firing.fields["reason"]
    firing.payload = {"reason": firing.fields["reason"]}


def _approve(firing: Firing) -> None:
    amount: int = firing.fields["amount"]
    if amount <= 0:
        raise _refuse("amount", "amount_not_positive", "The approved amount must be above 0.")
    claim = firing.claim
    claim.approved_amount = amount
    claim.approved_on = firing.runtime.today()
    claim.above_estimate = amount > claim.estimate
    claim.last_reason = firing.fields.get("reason")
    firing.payload = {"amount": format_fen(amount), "above_estimate": claim.above_estimate}


def _return(firing: Firing) -> None:
    claim = firing.claim
    codes = list(firing.fields.get("documents") or [])
    _reject_documents(firing, codes, firing.fields["reason"])
    left = firing.session.get(Batch, claim.batch_id) if claim.batch_id is not None else None
    leave_batch(firing.session, claim)
    _with_reason(firing)
    if codes:
        firing.payload["documents"] = codes
    # Back in 待补材料, the unit union is the one to act: it hears why, as after a request
    # for materials (it heard nothing, and the claim page showed every document received).
    _ask_unit_for_materials(firing, claim.last_reason, returned=True)
    if left is not None:  # reconciliation counts a batch's returns by it
        firing.payload["batch_no"] = left.batch_no


def leave_batch(session: Session, claim: Claim) -> None:
    """A returned claim leaves its batch (it travels in a later one); the totals follow.
    The decrease is done in SQL, so two returns at once cannot lose one."""
    if claim.batch_id is None:
        return
    session.execute(
        sa.update(Batch).where(Batch.id == claim.batch_id).values(
            claim_count=Batch.claim_count - 1,
            total_claimed=Batch.total_claimed - claim.estimate)
        .execution_options(synchronize_session=False))
    claim.batch_id = None


def _receive_funds(firing: Firing) -> None:
    amount = firing.fields["amount"]
    if amount != firing.claim.approved_amount:
        raise _refuse("amount", "amount_mismatch",
                      "The amount received differs from the approved amount.")
    firing.payload = {"amount": format_fen(amount)}


def _schedule_onsite(firing: Firing) -> None:
    claim, threshold = firing.claim, firing.runtime.settings.onsite_threshold_fen
    if (claim.approved_amount or 0) < threshold:
        raise _refuse(None, "below_onsite_threshold",
                      f"On-site settlement is for claims of {format_fen(threshold)} yuan or more.")
    when = firing.fields["date"]
    if when < firing.runtime.today():
        raise _refuse("date", "date_in_past", "The meeting date must be today or later.")
    claim.onsite_date, claim.onsite_place = when, firing.fields["place"]
    notify.queue(firing.session, claim=claim, recipient_kind=notify.UNIT,
                 template="onsite_scheduled",
                 payload={"claim_no": claim.claim_no, "date": when.isoformat(),
                          "place": claim.onsite_place,
                          "amount": format_fen(claim.approved_amount)})
    firing.payload = {"date": when.isoformat(), "place": claim.onsite_place}


def _duplicate_receipt() -> Conflict:
    message = "This receipt number is used already."
    return Conflict(message, [FieldError("receipt_no", "duplicate_receipt", message)],
                    code="duplicate_receipt")


def _collect(firing: Firing) -> None:
    claim, fields, session = firing.claim, firing.fields, firing.session
    member = session.get(Member, claim.member_id)
    assert member is not None
    expected_id = claim.beneficiary_id_number if claim.death else member.id_number
    errors: list[FieldError] = []
    if fields["id_number"] != expected_id:
        who = "the beneficiary's" if claim.death else "the member's"
        errors.append(FieldError("id_number", "identity_mismatch",
                                 f"The ID number is not {who}."))
    if fields["amount"] != claim.approved_amount:
        errors.append(FieldError("amount", "partial_payment",
                                 "The amount paid must equal the approved amount (如数兑付)."))
    proxy = (fields.get("proxy_name"), fields.get("proxy_reference"))
    if any(proxy) and not all(proxy):
        missing = "proxy_reference" if proxy[0] else "proxy_name"
        errors.append(FieldError(missing, "required",
                                 "Proxy collection needs the proxy's name and authorisation."))
    if errors:
        raise RuleFailed("The collection breaks a rule.", errors)
    taken = session.exec(select(Claim.claim_no).where(Claim.receipt_no == fields["receipt_no"]))
    if taken.first() is not None:
        raise _duplicate_receipt()
    claim.paid_amount = fields["amount"]
    claim.receipt_no = fields["receipt_no"]
    claim.proxy_name, claim.proxy_reference = proxy
    claim.collected_on = firing.runtime.today()
    firing.payload = {
        "amount": format_fen(claim.paid_amount), "receipt_no": claim.receipt_no,
        "identity": mask(fields["id_number"]), "proxy_name": claim.proxy_name,
        "proxy_reference": claim.proxy_reference,
    }


EFFECTS: dict[str, Callable[[Firing], None]] = {
    "attach_documents": _attach_documents,
    "request_materials": _request_materials,
    "verify": _verify,
    "withdraw": _with_reason,
    "approve": _approve,
    "reject": _with_reason,
    "return": _return,
    "receive_funds": _receive_funds,
    "schedule_onsite": _schedule_onsite,
    "collect": _collect,
}

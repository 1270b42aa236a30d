"""SPEC §3 as a property: any sequence of events, allowed or not, keeps the lifecycle whole.

A hypothesis state machine logs one or two claims and fires events from the whole table
(and a few that are not in it) through workflows.transitions.fire, with plausible fields.
After every step: a claim moved only as the table says, a refused event changed nothing,
and the audit trail replays to the claim's state with versions 1, 2, ... claim.version.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import Session
from test_lifecycle import SPEC_EVENTS, spec_target

from claims.auth import Actor, system_actor
from claims.db import session_scope
from claims.idcard import make_id_number
from claims.models import Claim, ClaimEvent, Enrolment, Member, Notification, Unit
from claims.runtime import Runtime
from workflows.errors import DomainError
from workflows.intake import log_claim
from workflows.lifecycle import BY_CLAIM, EVENTS_BY_NAME
from workflows.transitions import fire

CLERK = Actor(username="clerk", role="clerk")
# Events the table has, plus names it has not: those must be refused like any other.
EVENT_NAMES = [*SPEC_EVENTS, "log", "approve_all"]
DOCUMENTS = ["claim_form", "id_card", "invoice", "settlement_sheet", "discharge_summary"]
STRANGER_ID = make_id_number("110101", date(1990, 3, 7), 51, "M")
# The next step of a claim that goes well.
ONWARD = {"logged": "verify", "pending_materials": "verify", "ready": "seal",
          "batched": "deliver", "submitted": "approve", "approved": "receive_funds",
          "funds_received": "notify", "notified": "collect", "onsite_scheduled": "collect"}
# Markers replaced by the claim's own values when the step runs.
MEMBER_ID, APPROVED = "<member id number>", "<approved amount>"

_serial = itertools.count(1)

# Fields as the event endpoint hands them to fire(): parsed, amounts in fen.
ANY_FIELDS = st.fixed_dictionaries({}, optional={
    "reason": st.sampled_from(["材料不全", "", None]),
    "documents": st.lists(st.sampled_from([*DOCUMENTS, "death_certificate", "bogus"]),
                          max_size=3),
    "amount": st.sampled_from([0, 1, 125_000, 600_000, APPROVED, None]),
    "date": st.sampled_from([-1, 0, 7]),  # days from today
    "place": st.sampled_from(["县总工会职工之家", ""]),
    "id_number": st.sampled_from([MEMBER_ID, STRANGER_ID]),
    "receipt_no": st.sampled_from(["R-shared", None]),
    "proxy_name": st.sampled_from(["王芳", None]),
    "proxy_reference": st.sampled_from(["授权书2026-1", None]),
})


class ClaimLifecycleMachine(RuleBasedStateMachine):
    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        self.runtime: Runtime = app.extensions["mutualaid"]
        self.today = self.runtime.today()
        self.claim_ids: list[int] = []
        self.id_numbers: dict[int, str] = {}
        self.records: dict[int, dict[str, Any]] = {}

    # --- the world -------------------------------------------------------------------------

    def _enrolled_member(self, session: Session, unit: Unit) -> Member:
        n = next(_serial)
        id_number = make_id_number(f"{450100 + n // 100:06d}", date(1980, 1, 1), n % 100, "F")
        member = Member(unit_id=unit.id, name=f"职工{n}", id_number=id_number,
                        birth_date=date(1980, 1, 1), sex="F")
        session.add(member)
        session.flush()
        start = self.today - timedelta(days=365)
        session.add(Enrolment(member_id=member.id, product_code="inpatient", shares=1,
                              start_date=start, end_date=start + timedelta(days=730)))
        session.flush()
        return member

    def _log(self, session: Session, member: Member, documents: list[str], cause: str) -> int:
        incident = self.today - timedelta(days=20)
        fields = {
            "id_number": member.id_number, "product_code": "inpatient", "cause": cause,
            "incident_date": incident, "admission_date": incident,
            "discharge_date": incident + timedelta(days=5), "hospital": "县人民医院",
            "diagnosis": "肺炎", "total_expense": 800_000, "insurance_paid": 400_000,
            "self_paid": 300_000, "documents": documents,
        }
        claim, _warnings = log_claim(session, self.runtime.catalogue, CLERK, fields, self.today)
        assert claim.id is not None
        self.id_numbers[claim.id] = member.id_number
        return claim.id

    @initialize(data=st.data())
    def log_claims(self, data: st.DataObject) -> None:
        """One or two claims; a second one is sometimes the first one's duplicate."""
        documents = st.one_of(st.just(DOCUMENTS), st.lists(st.sampled_from(DOCUMENTS),
                                                           unique=True))
        with self.app.app_context(), session_scope(self.runtime.engine) as session:
            n = next(_serial)
            unit = Unit(code=f"SM{n:05d}", name=f"单位{n}")
            session.add(unit)
            session.flush()
            member = self._enrolled_member(session, unit)
            cause = data.draw(st.sampled_from(["illness", "accident"]), label="cause")
            self.claim_ids.append(self._log(session, member, data.draw(documents), cause))
            second = data.draw(st.sampled_from([None, "duplicate", "other member"]))
            if second == "other member":
                member = self._enrolled_member(session, unit)
            if second is not None:
                self.claim_ids.append(self._log(session, member, data.draw(documents), cause))
        self.records = self._read_records()

    # --- firing ----------------------------------------------------------------------------

    def _fitting_fields(self, data: st.DataObject, event: str, claim: Claim) -> dict[str, Any]:
        """Fields the event takes, with values that often pass its guards."""
        if event == "attach_documents":
            missing = [doc["code"] for doc in claim.documents if doc["status"] != "received"]
            if missing and data.draw(st.booleans(), label="bring what is missing"):
                return {"documents": missing}
            return {"documents": data.draw(st.lists(st.sampled_from(DOCUMENTS), min_size=1,
                                                    unique=True))}
        if event in ("request_materials", "return"):
            fields = {"reason": "发票不清晰"}
            if data.draw(st.booleans()):
                fields["documents"] = data.draw(st.lists(st.sampled_from(DOCUMENTS),
                                                         min_size=1, max_size=2, unique=True))
            return fields
        if event in ("withdraw", "reject"):
            return {"reason": "不符合条件"}
        if event == "approve":
            return {"amount": data.draw(st.sampled_from([125_000, 600_000]))}
        if event == "receive_funds":
            return {"amount": claim.approved_amount or 125_000}
        if event == "schedule_onsite":
            return {"date": self.today + timedelta(days=3), "place": "县总工会职工之家"}
        if event == "collect":
            fields = {"id_number": self.id_numbers[claim.id], "amount": claim.approved_amount,
                      "receipt_no": f"R{next(_serial)}"}
            if data.draw(st.booleans()):
                fields |= {"proxy_name": "王芳", "proxy_reference": "授权书2026-1"}
            return fields
        return {}

    def _any_fields(self, data: st.DataObject, claim: Claim) -> dict[str, Any]:
        fields = data.draw(ANY_FIELDS)
        if fields.get("amount") == APPROVED:
            fields["amount"] = claim.approved_amount
        if fields.get("id_number") == MEMBER_ID:
            fields["id_number"] = self.id_numbers[claim.id]
        if "date" in fields:
            fields["date"] = self.today + timedelta(days=fields["date"])
        return fields

    @rule(data=st.data())
    def fire_an_event(self, data: st.DataObject) -> None:
        claim_id = data.draw(st.sampled_from(self.claim_ids), label="claim")
        before = self.records[claim_id]
        state = before["claim"]["state"]
        # Mostly the next step of a claim that goes well, else any event that leaves the
        # claim's state, else any name at all (withdraw, the end of a claim's travel, too).
        leaving = [name for name, (sources, _target) in SPEC_EVENTS.items()
                   if state in sources and name != "withdraw"]
        choice = data.draw(st.sampled_from(["onward", "onward", "leaving", "any"]), label="how")
        if choice == "onward" and state in ONWARD:
            names = [ONWARD[state]]
        elif choice != "any" and leaving:
            names = leaving
        else:
            names = EVENT_NAMES
        event = data.draw(st.sampled_from(names), label="event")
        spec = EVENTS_BY_NAME.get(event)
        # Mostly the door the table names (the system's actor for the system's events);
        # now and then the claim door, as a client of the API would.
        door = spec.door if spec else BY_CLAIM
        if data.draw(st.sampled_from([False] * 9 + [True]), label="claim door"):
            door = BY_CLAIM
        actor = system_actor("test") if spec and not spec.roles and door != BY_CLAIM else CLERK
        refusal: DomainError | None = None
        with self.app.app_context(), session_scope(self.runtime.engine) as session:
            claim = session.get(Claim, claim_id)
            assert claim is not None
            fitting = data.draw(st.sampled_from([True] * 3 + [False]), label="fitting fields")
            fields = (self._fitting_fields(data, event, claim) if fitting
                      else self._any_fields(data, claim))
            try:
                fire(session, self.runtime, claim, event, actor, fields, door=door)
            except DomainError as error:
                # Committed as the caller left it: fire() itself must have changed nothing.
                refusal = error
        self.records = self._read_records()
        after = self.records[claim_id]
        if refusal is not None:
            assert after == before, f"{event} was refused ({refusal.code}) but changed the claim"
            return
        assert event in SPEC_EVENTS
        sources, _target = SPEC_EVENTS[event]
        assert state in sources, f"{event} fired from {state}"
        assert after["claim"]["state"] == spec_target(event, state)
        assert after["claim"]["version"] == before["claim"]["version"] + 1
        assert after["trail"][:-1] == before["trail"]
        assert after["trail"][-1][:3] == (event, state, after["claim"]["state"])

    # --- what is checked -------------------------------------------------------------------

    def _read_records(self) -> dict[int, dict[str, Any]]:
        """Each claim's row, audit trail and outbox size, as stored (plain SQL: it is fast)."""
        claims, events = Claim.__table__, ClaimEvent.__table__
        with self.runtime.engine.connect() as connection:
            rows = connection.execute(sa.select(claims).where(claims.c.id.in_(self.claim_ids)))
            records: dict[int, dict[str, Any]] = {
                row.id: {"claim": dict(row._mapping), "trail": [], "messages": 0} for row in rows
            }
            trail = connection.execute(
                sa.select(events.c.claim_id, events.c.event, events.c.from_state,
                          events.c.to_state, events.c.version)
                .where(events.c.claim_id.in_(self.claim_ids)).order_by(events.c.id))
            for claim_id, *step in trail:
                records[claim_id]["trail"].append(tuple(step))
            messages = connection.execute(
                sa.select(Notification.claim_id, sa.func.count())
                .where(Notification.claim_id.in_(self.claim_ids))
                .group_by(Notification.claim_id))
            for claim_id, count in messages:
                records[claim_id]["messages"] = count
            connection.rollback()
        return records

    @invariant()
    def the_audit_trail_replays_to_the_claims_state(self) -> None:
        assert set(self.records) == set(self.claim_ids)
        for record in self.records.values():
            claim, trail = record["claim"], record["trail"]
            assert trail[0][:3] == ("log", None, "logged")
            for event, from_state, to_state, _version in trail[1:]:
                sources, _target = SPEC_EVENTS[event]
                assert from_state in sources, (event, from_state)
                assert to_state == spec_target(event, from_state), (event, to_state)
            state = None
            for _event, from_state, to_state, _version in trail:
                assert from_state == state, f"the trail skips from {state} to {from_state}"
                state = to_state
            assert state == claim["state"]
            assert [version for *_rest, version in trail] == list(range(1, claim["version"] + 1))

def test_random_events_keep_the_lifecycle_whole(app):
    run_state_machine_as_test(
        lambda: ClaimLifecycleMachine(app),
        settings=settings(max_examples=25, stateful_step_count=15, deadline=None),
    )

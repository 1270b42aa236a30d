"""SPEC §3: the claim lifecycle table, declared once in workflows/lifecycle.py, and its diagram."""

from __future__ import annotations

from pathlib import Path

import pytest
from statemachine.exceptions import TransitionNotAllowed

from workflows.lifecycle import (
    EVENTS,
    EVENTS_BY_NAME,
    FINAL_STATES,
    INITIAL_STATE,
    STATES,
    ClaimLifecycle,
    allowed_events,
    markdown,
)

# SPEC §3, copied by hand: state code -> label, and event -> (from, to).
# "same" (attach_documents) is written as None: the claim stays where it is.
SPEC_STATES = {
    "logged": "已登记",
    "pending_materials": "待补材料",
    "ready": "待报送",
    "batched": "已装批",
    "submitted": "已报送市总",
    "approved": "已核准",
    "rejected": "不予赔付",
    "funds_received": "理赔金已到账",
    "notified": "已通知领取",
    "onsite_scheduled": "已安排现场理赔",
    "collected": "已领取",
    "withdrawn": "已撤回",
}
SPEC_EVENTS: dict[str, tuple[set[str], str | None]] = {
    "attach_documents": ({"logged", "pending_materials"}, None),
    "request_materials": ({"logged", "ready"}, "pending_materials"),
    "verify": ({"logged", "pending_materials"}, "ready"),
    "withdraw": ({"logged", "pending_materials", "ready"}, "withdrawn"),
    "seal": ({"ready"}, "batched"),
    "deliver": ({"batched"}, "submitted"),
    "approve": ({"submitted"}, "approved"),
    "reject": ({"submitted"}, "rejected"),
    "return": ({"submitted"}, "pending_materials"),
    "receive_funds": ({"approved"}, "funds_received"),
    "notify": ({"funds_received"}, "notified"),
    "schedule_onsite": ({"funds_received", "notified"}, "onsite_scheduled"),
    "collect": ({"notified", "onsite_scheduled"}, "collected"),
}
# Who may fire each event through POST /claims/{claim_no}/events (SPEC §3 "who").
SPEC_UNIT_STAFF_EVENTS = {"attach_documents", "withdraw"}


def spec_target(event: str, state: str) -> str:
    """Where SPEC §3 takes a claim in `state` when `event` is fired."""
    target = SPEC_EVENTS[event][1]
    return target or state


def spec_allowed_events(state: str) -> set[str]:
    """The events SPEC §3 lets leave `state`."""
    return {event for event, (sources, _target) in SPEC_EVENTS.items() if state in sources}


def test_the_states_are_those_of_spec_section_3_with_their_labels():
    assert STATES == SPEC_STATES
    assert INITIAL_STATE == "logged"


def test_each_event_leaves_from_and_goes_to_the_states_spec_section_3_names():
    table = {spec.name: (set(spec.sources), spec.target) for spec in EVENTS}
    assert table == SPEC_EVENTS
    assert len(EVENTS) == len(EVENTS_BY_NAME)  # no event declared twice


def test_final_states_are_those_no_event_leaves():
    assert set(FINAL_STATES) == {"rejected", "collected", "withdrawn"}
    assert {state for state in SPEC_STATES if not spec_allowed_events(state)} == FINAL_STATES
    for state in FINAL_STATES:
        assert allowed_events(state) == []


def test_every_state_is_reachable_from_logged():
    reached, frontier = {INITIAL_STATE}, [INITIAL_STATE]
    while frontier:
        state = frontier.pop()
        for event in spec_allowed_events(state):
            target = spec_target(event, state)
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(SPEC_STATES)


@pytest.mark.parametrize("state", list(SPEC_STATES))
def test_allowed_events_are_the_events_leaving_the_state(state):
    assert set(allowed_events(state)) == spec_allowed_events(state)
    assert len(allowed_events(state)) == len(set(allowed_events(state)))


@pytest.mark.parametrize("state", list(SPEC_STATES))
@pytest.mark.parametrize("event", list(SPEC_EVENTS))
def test_the_state_machine_class_moves_a_claim_as_the_table_says(state, event):
    class Row:  # a claim row, as far as the machine can tell
        pass

    row = Row()
    row.state = state
    machine = ClaimLifecycle(model=row, state_field="state")
    if state in SPEC_EVENTS[event][0]:
        machine.send(event)
        assert row.state == spec_target(event, state)
    else:
        with pytest.raises(TransitionNotAllowed):
            machine.send(event)
        assert row.state == state


def test_unit_staff_may_fire_attach_documents_and_withdraw_only():
    through_claims = {spec.name for spec in EVENTS if spec.door == "claim"}
    assert {spec.name for spec in EVENTS if "unit_staff" in spec.roles} == SPEC_UNIT_STAFF_EVENTS
    assert SPEC_UNIT_STAFF_EVENTS <= through_claims


def test_seal_and_notify_are_fired_by_the_system_not_by_staff():
    assert EVENTS_BY_NAME["seal"].roles == frozenset()
    assert EVENTS_BY_NAME["seal"].door != "claim"
    assert EVENTS_BY_NAME["notify"].roles == frozenset()
    assert EVENTS_BY_NAME["notify"].door != "claim"


def test_the_required_fields_are_those_spec_section_3_asks_for():
    required = {spec.name: set(spec.required) for spec in EVENTS}
    assert required["withdraw"] == {"reason"}
    assert required["reject"] == {"reason"}
    assert required["return"] == {"reason"}
    assert required["approve"] == {"amount"}
    assert required["schedule_onsite"] == {"date", "place"}
    assert required["collect"] == {"id_number", "amount", "receipt_no"}
    assert {"proxy_name", "proxy_reference"} <= set(EVENTS_BY_NAME["collect"].optional)


def test_docs_lifecycle_md_is_generated_from_the_table():
    doc = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"
    assert doc.read_text(encoding="utf-8") == markdown(), (
        "docs/lifecycle.md has drifted from workflows/lifecycle.py: run `make docs` "
        "(python -m workflows.lifecycle > docs/lifecycle.md) and commit the result."
    )


def test_the_diagram_draws_every_transition_of_the_table():
    doc = markdown()
    assert f"[*] --> {INITIAL_STATE}: log" in doc
    for event, (sources, _target) in SPEC_EVENTS.items():
        for source in sources:
            assert f"    {source} --> {spec_target(event, source)}: {event}\n" in doc
    for state in FINAL_STATES:
        assert f"    {state} --> [*]" in doc

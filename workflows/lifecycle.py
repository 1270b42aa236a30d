"""The claim lifecycle (SPEC §3), declared once as data.

Everything else reads this table: the state machine class below (checked by
python-statemachine when it is defined), the event endpoint's role and field checks,
the console's buttons, and the diagram in docs/lifecycle.md (`python -m workflows.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass

from statemachine import State, StateMachine

STATES: dict[str, str] = {
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
INITIAL_STATE = "logged"
FINAL_STATES = frozenset({"rejected", "collected", "withdrawn"})

STAFF = frozenset({"admin", "clerk"})
UNIT_AND_STAFF = STAFF | {"unit_staff"}

# Where an event comes from. Only "claim" events are fired through
# POST /claims/{claim_no}/events; the others have their own doors.
BY_CLAIM = "claim"
BY_BATCH_RUN = "batch_run"  # the weekly batch (seal)
BY_BATCH = "batch"  # POST /batches/{batch_no}/events (deliver), or a transmission
BY_REMITTANCE = "remittance"
BY_JOB = "job"  # dispatch_notifications (notify)


@dataclass(frozen=True)
class EventSpec:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str | None  # None: the state stays as it is
    roles: frozenset[str]  # who may fire it through its door
    door: str = BY_CLAIM
    required: tuple[str, ...] = ()  # body fields the event needs
    optional: tuple[str, ...] = ()  # body fields it may take

    def target_from(self, state: str) -> str:
        return self.target or state


EVENTS: tuple[EventSpec, ...] = (
    EventSpec("attach_documents", "补交材料", ("logged", "pending_materials"), None,
              UNIT_AND_STAFF, required=("documents",)),
    EventSpec("request_materials", "要求补材料", ("logged", "ready"), "pending_materials",
              STAFF, optional=("documents", "reason", "reason_code")),
    EventSpec("verify", "审核通过", ("logged", "pending_materials"), "ready", STAFF),
    EventSpec("withdraw", "撤回", ("logged", "pending_materials", "ready"), "withdrawn",
              UNIT_AND_STAFF, required=("reason",)),
    EventSpec("seal", "装批", ("ready",), "batched", frozenset(), door=BY_BATCH_RUN),
    EventSpec("deliver", "报送市总", ("batched",), "submitted", STAFF, door=BY_BATCH),
    EventSpec("approve", "市总核准", ("submitted",), "approved", STAFF,
              required=("amount",), optional=("reason",)),
    # A reason_code (config/reasons.toml) may stand in for the reason: its label is the text.
    EventSpec("reject", "市总不予赔付", ("submitted",), "rejected", STAFF, required=("reason",),
              optional=("reason_code",)),
    EventSpec("return", "市总退回补材料", ("submitted",), "pending_materials", STAFF,
              required=("reason",), optional=("documents", "reason_code")),
    EventSpec("receive_funds", "理赔金到账", ("approved",), "funds_received", STAFF,
              door=BY_REMITTANCE, required=("amount",)),
    EventSpec("notify", "通知领取", ("funds_received",), "notified", frozenset(), door=BY_JOB),
    EventSpec("schedule_onsite", "安排现场理赔", ("funds_received", "notified"),
              "onsite_scheduled", STAFF, required=("date", "place")),
    EventSpec("collect", "领取", ("notified", "onsite_scheduled"), "collected", STAFF,
              required=("id_number", "amount", "receipt_no"),
              optional=("proxy_name", "proxy_reference")),
)
EVENTS_BY_NAME: dict[str, EventSpec] = {spec.name: spec for spec in EVENTS}
# Every body field any event takes: the event endpoint's schema.
EVENT_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f for spec in EVENTS for f in spec.required + spec.optional)
)
# "log" creates the claim (POST /claims): listed for the audit trail and the diagram.
LOG_EVENT = "log"
LOG_ROLES = UNIT_AND_STAFF


def allowed_events(state: str) -> list[str]:
    """The events of the table that leave from `state`, in table order."""
    return [spec.name for spec in EVENTS if state in spec.sources]


def _build_machine() -> type[StateMachine]:
    states = {
        code: State(label, value=code, initial=code == INITIAL_STATE, final=code in FINAL_STATES)
        for code, label in STATES.items()
    }
    attrs: dict[str, object] = dict(states)
    for spec in EVENTS:
        transitions = None
        for source in spec.sources:
            if spec.target is None:
                step = states[source].to.itself(internal=True)
            else:
                step = states[source].to(states[spec.target])
            transitions = step if transitions is None else transitions | step
        attrs[spec.name] = transitions
    return type("ClaimLifecycle", (StateMachine,), attrs)


# Defining the class checks the table: one initial state, every state reachable,
# no transition out of a final state.
ClaimLifecycle = _build_machine()


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, drawn from EVENTS."""
    lines = ["stateDiagram-v2", "    direction TB"]
    for code, label in STATES.items():
        lines.append(f"    {code}: {code} {label}")
    lines.append(f"    [*] --> {INITIAL_STATE}: {LOG_EVENT}")
    for spec in EVENTS:
        for source in spec.sources:
            lines.append(f"    {source} --> {spec.target_from(source)}: {spec.name}")
    lines.extend(f"    {code} --> [*]" for code in sorted(FINAL_STATES))
    return "\n".join(lines)


def markdown() -> str:
    """docs/lifecycle.md: the diagram and the table, generated; a test keeps it current."""
    rows = ["| event | 中文 | from | to | who | door | needs |", "|---|---|---|---|---|---|---|"]
    rows.append(f"| {LOG_EVENT} | 登记 | (new) | {INITIAL_STATE} | "
                f"{', '.join(sorted(LOG_ROLES))} | claim | claim fields |")
    for spec in EVENTS:
        who = ", ".join(sorted(spec.roles)) or "system"
        needs = ", ".join(spec.required + tuple(f"[{f}]" for f in spec.optional)) or "-"
        rows.append(
            f"| {spec.name} | {spec.label} | {', '.join(spec.sources)} | "
            f"{spec.target or '(same)'} | {who} | {spec.door} | {needs} |"
        )
    states = "\n".join(f"| `{code}` | {label} |" for code, label in STATES.items())
    return (
        "# The claim lifecycle\n\n"
        "Generated from `workflows/lifecycle.py` by `python -m workflows.lifecycle > "
        "docs/lifecycle.md`; `tests/test_lifecycle.py` fails when this file drifts from the "
        "code.\n\n```mermaid\n" + mermaid() + "\n```\n\n## States\n\n| state | 中文 |\n|---|---|\n"
        + states + "\n\n## Events\n\n" + "\n".join(rows) + "\n\n"
        "`door` says where an event is fired: `claim` through `POST /api/v1/claims/{claim_no}/"
        "events`, `batch` through `POST /api/v1/batches/{batch_no}/events`, `batch_run` by the "
        "weekly batch, `remittance` by `POST /api/v1/remittances`, `job` by the notification "
        "job. Fields in brackets are optional.\n"
    )


if __name__ == "__main__":
    print(markdown(), end="")

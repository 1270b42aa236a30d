"""The public status check (SPEC §5): find a worker's claims, say where they stand in plain Chinese.

The wording functions are pure (values in, text out); `look_up_claims` is the one place that
reads the database, and both doors (POST /api/v1/status and the /status page) call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.models import Claim, ClaimEvent, Member
from claims.money import format_fen
from claims.rules import RECEIVED, assessed_after
from claims.runtime import Runtime
from config.catalogue import Product
from workflows.history import masked_history, member_history
from workflows.lifecycle import STATES

# Money has arrived: the worker may come and collect it.
COLLECT_STATES = frozenset({"funds_received", "notified", "onsite_scheduled"})
BRING = "身份证原件；代领需授权委托书"
BRING_BENEFICIARY = "受益人本人身份证原件；代领需授权委托书"
_ASK_UNION = "如有疑问，请联系单位工会。"
WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


@dataclass(frozen=True)
class Collection:
    """Where and when money is collected at the county agency point (from settings)."""

    place: str
    hours: str


@dataclass(frozen=True)
class Wanted:
    """A document the worker (through the unit union) still has to bring, and why."""

    name: str
    reason: str | None


def _docs(codes: Sequence[str], names: Mapping[str, str]) -> str:
    return "、".join(names.get(code, code) for code in codes)


def wanted_documents(documents: Sequence[Mapping[str, Any]],
                     names: Mapping[str, str]) -> list[Wanted]:
    """The claim's documents not received yet (missing or rejected), by name, with the reason."""
    return [Wanted(names.get(doc["code"], doc["code"]), doc.get("reason") or None)
            for doc in documents if doc.get("status") != RECEIVED]


def wanted_text(wanted: Sequence[Wanted]) -> str:
    """The documents as one line, each with its reason: 出院小结（复印件看不清）、医保结算单."""
    return "、".join(f"{w.name}（{w.reason}）" if w.reason else w.name for w in wanted)


def spoken_date(day: date, *, weekday: bool = False) -> str:
    """A day as a worker reads it: 2026年11月27日, with the weekday 2026年11月27日（星期五）."""
    # ISO dates read as codes and break at their hyphens on a narrow phone; the answer's `at`
    # and `date` fields stay ISO (data), only the sentences use this.
    text = f"{day.year}年{day.month}月{day.day}日"
    return f"{text}（{WEEKDAYS[day.weekday()]}）" if weekday else text


# --- the timeline: one plain line per event a worker cares about ---------------------------

def _label_request(payload: Mapping[str, Any], names: Mapping[str, str]) -> str:
    wanted = [Wanted(names.get(d["code"], d["code"]), d.get("reason") or None)
              for d in payload.get("wanted") or []]
    if wanted:
        return f"需补交材料：{wanted_text(wanted)}"
    reason = payload.get("reason")
    return f"需补交材料：{reason}" if reason else "需补交材料"


def _label_attach(payload: Mapping[str, Any], names: Mapping[str, str]) -> str:
    codes = payload.get("documents") or []
    return f"材料已补交：{_docs(codes, names)}" if codes else "材料已补交"


def _with_reason(text: str) -> Callable[[Mapping[str, Any], Mapping[str, str]], str]:
    def label(payload: Mapping[str, Any], _names: Mapping[str, str]) -> str:
        reason = payload.get("reason")
        return f"{text}：{reason}" if reason else text

    return label


def _label_onsite(payload: Mapping[str, Any], _names: Mapping[str, str]) -> str:
    try:
        when = spoken_date(date.fromisoformat(payload["date"]), weekday=True)
    except (KeyError, TypeError, ValueError):  # an event logged without a readable date
        when = "日期另行通知"
    return f"已安排现场理赔：{when}，{payload.get('place')}"


def _label_collect(payload: Mapping[str, Any], _names: Mapping[str, str]) -> str:
    by_proxy = "（代领）" if payload.get("proxy_name") else ""
    return f"已领取 {payload.get('amount')} 元{by_proxy}"


def _label_notice(payload: Mapping[str, Any], _names: Mapping[str, str]) -> str | None:
    # Reminders sent to the unit union; other notices repeat an event already shown.
    if payload.get("recipient") != "unit":
        return None
    return {"remind_uncollected": "已再次通知单位工会：互助金待领取",
            "chase_materials": "已提醒单位工会补交材料"}.get(payload.get("template") or "")


_EVENT_LABELS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], str | None]] = {
    "log": lambda _p, _n: "已登记",
    "attach_documents": _label_attach,
    "request_materials": _label_request,
    "verify": lambda _p, _n: "县总工会审核通过",
    "withdraw": _with_reason("已撤回"),
    # The batch code (2026-W41) means nothing to a worker: the weekly batch is what they know.
    "seal": lambda _p, _n: "已编入每周批次，等待报送市总工会",
    "deliver": lambda _p, _n: "已随每周批次报送市总工会",
    "approve": lambda p, _n: f"市总已核准 {p.get('amount')} 元",
    "reject": _with_reason("市总不予赔付"),
    "return": _with_reason("市总退回，需补交材料"),
    "receive_funds": lambda _p, _n: "互助金已到账",
    "notify": lambda _p, _n: "已通知单位工会",
    "schedule_onsite": _label_onsite,
    "collect": _label_collect,
    "notification_sent": _label_notice,
}


def event_label(event: str, payload: Mapping[str, Any], names: Mapping[str, str]) -> str | None:
    """The worker's line for one audit event, or None for events a worker need not see."""
    label = _EVENT_LABELS.get(event)
    return label(payload or {}, names) if label else None


def timeline(events: Sequence[Any], tz: ZoneInfo,
             names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The claim's story, oldest first: the date (configured time zone) and a plain line each."""
    steps: list[dict[str, Any]] = []
    for event in events:
        label = event_label(event.event, event.payload, names)
        if label:
            steps.append({"at": event.at.astimezone(tz).date(), "label": label})
    return steps


# --- the next step: what happens now, and what the worker or the unit union should do -------

@dataclass(frozen=True)
class StatusFacts:
    """What the wording of a claim's next step needs."""

    state: str
    death: bool
    approved_amount: int | None  # fen
    paid_amount: int | None  # fen
    wanted: tuple[Wanted, ...]
    reason: str | None
    onsite_date: date | None
    onsite_place: str | None
    collected_on: date | None


def next_step(facts: StatusFacts, collection: Collection) -> str:
    """Plain Chinese for the worker: what happens next, and what they or their union should do."""
    approved = format_fen(facts.approved_amount)
    bring = f"请带{BRING_BENEFICIARY if facts.death else BRING}。"
    counter = f"请到{collection.place}领取（{collection.hours}），{bring}"
    via_union = f"请交给单位工会，由单位工会送到{collection.place}"
    match facts.state:
        case "logged" if facts.wanted:
            return (f"理赔已登记，还缺以下材料：{wanted_text(facts.wanted)}。{via_union}；"
                    "材料齐全后县总工会开始审核。")
        case "logged":
            return ("材料已交齐，县总工会正在审核。审核通过后将随每周批次报送市总工会，"
                    "您暂时无需做什么。")
        case "pending_materials":
            told = {w.reason for w in facts.wanted}
            why = f"原因：{facts.reason}。" if facts.reason and facts.reason not in told else ""
            return (f"需要补交材料：{wanted_text(facts.wanted) or '请向单位工会了解'}。{why}"
                    f"{via_union}；补齐后县总工会重新审核。")
        case "ready":
            return "审核已通过，将随下一次每周批次报送市总工会，您无需做什么。"
        case "batched":
            return "已编入本周批次，即将报送市总工会，您无需做什么。"
        case "submitted":
            return "市总工会正在审核。结果出来后县总工会会通知单位工会，您无需做什么。"
        case "approved":
            return (f"市总工会已核准互助金 {approved} 元，正在等待拨付到县总工会。"
                    "到账后会通知单位工会，届时再来领取。")
        case "rejected":
            why = f"原因：{facts.reason}。" if facts.reason else ""
            return f"市总工会决定不予赔付。{why}{_ASK_UNION}"
        case "funds_received":
            return f"互助金 {approved} 元已到账，县总工会正在通知单位工会。收到通知后，{counter}"
        case "notified":
            return f"互助金 {approved} 元已到账，单位工会已收到通知。{counter}"
        case "onsite_scheduled":
            when = (f" {spoken_date(facts.onsite_date, weekday=True)}" if facts.onsite_date
                    else "约定日期")
            # The county records the day and the place; the unit union, which holds the
            # meeting, gives the hour.
            return (f"互助金 {approved} 元将于{when}在{facts.onsite_place or '单位'}现场发放，"
                    f"具体时间请听单位工会通知，{bring}")
        case "collected":
            on = f"已于 {spoken_date(facts.collected_on)}" if facts.collected_on else "已"
            return f"互助金 {format_fen(facts.paid_amount)} 元{on}领取，本次理赔已办结。"
        case "withdrawn":
            return "本次理赔已撤回。如需重新申请或有疑问，请联系单位工会。"
    return _ASK_UNION


def claim_status(claim: Any, events: Sequence[Any], *, product_name: str,
                 tz: ZoneInfo, names: Mapping[str, str],
                 collection: Collection) -> dict[str, Any]:
    """One claim as the worker sees it: state, timeline, next step, this claim's amounts only."""
    wanted = wanted_documents(claim.documents, names)
    facts = StatusFacts(
        state=claim.state, death=claim.death,
        approved_amount=claim.approved_amount, paid_amount=claim.paid_amount,
        wanted=tuple(wanted), reason=claim.last_reason, onsite_date=claim.onsite_date,
        onsite_place=claim.onsite_place, collected_on=claim.collected_on,
    )
    answer: dict[str, Any] = {
        "claim_no": claim.claim_no,
        "state": claim.state,
        "state_label": STATES[claim.state],
        "product_name": product_name,
        "timeline": timeline(events, tz, names),
        "next_step": next_step(facts, collection),
        "missing_documents": ([{"name": w.name, "reason": w.reason} for w in wanted]
                              if claim.state in ("logged", "pending_materials") else []),
        "amount_estimated": format_fen(claim.estimate),
        "amount_approved": format_fen(claim.approved_amount),
        "collect": None,
        "onsite": None,
    }
    if claim.state in COLLECT_STATES:
        answer["collect"] = {"place": collection.place, "hours": collection.hours,
                             "bring": BRING_BENEFICIARY if claim.death else BRING}
    if claim.state == "onsite_scheduled":
        answer["onsite"] = {"date": claim.onsite_date, "place": claim.onsite_place}
    return answer


# --- the lookup ----------------------------------------------------------------------------

_CLAIM, _MEMBER, _EVENT = Claim.__table__, Member.__table__, ClaimEvent.__table__  # type: ignore[attr-defined]
# What the answer needs of a claim: claim_status reads these by name from each row.
_STATUS_FIELDS = ("id", "claim_no", "state", "product_code", "death", "documents", "estimate",
                  "incident_date", "disability_grade", "disability_assessed_on",
                  "approved_amount", "paid_amount", "last_reason", "onsite_date", "onsite_place",
                  "collected_on")


def _status_rows(match: Any) -> sa.Select[Any]:
    """The matching claims with their audit events, one row per event (claims newest first)."""
    return (sa.select(*(_CLAIM.c[name] for name in _STATUS_FIELDS),
                      _EVENT.c.event, _EVENT.c.payload, _EVENT.c.at)
            .select_from(_CLAIM.join(_MEMBER, _MEMBER.c.id == _CLAIM.c.member_id)
                         .outerjoin(_EVENT, _EVENT.c.claim_id == _CLAIM.c.id))
            .where(match).order_by(_CLAIM.c.id.desc(), _EVENT.c.id))


# ID numbers are stored as 18 validated characters, so the last six start at the 13th; a death
# claim's holder is its beneficiary.
_HOLDER_LAST6 = sa.func.substr(
    sa.case((_CLAIM.c.death == sa.true(), _CLAIM.c.beneficiary_id_number),
            else_=_MEMBER.c.id_number), 13, 6)
# Both sides of the OR are conditions on the claim table, each with its index (member_id;
# beneficiary_id_number), so it is two index lookups, not a scan of every claim. ID numbers
# are unique: the member is one value (an IN would defeat PostgreSQL's BitmapOr).
_ASKER = (sa.select(_MEMBER.c.id).where(_MEMBER.c.id_number == sa.bindparam("id_number"),
                                        _MEMBER.c.name == sa.bindparam("name"))
          .scalar_subquery())
# Built once: the status check is the busiest public call, and building a statement costs
# more than running it (python -m bench load, docs/performance.md).
STATUS_QUERIES = {
    "claim_no": _status_rows(sa.and_(_CLAIM.c.claim_no == sa.bindparam("claim_no"),
                                     _HOLDER_LAST6 == sa.bindparam("id_last6"))),
    "id_number": _status_rows(sa.or_(
        _CLAIM.c.member_id == _ASKER,
        sa.and_(_CLAIM.c.death == sa.true(),
                _CLAIM.c.beneficiary_id_number == sa.bindparam("id_number"),
                _CLAIM.c.beneficiary_name == sa.bindparam("name")))),
}


def estimate_note(product: Product | None, claim: Any) -> str | None:
    """Why the estimate leaves a part out, in plain Chinese: a disability assessed after the
    product's period (SPEC §2); None when nothing is left out."""
    days = product.disability_assessment_days if product else None
    if claim.disability_grade is None or not assessed_after(days, claim.incident_date,
                                                            claim.disability_assessed_on):
        return None
    return f"未计伤残互助金：伤残鉴定晚于意外发生后 {days} 天，以市总工会审核为准"


def look_up_claims(reads: sa.Connection, runtime: Runtime,
                   query: Mapping[str, str]) -> list[dict[str, Any]]:
    """The claims a validated status query names, newest first; [] for any wrong guess."""
    # `query` is {"claim_no", "id_last6"} or {"id_number", "name"}, upper-cased. A right and a
    # wrong guess run the same one statement and neither returns early, so the answer time
    # does not tell whether a claim exists.
    statement = STATUS_QUERIES["claim_no" if "claim_no" in query else "id_number"]
    rows = reads.execute(statement, dict(query)).all()
    by_claim: dict[int, list[Any]] = {}
    for row in rows:
        by_claim.setdefault(row.id, []).append(row)
    settings, catalogue = runtime.settings, runtime.catalogue
    collection = Collection(settings.collection_place, settings.collection_hours)
    answers = []
    for claim_rows in by_claim.values():
        claim = claim_rows[0]
        product = catalogue.get(claim.product_code)
        events = [row for row in claim_rows if row.event is not None]
        answer = claim_status(
            claim, events, product_name=product.name if product else claim.product_code,
            tz=settings.tz, names=catalogue.document_names, collection=collection)
        answer["estimate_note"] = estimate_note(product, claim)
        answers.append(answer)
    return answers


def look_up_history(session: Callable[[], Session], runtime: Runtime,
                    query: Mapping[str, str]) -> dict[str, Any] | None:
    """The asker's own history, masked, when they asked by ID number and name as a member;
    None by claim number, or for a beneficiary who is no member. Ask only after a right
    guess: a wrong one must not take longer or shorter for a member without claims.
    `session` opens the request's session: asked by claim number, none is opened."""
    if "id_number" not in query:
        return None
    session = session()
    member = session.exec(select(Member).where(Member.id_number == query["id_number"],
                                               Member.name == query["name"])).first()
    if member is None:
        return None
    return masked_history(member_history(session, runtime, member))

"""POST /api/v1/status (SPEC §5): a worker's claim in plain Chinese; wrong guesses told nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from conftest import County, new_id_number
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from claims.app import create_app
from claims.auth import system_actor
from claims.db import session_scope
from claims.idcard import make_id_number
from claims.models import Batch, Claim
from workflows.batch import deliver_batch, seal_weekly_batch
from workflows.lifecycle import BY_JOB, BY_REMITTANCE, STATES
from workflows.status import spoken_date
from workflows.transitions import fire

STATUS = "/api/v1/status"
COMPLETE = ["claim_form", "id_card", "invoice", "settlement_sheet", "discharge_summary"]


def ask(client: FlaskClient, body: Any, address: str = "127.0.0.1") -> Any:
    return client.post(STATUS, json=body, environ_base={"REMOTE_ADDR": address})


def by_claim(claim: dict[str, Any], member: dict[str, Any]) -> dict[str, str]:
    return {"claim_no": claim["claim_no"], "id_last6": member["id_number"][-6:]}


def enrolled(county: County, product_code: str = "inpatient", **kw: Any) -> dict[str, Any]:
    member = county.member(**kw)
    county.enrol(member, product_code)
    return member


def system_fire(app: Flask, claim_no: str, event: str, door: str, **fields: Any) -> None:
    """Fire an event that has its own door (a remittance, the notification job) directly."""
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        claim = session.exec(select(Claim).where(Claim.claim_no == claim_no)).one()
        if event == "receive_funds":
            fields["amount"] = claim.approved_amount
        fire(session, runtime, claim, event, system_actor("test"), fields, door=door)


def weekly_batch(app: Flask, *, deliver: bool = False) -> str:
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        result = seal_weekly_batch(session, runtime, system_actor("weekly_batch"))
        assert result.batch is not None
        batch_no = result.batch.batch_no
    if deliver:
        with session_scope(runtime.engine) as session:
            batch = session.exec(select(Batch).where(Batch.batch_no == batch_no)).one()
            deliver_batch(session, batch, system_actor("test"))
    return batch_no


def chinese_date(day: date, *, weekday: bool = False) -> str:
    """How the worker is told a day: 2026年11月27日（星期五）."""
    text = f"{day.year}年{day.month}月{day.day}日"
    return f"{text}（星期{'一二三四五六日'[day.weekday()]}）" if weekday else text


def ok(answer: Any) -> Any:
    assert answer.status_code == 200, answer.get_json()
    return answer


def claim_in(app: Flask, county: County, state: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A claim of an enrolled member moved to `state` the way the county moves claims."""
    member = enrolled(county)
    documents = COMPLETE[:-1] if state == "pending_materials" else COMPLETE
    claim = county.claim(member, documents=documents)
    no = claim["claim_no"]
    if state == "pending_materials":
        ok(county.fire(no, "request_materials", documents=["invoice"], reason="发票复印件看不清"))
    if state == "withdrawn":
        ok(county.fire(no, "withdraw", reason="职工自愿撤回"))
    if state in ("logged", "pending_materials", "withdrawn"):
        return claim, member
    ok(county.fire(no, "verify"))
    if state == "ready":
        return claim, member
    weekly_batch(app, deliver=state != "batched")
    if state in ("batched", "submitted"):
        return claim, member
    if state == "rejected":
        ok(county.fire(no, "reject", reason="不属于互助保障范围"))
        return claim, member
    if state == "returned":
        ok(county.fire(no, "return", reason="缺少住院病历", documents=["discharge_summary"]))
        return claim, member
    amount = "6000.00" if state == "onsite_scheduled" else "1250.00"
    ok(county.fire(no, "approve", amount=amount))
    if state == "approved":
        return claim, member
    system_fire(app, no, "receive_funds", BY_REMITTANCE)
    if state in ("funds_received", "onsite_scheduled"):
        if state == "onsite_scheduled":
            ok(county.fire(no, "schedule_onsite", date=(county.today + timedelta(days=7))
                           .isoformat(), place="县纺织厂职工之家"))
        return claim, member
    system_fire(app, no, "notify", BY_JOB)
    if state == "collected":
        ok(county.fire(no, "collect", id_number=member["id_number"], amount=amount,
                       receipt_no="SJ-0001"))
    return claim, member


def test_a_worker_sees_a_logged_claim_by_claim_number_and_last_six(client: FlaskClient,
                                                                  county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    answer = ask(client, by_claim(claim, member))
    assert answer.status_code == 200, answer.json
    assert answer.headers["Cache-Control"] == "no-store"
    [seen] = answer.json["claims"]
    assert seen == {
        "claim_no": claim["claim_no"],
        "state": "logged",
        "state_label": "已登记",
        "product_name": "住院医疗互助保障",
        "timeline": [{"at": county.today.isoformat(), "label": "已登记"}],
        "next_step": seen["next_step"],
        "missing_documents": [],
        "amount_estimated": "1250.00",
        "estimate_note": None,
        "amount_approved": None,
        "collect": None,
        "onsite": None,
    }
    assert "审核" in seen["next_step"]
    text = answer.get_data(as_text=True)
    assert member["id_number"] not in text and "clerk" not in text


def test_the_claim_number_and_a_final_x_may_be_typed_in_lower_case(client: FlaskClient,
                                                                   county: County) -> None:
    id_number = next(n for n in (make_id_number("510104", date(1980, 3, 1), s, "F")
                                 for s in range(100)) if n.endswith("X"))
    unit = county.unit()
    answer = county.clerk.post("/api/v1/members", {"unit_code": unit["code"], "name": "李娜",
                                                   "id_number": id_number,
                                                   "phone": "13900000000"})
    assert answer.status_code == 201, answer.json
    member = {"id_number": id_number}
    county.enrol(member)
    claim = county.claim(member)
    answer = ask(client, {"claim_no": f"  {claim['claim_no'].lower()} ",
                          "id_last6": id_number[-6:].lower()})
    assert answer.status_code == 200, answer.json
    assert answer.json["claims"][0]["claim_no"] == claim["claim_no"]
    assert ok(ask(client, {"id_number": id_number.lower(), "name": "李娜"})).json["claims"]


def test_id_number_and_name_list_every_claim_of_the_member_newest_first(
        client: FlaskClient, county: County) -> None:
    member = enrolled(county, name="王建国")
    first = county.claim(member)
    second = county.claim(member, incident_date=(county.today - timedelta(days=10)).isoformat(),
                          admission_date=(county.today - timedelta(days=10)).isoformat(),
                          discharge_date=(county.today - timedelta(days=3)).isoformat())
    county.claim()  # another member's claim stays out of it
    answer = ok(ask(client, {"id_number": member["id_number"], "name": "王建国"}))
    assert [c["claim_no"] for c in answer.json["claims"]] == [second["claim_no"],
                                                             first["claim_no"]]
    assert member["id_number"] not in answer.get_data(as_text=True)


def test_a_name_padded_in_the_roster_is_found_as_the_worker_types_it(
        client: FlaskClient, county: County) -> None:
    # Rosters line two-character names up with three-character ones: 张　三 beside 欧阳娜娜.
    member = enrolled(county, name="张\u3000三")
    assert member["name"] == "张三"
    claim = county.claim(member)
    for typed in ("张三", "张 三", " 张\u3000三 "):
        answer = ok(ask(client, {"id_number": member["id_number"], "name": typed}))
        assert [c["claim_no"] for c in answer.json["claims"]] == [claim["claim_no"]], typed
    assert ask(client, {"id_number": member["id_number"], "name": "张四"}).status_code == 404


def test_a_disability_assessed_late_says_why_the_estimate_leaves_it_out(
        client: FlaskClient, county: County) -> None:
    member = enrolled(county, "accident")
    incident = county.today - timedelta(days=300)
    claim = county.claim(member, "accident", cause="accident", incident_date=incident.isoformat(),
                         admission_date=None, discharge_date=None, total_expense="0.00",
                         insurance_paid="0.00", self_paid="0.00", disability_grade=8,
                         disability_assessed_on=(incident + timedelta(days=181)).isoformat())
    [answer] = ok(ask(client, by_claim(claim, member))).json["claims"]
    assert answer["amount_estimated"] == "0.00"
    assert "伤残鉴定晚于意外发生后 180 天" in answer["estimate_note"]
    page = client.post("/status", data=by_claim(claim, member)).get_data(as_text=True)
    assert "伤残鉴定晚于意外发生后 180 天" in page
    plain_member = enrolled(county)
    plain = county.claim(plain_member)
    [answer] = ok(ask(client, by_claim(plain, plain_member))).json["claims"]
    assert answer["estimate_note"] is None


def test_a_death_claim_answers_to_the_beneficiarys_last_six(client: FlaskClient,
                                                            county: County) -> None:
    member = enrolled(county, "accident", name="赵强")
    beneficiary = new_id_number(sex="F", born=date(1990, 2, 2))
    claim = county.claim(member, "accident", cause="accident", death=True,
                         beneficiary={"name": "钱梅", "id_number": beneficiary, "relation": "配偶"},
                         total_expense="0.00", insurance_paid="0.00", self_paid="0.00",
                         documents=["claim_form", "id_card", "accident_proof",
                                    "death_certificate"])
    answer = ok(ask(client, {"claim_no": claim["claim_no"], "id_last6": beneficiary[-6:]}))
    assert answer.json["claims"][0]["amount_estimated"] == "20000.00"
    assert ask(client, by_claim(claim, member)).status_code == 404
    by_own_id = ok(ask(client, {"id_number": beneficiary, "name": "钱梅"}))
    assert [c["claim_no"] for c in by_own_id.json["claims"]] == [claim["claim_no"]]
    for text in (answer.get_data(as_text=True), by_own_id.get_data(as_text=True)):
        assert beneficiary not in text and member["id_number"] not in text


# Each reachable state: the label, what the last line of the timeline says, the next step.
STATE_CASES = {
    "logged": ("已登记", "审核"),
    "pending_materials": ("需补交材料：医疗费用发票（发票复印件看不清）、出院小结",
                          "出院小结"),
    "ready": ("县总工会审核通过", "每周批次"),
    "withdrawn": ("已撤回：职工自愿撤回", "已撤回"),
    "batched": ("已编入每周批次，等待报送市总工会", "即将报送"),
    "submitted": ("已随每周批次报送市总工会", "市总工会正在审核"),
    "rejected": ("市总不予赔付：不属于互助保障范围", "不属于互助保障范围"),
    "returned": ("市总退回，需补交材料：缺少住院病历", "出院小结（缺少住院病历）"),
    "approved": ("市总已核准 1250.00 元", "核准互助金 1250.00 元"),
    "funds_received": ("互助金已到账", "身份证原件"),
    "notified": ("已通知单位工会", "单位工会已收到通知"),
    "onsite_scheduled": ("已安排现场理赔", "具体时间请听单位工会通知"),
    "collected": ("已领取 1250.00 元", "已办结"),
}


@pytest.mark.parametrize("state", list(STATE_CASES))
def test_every_state_reads_plainly(app: Flask, client: FlaskClient, county: County,
                                   state: str) -> None:
    claim, member = claim_in(app, county, state)
    answer = ok(ask(client, by_claim(claim, member)))
    [seen] = answer.json["claims"]
    real_state = "pending_materials" if state == "returned" else state
    last_line, next_words = STATE_CASES[state]
    assert seen["state"] == real_state
    assert seen["state_label"] == STATES[real_state]
    assert seen["timeline"][0]["label"] == "已登记"
    assert last_line in seen["timeline"][-1]["label"], seen["timeline"]
    assert next_words in seen["next_step"], seen["next_step"]
    settings = app.extensions["mutualaid"].settings
    if real_state in ("funds_received", "notified", "onsite_scheduled"):
        assert seen["collect"] == {"place": settings.collection_place,
                                   "hours": settings.collection_hours,
                                   "bring": "身份证原件；代领需授权委托书"}
    else:
        assert seen["collect"] is None
    text = answer.get_data(as_text=True)
    assert member["id_number"] not in text
    assert "clerk" not in text and "job:" not in text


def test_pending_materials_names_each_missing_document_and_why(app: Flask, client: FlaskClient,
                                                               county: County) -> None:
    claim, member = claim_in(app, county, "pending_materials")
    [seen] = ok(ask(client, by_claim(claim, member))).json["claims"]
    assert seen["missing_documents"] == [
        {"name": "医疗费用发票", "reason": "发票复印件看不清"},
        {"name": "出院小结", "reason": None},
    ]
    assert "医疗费用发票（发票复印件看不清）、出院小结" in seen["next_step"]


def test_amounts_and_the_onsite_meeting_once_decided(app: Flask, client: FlaskClient,
                                                    county: County) -> None:
    claim, member = claim_in(app, county, "onsite_scheduled")
    [seen] = ok(ask(client, by_claim(claim, member))).json["claims"]
    assert (seen["amount_estimated"], seen["amount_approved"]) == ("1250.00", "6000.00")
    meeting = county.today + timedelta(days=7)
    assert seen["onsite"] == {"date": meeting.isoformat(), "place": "县纺织厂职工之家"}
    assert f"将于 {chinese_date(meeting, weekday=True)}在县纺织厂职工之家" in seen["next_step"]
    assert seen["timeline"][-1] == {
        "at": county.today.isoformat(),  # data: ISO
        "label": f"已安排现场理赔：{chinese_date(meeting, weekday=True)}，县纺织厂职工之家"}


def test_a_worker_is_told_days_in_chinese_not_iso(app: Flask, client: FlaskClient,
                                                 county: County) -> None:
    assert spoken_date(date(2026, 11, 27)) == "2026年11月27日"
    assert spoken_date(date(2026, 3, 1), weekday=True) == "2026年3月1日（星期日）"
    claim, member = claim_in(app, county, "collected")
    [seen] = ok(ask(client, by_claim(claim, member))).json["claims"]
    assert f"已于 {chinese_date(county.today)}领取" in seen["next_step"]
    assert county.today.isoformat() not in seen["next_step"]
    assert {step["at"] for step in seen["timeline"]} == {county.today.isoformat()}


def test_the_timeline_tells_the_weekly_batch_without_its_code(app: Flask, client: FlaskClient,
                                                             county: County) -> None:
    claim, member = claim_in(app, county, "submitted")
    with session_scope(app.extensions["mutualaid"].engine) as session:
        [batch_no] = session.exec(select(Batch.batch_no)).all()  # 2026-W48
    answer = ok(ask(client, by_claim(claim, member)))
    labels = [step["label"] for step in answer.json["claims"][0]["timeline"]]
    assert labels[-2:] == ["已编入每周批次，等待报送市总工会", "已随每周批次报送市总工会"]
    assert batch_no not in answer.get_data(as_text=True)
    page = client.post("/status", data=by_claim(claim, member)).get_data(as_text=True)
    assert "已随每周批次报送市总工会" in page and batch_no not in page


def test_every_wrong_guess_gets_the_same_answer(client: FlaskClient, county: County) -> None:
    member = enrolled(county, name="孙丽")
    claim = county.claim(member)
    no_claims = county.member(name="周平")
    wrong_six = f"{(int(member['id_number'][-6:-1]) + 1) % 100000:05d}{member['id_number'][-1]}"
    guesses = [
        {"claim_no": claim["claim_no"], "id_last6": wrong_six},
        {"claim_no": "LP2099-999999", "id_last6": member["id_number"][-6:]},
        {"id_number": no_claims["id_number"], "name": "周平"},
        {"id_number": member["id_number"], "name": "孙莉"},
        {"id_number": member["id_number"], "name": "孙丽丽"},
        {"id_number": new_id_number(), "name": "孙丽"},
    ]
    answers = [ask(client, guess) for guess in guesses]
    assert {a.status_code for a in answers} == {404}
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].json["code"] == "not_found"
    assert "Retry-After" not in answers[0].headers


@pytest.mark.parametrize("body, field, code", [
    ({}, "claim_no", "required"),
    ({"claim_no": "LP2026-000001"}, "id_last6", "required"),
    ({"name": "张伟"}, "id_number", "required"),
    ({"claim_no": "LP2026-000001", "id_last6": "123456", "name": "张伟"}, "name", "mixed_lookup"),
    ({"claim_no": "LP2026-000001", "id_last6": "123456", "extra": 1}, "extra", "unknown_field"),
    ({"claim_no": "LP2026-000001", "id_last6": "12345"}, "id_last6", "invalid_id_last6"),
    ({"claim_no": "LP2026-000001", "id_last6": "12345Y"}, "id_last6", "invalid_id_last6"),
    ({"claim_no": "LP 2026/1", "id_last6": "123456"}, "claim_no", "invalid_claim_no"),
    ({"id_number": "110101199003070000", "name": "张伟"}, "id_number", "invalid_check_digit"),
    ({"id_number": new_id_number(), "name": ""}, "name", "too_short"),
])
def test_anything_but_one_of_the_two_shapes_answers_422(client: FlaskClient, body: Any,
                                                        field: str, code: str) -> None:
    answer = ask(client, body)
    assert answer.status_code == 422, answer.json
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in answer.json["errors"]]


def test_the_eleventh_wrong_guess_from_one_address_answers_429(client: FlaskClient,
                                                                county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    wrong = [{"claim_no": f"LP2099-{n:06d}", "id_last6": "000000"} for n in range(11)]
    assert [ask(client, w).status_code for w in wrong[:5]] == [404] * 5
    assert ask(client, by_claim(claim, member)).status_code == 200  # right guesses are free
    assert [ask(client, w).status_code for w in wrong[5:10]] == [404] * 5
    limited = ask(client, wrong[10])
    assert limited.status_code == 429
    assert limited.json["code"] == "too_many_requests" and limited.json["errors"] == []
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json["retry_after"] == int(limited.headers["Retry-After"])
    assert ask(client, wrong[10], address="10.0.0.9").status_code == 404  # another address


def test_guesses_by_id_number_count_per_address(client: FlaskClient, county: County) -> None:
    member, other = enrolled(county, name="吴敏"), enrolled(county, name="郑和")
    county.claim(member)
    county.claim(other)
    for _ in range(10):
        assert ask(client, {"id_number": member["id_number"], "name": "吴明"}).status_code == 404
    assert ask(client, {"id_number": member["id_number"], "name": "吴敏"}).status_code == 429
    assert ask(client, {"id_number": other["id_number"], "name": "郑和"},
               address="10.0.0.2").status_code == 200


def test_wrong_names_for_one_id_number_are_limited_across_addresses(
        app: Flask, client: FlaskClient, county: County) -> None:
    """Beyond SPEC §5's limits: one name after another for one ID number, from ever new
    addresses, was never refused. The limit store keeps no ID number, only a keyed digest."""
    member, other = enrolled(county, name="吴敏"), enrolled(county, name="郑和")
    county.claim(member)
    county.claim(other)
    for n in range(10):
        assert ask(client, {"id_number": member["id_number"], "name": f"吴{n}"},
                   address=f"10.0.3.{n}").status_code == 404
    assert ask(client, {"id_number": member["id_number"].lower(), "name": "吴敏"},
               address="10.0.4.1").status_code == 429
    assert ask(client, {"id_number": other["id_number"], "name": "郑和"},
               address="10.0.4.2").status_code == 200
    instance = app.extensions["mutualaid"].settings.instance_path
    stored = b"".join(path.read_bytes() for path in instance.glob("ratelimit.sqlite3*"))
    assert stored and member["id_number"].encode() not in stored


def test_wrong_guesses_on_one_claim_number_are_limited_across_addresses(
        client: FlaskClient, county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    wrong = {"claim_no": claim["claim_no"].lower(), "id_last6": "000000"}
    for n in range(10):
        assert ask(client, wrong, address=f"10.0.1.{n}").status_code == 404
    assert ask(client, wrong | {"claim_no": claim["claim_no"]},
               address="10.0.2.1").status_code == 429
    other = {"claim_no": "LP2099-000001", "id_last6": "000000"}
    assert ask(client, other, address="10.0.2.2").status_code == 404


def test_each_app_keeps_its_own_counts(app: Flask, database_url: str, tmp_path: Any) -> None:
    other = create_app({"database_url": database_url, "instance_path": tmp_path,
                        "secret_key": "test-secret"})
    mine, theirs = (a.extensions["mutualaid.status_guard"] for a in (app, other))
    assert mine is not theirs and mine.limiter.storage is not theirs.limiter.storage
    other.extensions["mutualaid"].engine.dispose()


def test_behind_a_trusted_proxy_the_forwarded_address_counts(database_url: str,
                                                             tmp_path: Any) -> None:
    proxied = create_app({"database_url": database_url, "instance_path": tmp_path,
                          "secret_key": "test-secret", "trusted_proxies": 1})
    client = proxied.test_client()
    wrong = [{"claim_no": f"LP2099-{n:06d}", "id_last6": "000000"} for n in range(12)]

    def ask_from(body: dict[str, str], forwarded: str) -> int:
        return client.post(STATUS, json=body, headers={"X-Forwarded-For": forwarded},
                           environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code

    assert [ask_from(w, "203.0.113.7") for w in wrong[:10]] == [404] * 10
    assert ask_from(wrong[10], "203.0.113.7") == 429
    assert ask_from(wrong[11], "203.0.113.8") == 404
    proxied.extensions["mutualaid"].engine.dispose()


def test_the_status_call_is_public_in_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/status"]["post"]
    assert operation["security"] == []
    assert {"200", "404", "422", "429"} <= set(operation["responses"])


def test_with_the_shared_limit_store_down_guesses_are_still_limited(
        database_url: str, tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("redis")
    alone = create_app({"database_url": database_url, "instance_path": tmp_path,
                        "secret_key": "test-secret",
                        "ratelimit_storage_uri": "redis://127.0.0.1:9/0"})  # nothing listens
    client = alone.test_client()
    wrong = [{"claim_no": f"LP2099-{n:06d}", "id_last6": "000000"} for n in range(11)]
    assert [ask(client, w).status_code for w in wrong[:10]] == [404] * 10
    assert ask(client, wrong[10]).status_code == 429  # counted in this process meanwhile
    # Asked once, then left alone for a while: no request waits on a store that is down.
    assert caplog.text.count("rate-limit storage unreachable") == 1
    alone.extensions["mutualaid"].engine.dispose()

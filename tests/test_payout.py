"""Payout (SPEC §1 steps 4-6): notices through the outbox, collection in full, on site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import new_id_number
from payout_world import approved_claims, remit
from servers import free_port, http_receiver, smtp_server

from claims.models import ClaimEvent, Notification
from workflows.notify import dispatch_due


def runtime_of(app):
    return app.extensions["mutualaid"]


def trail(county, claim_no):
    return county.clerk.get(f"/api/v1/claims/{claim_no}/events?page_size=100").json


def claim(county, claim_no):
    return county.clerk.get(f"/api/v1/claims/{claim_no}").json


def make_due_now(app):
    with runtime_of(app).engine.begin() as connection:
        connection.execute(sa.update(Notification).values(
            next_try_at=datetime.now(UTC) - timedelta(seconds=1)))


@pytest.fixture
def funds_received(app, county):
    [approved] = approved_claims(app, county, ["1250.00"])
    answer = remit(county, [approved])
    assert answer.status_code == 201, answer.json
    return claim(county, approved["claim_no"])


def test_default_channel_writes_files_and_one_run_notifies(app, county):
    claims = approved_claims(app, county, ["1250.00", "800.00"])
    assert remit(county, claims).status_code == 201
    summary = dispatch_due(runtime_of(app))
    assert summary.sent == 4 and summary.notified == 2
    for c in claims:
        assert claim(county, c["claim_no"])["state"] == "notified"
    outbox = runtime_of(app).settings.instance_path / "outbox"
    unit_notice = sorted((outbox / "unit").glob("*funds_received.txt"))[0].read_text()
    assert claims[0]["claim_no"] in unit_notice and "1250.00" in unit_notice
    assert "身份证原件" in unit_notice and "授权委托书" in unit_notice
    assert len(list((outbox / "worker").glob("*.txt"))) == 2


def test_a_death_claims_notices_send_for_the_beneficiary_not_the_late_worker(app, county):
    beneficiary = new_id_number(sex="F")
    [death] = approved_claims(
        app, county, ["20000.00"], product_code="accident", cause="accident", death=True,
        beneficiary={"name": "钱梅", "id_number": beneficiary, "relation": "配偶"},
        total_expense="0.00", insurance_paid="0.00", self_paid="0.00",
        documents=["claim_form", "id_card", "accident_proof", "death_certificate"])
    assert remit(county, [death]).status_code == 201
    assert dispatch_due(runtime_of(app)).notified == 1
    on_site = county.fire(death["claim_no"], "schedule_onsite",
                          date=county.today.isoformat(), place="单位礼堂")
    assert on_site.status_code == 200, on_site.json
    dispatch_due(runtime_of(app))
    outbox = runtime_of(app).settings.instance_path / "outbox"
    notices = {path.name.split("-", 1)[1]: path.read_text()
               for path in (outbox / "unit").glob("*.txt")}
    assert set(notices) == {"funds_received.txt", "onsite_scheduled.txt"}
    for text in notices.values():
        assert "受益人 钱梅" in text and "受益人身份证原件" in text
        assert "本人" not in text and beneficiary not in text
    assert not list((outbox / "worker").glob("*.txt"))  # nobody writes to the late worker


def test_notices_arrive_by_smtp_and_sms_with_the_right_content(app, county, monkeypatch,
                                                             funds_received):
    with smtp_server() as (inbox, port), http_receiver() as (gateway, url):
        monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
        monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(port))
        monkeypatch.setenv("MUTUALAID_NOTIFY_WORKER_CHANNEL", "sms")
        monkeypatch.setenv("MUTUALAID_SMS_URL", url)
        monkeypatch.setenv("MUTUALAID_SMS_KEY", "k-123")
        monkeypatch.setenv("MUTUALAID_SMS_TEMPLATES", "funds_received_worker=SMS_100")
        summary = dispatch_due(runtime_of(app))
    assert summary.sent == 2 and summary.notified == 1
    [mail] = inbox.messages
    assert mail["To"].endswith("@example.org")
    body = mail.get_content()
    assert funds_received["claim_no"] in mail["Subject"]
    assert funds_received["member_name"] in body and "1250.00" in body
    [sms] = gateway.requests
    assert sms["headers"]["Authorization"] == "Bearer k-123"
    assert sms["body"]["phone"] == "13800000000"
    assert sms["body"]["template_id"] == "SMS_100"
    assert sms["body"]["params"]["amount"] == "1250.00"
    assert sms["body"]["params"]["claim_no"] == funds_received["claim_no"]
    events = [(e["event"], e["actor"]) for e in trail(county, funds_received["claim_no"])]
    assert ("notify", "job:dispatch_notifications") in events
    assert claim(county, funds_received["claim_no"])["state"] == "notified"


def test_with_smtp_down_messages_wait_and_go_out_once_when_it_is_back(app, county, monkeypatch,
                                                                     funds_received):
    port = free_port()
    monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
    monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(port))
    down = dispatch_due(runtime_of(app))
    assert down.retrying == 1 and down.sent == 1  # the worker's file notice is not held back
    assert claim(county, funds_received["claim_no"])["state"] == "funds_received"
    assert dispatch_due(runtime_of(app)).sent == 0  # backing off: nothing due yet
    with smtp_server(port) as (inbox, _):
        make_due_now(app)
        back = dispatch_due(runtime_of(app))
        again = dispatch_due(runtime_of(app))
        make_due_now(app)
        third = dispatch_due(runtime_of(app))
    assert (back.sent, again.sent, third.sent) == (1, 0, 0)
    assert len(inbox.messages) == 1
    assert claim(county, funds_received["claim_no"])["state"] == "notified"


def test_a_message_fails_for_good_after_the_cap_visibly(app, county, monkeypatch,
                                                      funds_received):
    monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
    monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("MUTUALAID_NOTIFY_MAX_ATTEMPTS", "2")
    dispatch_due(runtime_of(app))
    make_due_now(app)
    assert dispatch_due(runtime_of(app)).failed == 1
    with runtime_of(app).engine.connect() as connection:
        state, attempts, error = connection.execute(
            sa.select(Notification.state, Notification.attempts, Notification.last_error)
            .where(Notification.recipient_kind == "unit")).one()
    assert (state, attempts) == ("failed", 2) and error.startswith("smtp:")


def test_the_notice_goes_out_although_the_process_died_right_after_the_change(app, county,
                                                                            database_url):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    [approved] = approved_claims(app, county, ["1250.00"])
    # Another process records the remittance, commits, and is killed before any dispatch.
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import date
        from claims.app import create_app
        from claims.auth import Actor
        from claims.db import session_scope
        from workflows.payout import RemittanceLine, record_remittance
        app = create_app({{"database_url": {database_url!r}, "secret_key": "x"}})
        runtime = app.extensions["mutualaid"]
        with app.app_context(), session_scope(runtime.engine) as session:
            record_remittance(session, runtime, reference="KILLED-1",
                              received_on=runtime.today(), total_amount=125000,
                              items=[RemittanceLine({approved["claim_no"]!r}, 125000)],
                              actor=Actor(username="clerk", role="clerk"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=os.environ | {"MUTUALAID_INSTANCE_PATH": str(
                              runtime_of(app).settings.instance_path)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert claim(county, approved["claim_no"])["state"] == "funds_received"
    assert dispatch_due(runtime_of(app)).notified == 1
    assert claim(county, approved["claim_no"])["state"] == "notified"


def _snapshot(county, claim_no):
    c = claim(county, claim_no)
    return c["state"], c["version"], len(trail(county, claim_no))


@pytest.fixture
def notified(app, county, funds_received):
    dispatch_due(runtime_of(app))
    return claim(county, funds_received["claim_no"])


@pytest.mark.parametrize("fields, status, code", [
    ({"id_number": new_id_number()}, 422, "identity_mismatch"),  # a valid ID, not theirs
    ({"amount": "1249.99"}, 422, "partial_payment"),
    ({"amount": "1250.01"}, 422, "partial_payment"),
    ({"proxy_name": "李四"}, 422, "required"),
    ({"proxy_reference": "委托-1"}, 422, "required"),
    ({"receipt_no": None}, 422, "required"),
])
def test_collect_refuses_and_changes_nothing(county, notified, fields, status, code):
    body = {"id_number": county.id_numbers[notified["member_id"]], "amount": "1250.00",
            "receipt_no": "R-0001"} | fields
    before = _snapshot(county, notified["claim_no"])
    answer = county.fire(notified["claim_no"], "collect", **body)
    assert answer.status_code == status, answer.json
    assert code in [e["code"] for e in answer.json["errors"]]
    assert _snapshot(county, notified["claim_no"]) == before


def collect_both_with(app, county, first_receipt: str, second_receipt: str):
    """Two notified claims (1250.00 and 300.00); the first collected against `first_receipt`,
    then the second tried against `second_receipt`: the first's answer, the second's, and
    whether the second claim is as it was before its try."""
    claims = approved_claims(app, county, ["1250.00", "300.00"])
    remit(county, claims)
    dispatch_due(runtime_of(app))
    first, second = claims
    paid = county.fire(first["claim_no"], "collect",
                       id_number=county.id_numbers[first["member_id"]],
                       amount="1250.00", receipt_no=first_receipt)
    before = _snapshot(county, second["claim_no"])
    reused = county.fire(second["claim_no"], "collect",
                         id_number=county.id_numbers[second["member_id"]],
                         amount="300.00", receipt_no=second_receipt)
    return paid, reused, _snapshot(county, second["claim_no"]) == before


def test_collect_pays_in_full_against_a_unique_receipt(app, county):
    paid, reused, unchanged = collect_both_with(app, county, "R-0001", "R-0001")
    assert paid.status_code == 200, paid.json
    assert paid.json["state"] == "collected" and paid.json["paid_amount"] == "1250.00"
    assert reused.status_code == 409
    assert reused.json["errors"][0]["code"] == "duplicate_receipt"
    assert unchanged
    first = paid.json
    receipt = county.clerk.get(f"/api/v1/claims/{first['claim_no']}/receipt")
    assert receipt.status_code == 200 and receipt.mimetype == "text/html"
    # Only the print button's one handler may run, by its hash, as on the console's receipt.
    csp = receipt.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    page = receipt.get_data(as_text=True)
    assert "壹仟贰佰伍拾元整" in page and "R-0001" in page
    assert "经办人：<span>clerk</span>" in page  # who paid at the counter
    assert "返回理赔页" not in page  # the console's way back, not the API's
    assert county.id_numbers[first["member_id"]] not in page
    assert first["id_number_masked"] in page


def test_a_receipt_number_used_already_answers_409_whatever_spaces_surround_it(app, county):
    paid, reused, unchanged = collect_both_with(app, county, " RC-1", "RC-1 ")
    assert paid.status_code == 200 and paid.json["receipt_no"] == "RC-1", paid.json
    assert reused.status_code == 409, reused.json
    assert [(e["field"], e["code"]) for e in reused.json["errors"]] == [
        ("receipt_no", "duplicate_receipt")]
    assert unchanged


def test_proxy_collection_records_the_proxy_and_the_authorisation(app, county, notified):
    answer = county.fire(notified["claim_no"], "collect",
                         id_number=county.id_numbers[notified["member_id"]], amount="1250.00",
                         receipt_no="R-0002", proxy_name="李四", proxy_reference="委托书-7")
    assert answer.status_code == 200, answer.json
    page = county.clerk.get(f"/api/v1/claims/{notified['claim_no']}/receipt").get_data(True)
    assert "李四" in page and "委托书-7" in page


def test_collect_before_the_union_was_told_is_not_allowed(county, funds_received):
    answer = county.fire(funds_received["claim_no"], "collect",
                         id_number=county.id_numbers[funds_received["member_id"]],
                         amount="1250.00", receipt_no="R-9")
    assert answer.status_code == 409
    assert "schedule_onsite" in answer.json["allowed_events"]


def test_schedule_onsite_for_a_large_claim_notifies_the_union(app, county):
    [large] = approved_claims(app, county, ["6000.00"])
    remit(county, [large])
    meeting = (county.today + timedelta(days=3)).isoformat()
    answer = county.fire(large["claim_no"], "schedule_onsite", date=meeting, place="厂部会议室")
    assert answer.status_code == 200, answer.json
    assert answer.json["state"] == "onsite_scheduled"
    assert answer.json["onsite_date"] == meeting
    with runtime_of(app).engine.connect() as connection:
        templates = connection.execute(sa.select(Notification.template)).scalars().all()
    assert "onsite_scheduled" in templates
    paid = county.fire(large["claim_no"], "collect",
                       id_number=county.id_numbers[large["member_id"]], amount="6000.00",
                       receipt_no="R-ONSITE-1")
    assert paid.status_code == 200 and paid.json["state"] == "collected"


@pytest.mark.parametrize("amount, fields, status, code", [
    ("1250.00", {"date": "+3", "place": "会议室"}, 422, "below_onsite_threshold"),
    ("4999.99", {"date": "+3", "place": "会议室"}, 422, "below_onsite_threshold"),
    ("6000.00", {"date": "-1", "place": "会议室"}, 422, "date_in_past"),
    ("6000.00", {"place": "会议室"}, 422, "required"),
    ("6000.00", {"date": "+3"}, 422, "required"),
    ("6000.00", {"date": "+3", "place": "x" * 201}, 422, "too_long"),
])
def test_schedule_onsite_refuses_and_changes_nothing(app, county, amount, fields, status, code):
    [approved] = approved_claims(app, county, [amount])
    remit(county, [approved])
    if "date" in fields:
        fields = fields | {"date": (county.today + timedelta(days=int(fields["date"])))
                           .isoformat()}
    before = _snapshot(county, approved["claim_no"])
    answer = county.fire(approved["claim_no"], "schedule_onsite", **fields)
    assert answer.status_code == status, answer.json
    assert code in [e["code"] for e in answer.json["errors"]]
    assert _snapshot(county, approved["claim_no"]) == before


def test_schedule_onsite_needs_the_money_first(app, county):
    [approved] = approved_claims(app, county, ["6000.00"])
    answer = county.fire(approved["claim_no"], "schedule_onsite",
                         date=county.today.isoformat(), place="会议室")
    assert answer.status_code == 409


def _age_events(app, event, days):
    with runtime_of(app).engine.begin() as connection:
        connection.execute(sa.update(ClaimEvent).where(ClaimEvent.event == event)
                           .values(at=datetime.now(UTC) - timedelta(days=days)))


def test_remind_uncollected_once_per_interval(app, county, notified):
    from workflows.reminders import remind_uncollected

    assert remind_uncollected(runtime_of(app))["queued"] == 0  # notified today
    _age_events(app, "notify", 15)
    assert remind_uncollected(runtime_of(app))["queued"] == 1
    assert remind_uncollected(runtime_of(app))["queued"] == 0  # same interval: no second
    _age_events(app, "notify", 29)
    assert remind_uncollected(runtime_of(app))["queued"] == 1  # the next 14 days
    assert dispatch_due(runtime_of(app)).sent == 2
    outbox = runtime_of(app).settings.instance_path / "outbox" / "unit"
    assert any(notified["claim_no"] in p.read_text()
               for p in outbox.glob("*remind_uncollected.txt"))


def test_chase_materials_after_30_days(app, county):
    from workflows.reminders import chase_materials

    c = county.claim(documents=["claim_form"])
    county.fire(c["claim_no"], "request_materials", documents=["claim_form"], reason="未签字")
    assert chase_materials(runtime_of(app))["queued"] == 0
    _age_events(app, "request_materials", 31)
    assert chase_materials(runtime_of(app)) == {"due": 1, "queued": 1}
    assert chase_materials(runtime_of(app)) == {"due": 1, "queued": 0}


def test_flag_overdue_batches_once(app, county):
    from claims.models import Batch
    from workflows.reminders import flag_overdue

    [approved] = approved_claims(app, county, ["100.00"])
    county.claim()  # noise
    extra = approved_claims(app, county, ["200.00", "300.00"])
    with runtime_of(app).engine.begin() as connection:
        connection.execute(sa.update(Batch).values(
            delivered_at=datetime.now(UTC) - timedelta(days=31)))
        # un-decide one claim of the second batch: it is still awaiting the city office
        connection.execute(sa.text(
            "UPDATE claim SET state = 'submitted', approved_amount = NULL "
            "WHERE claim_no = :no"), {"no": extra[0]["claim_no"]})
    first = flag_overdue(runtime_of(app))
    assert first["flagged"] == 1 and first["batches"] == [extra[0]["batch_no"]]
    assert flag_overdue(runtime_of(app))["flagged"] == 0
    assert approved["state"] == "approved"


def test_the_dispatch_job_run_through_the_api_notifies_and_is_recorded(county, funds_received):
    run = county.clerk.post("/api/v1/jobs/dispatch_notifications/runs", {})
    assert run.status_code == 200, run.json
    assert run.json["outcome"] == "ok" and run.json["summary"]["notified"] == 1
    assert claim(county, funds_received["claim_no"])["state"] == "notified"
    again = county.clerk.post("/api/v1/jobs/dispatch_notifications/runs", {})
    assert again.json["summary"] == {"sent": 0, "retrying": 0, "failed": 0, "notified": 0}
    listed = county.clerk.get("/api/v1/jobs/runs?job=dispatch_notifications").json
    assert len(listed) == 2


@pytest.mark.parametrize("job", ["remind_uncollected", "chase_materials", "flag_overdue"])
def test_each_reminder_job_runs_by_hand_and_twice_changes_nothing(county, job):
    first = county.clerk.post(f"/api/v1/jobs/{job}/runs", {})
    second = county.clerk.post(f"/api/v1/jobs/{job}/runs", {})
    assert first.status_code == second.status_code == 200
    assert first.json["outcome"] == second.json["outcome"] == "ok"
    assert second.json["summary"] == first.json["summary"]


def test_several_dispatchers_at_once_never_send_a_message_twice(app, county, monkeypatch):
    import threading

    claims = approved_claims(app, county, ["100.00", "200.00", "300.00", "400.00"])
    assert remit(county, claims).status_code == 201
    with smtp_server() as (inbox, port):
        monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
        monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(port))
        summaries = []

        def dispatcher() -> None:
            with app.app_context():
                summaries.append(dispatch_due(runtime_of(app)))

        threads = [threading.Thread(target=dispatcher) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sum(s.sent for s in summaries) == 8  # 4 unions by mail, 4 workers as files
    assert sorted(m["Subject"] for m in inbox.messages) == sorted(
        {m["Subject"] for m in inbox.messages})
    assert len(inbox.messages) == 4
    assert all(claim(county, c["claim_no"])["state"] == "notified" for c in claims)

"""SPEC §4 reminders: uncollected money on day 14, materials missing for more than 30 days;
days are dates in the configured time zone, each stay in a state is reminded afresh, and a
reminder whose claim moved on before it went out is cancelled, never sent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from payout_world import approved_claims, remit
from servers import free_port, smtp_server
from test_console import sign_in
from test_observability import scrape

from claims.models import Claim, ClaimEvent, Notification
from workflows.jobs import run_job
from workflows.notify import dispatch_due
from workflows.reminders import chase_materials, remind_uncollected

SHANGHAI = ZoneInfo("Asia/Shanghai")
COMPLETE = ["claim_form", "id_card", "invoice", "settlement_sheet", "discharge_summary"]


def runtime_of(app):
    return app.extensions["mutualaid"]


def shanghai(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def set_latest_event_at(app, claim_no: str, event: str, at: datetime) -> None:
    """The claim's latest `event` happened at `at` (the tests' clock for reminders)."""
    with runtime_of(app).engine.begin() as connection:
        claim_id = connection.execute(
            sa.select(Claim.id).where(Claim.claim_no == claim_no)).scalar_one()
        latest = connection.execute(
            sa.select(sa.func.max(ClaimEvent.id))
            .where(ClaimEvent.claim_id == claim_id, ClaimEvent.event == event)).scalar_one()
        connection.execute(sa.update(ClaimEvent).where(ClaimEvent.id == latest)
                           .values(at=at.astimezone(UTC)))


def reminded(app, template: str) -> list[str]:
    """Claim numbers of the reminders in the outbox, oldest first."""
    with runtime_of(app).engine.connect() as connection:
        return list(connection.execute(
            sa.select(Claim.claim_no).join(Notification, Notification.claim_id == Claim.id)
            .where(Notification.template == template).order_by(Notification.id)).scalars())


def notified_claims(app, county, n: int) -> list[dict]:
    claims = approved_claims(app, county, [f"{100 + i}.00" for i in range(n)])
    assert remit(county, claims).status_code == 201
    assert dispatch_due(runtime_of(app)).notified == n
    return claims


def test_claims_notified_on_the_same_local_day_are_reminded_on_the_same_day(app, county):
    runtime = runtime_of(app)
    claims = notified_claims(app, county, 4)
    notified_on = date(2026, 11, 12)
    # 09:00, 10:00 and 23:30 in Shanghai on the 12th; 00:30 on the 13th, still the 12th in UTC.
    for claim, at in zip(claims, (shanghai(notified_on, 9), shanghai(notified_on, 10),
                                  shanghai(notified_on, 23, 30),
                                  shanghai(notified_on + timedelta(days=1), 0, 30)),
                         strict=True):
        set_latest_event_at(app, claim["claim_no"], "notify", at)
    numbers = [c["claim_no"] for c in claims]

    assert remind_uncollected(runtime, today=date(2026, 11, 25))["queued"] == 0  # day 13
    assert remind_uncollected(runtime, today=date(2026, 11, 26))["queued"] == 3  # day 14
    assert reminded(app, "remind_uncollected") == numbers[:3]
    assert remind_uncollected(runtime, today=date(2026, 11, 26))["queued"] == 0
    assert remind_uncollected(runtime, today=date(2026, 11, 27))["queued"] == 1
    assert reminded(app, "remind_uncollected") == numbers
    assert remind_uncollected(runtime, today=date(2026, 12, 9))["queued"] == 0  # day 27
    assert remind_uncollected(runtime, today=date(2026, 12, 10))["queued"] == 3  # day 28
    with runtime.engine.connect() as connection:
        payloads = connection.execute(sa.select(Notification.payload).where(
            Notification.template == "remind_uncollected")).scalars().all()
    assert {p["notified_on"] for p in payloads} == {"2026-11-12", "2026-11-13"}


def test_materials_are_chased_on_the_31st_local_day_whatever_the_hour(app, county):
    runtime = runtime_of(app)
    early, late = (county.claim(documents=["claim_form"]) for _ in range(2))
    for claim, hour in ((early, 8), (late, 18)):
        assert county.fire(claim["claim_no"], "request_materials", documents=["claim_form"],
                           reason="未签字").status_code == 200
        set_latest_event_at(app, claim["claim_no"], "request_materials",
                            shanghai(date(2026, 10, 1), hour))
    assert chase_materials(runtime, today=date(2026, 10, 31))["queued"] == 0  # day 30
    assert chase_materials(runtime, today=date(2026, 11, 1)) == {"due": 2, "queued": 2}


def test_a_claim_back_in_pending_materials_is_chased_again_in_its_second_stay(app, county):
    runtime = runtime_of(app)
    claim_no = county.claim(documents=["claim_form"])["claim_no"]
    assert county.fire(claim_no, "request_materials", documents=["claim_form"],
                       reason="未签字").status_code == 200
    set_latest_event_at(app, claim_no, "request_materials", shanghai(date(2026, 3, 1), 10))
    assert chase_materials(runtime, today=date(2026, 4, 1))["queued"] == 1  # day 31
    # The materials came, the claim was verified, then one invoice was found unreadable.
    assert county.fire(claim_no, "attach_documents", documents=COMPLETE).status_code == 200
    assert county.fire(claim_no, "verify").status_code == 200
    assert county.fire(claim_no, "request_materials", documents=["invoice"],
                       reason="发票不清").status_code == 200
    set_latest_event_at(app, claim_no, "request_materials", shanghai(date(2026, 5, 1), 10))

    assert chase_materials(runtime, today=date(2026, 5, 31))["queued"] == 0  # day 30
    assert chase_materials(runtime, today=date(2026, 6, 1))["queued"] == 1  # day 31
    assert chase_materials(runtime, today=date(2026, 6, 1))["queued"] == 0
    assert chase_materials(runtime, today=date(2026, 6, 29))["queued"] == 0  # day 59
    assert chase_materials(runtime, today=date(2026, 6, 30))["queued"] == 1  # day 60
    assert reminded(app, "chase_materials") == [claim_no] * 3


def test_a_reminder_queued_before_the_money_was_collected_is_cancelled_not_sent(
        app, county, client, monkeypatch):
    runtime = runtime_of(app)
    [claim] = notified_claims(app, county, 1)
    assert remind_uncollected(runtime, today=county.today + timedelta(days=14))["queued"] == 1
    monkeypatch.setenv("MUTUALAID_NOTIFY_UNIT_CHANNEL", "smtp")
    monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(free_port()))  # the mail server is down
    assert dispatch_due(runtime).retrying == 1
    paid = county.fire(claim["claim_no"], "collect",
                       id_number=county.id_numbers[claim["member_id"]],
                       amount=claim["approved_amount"], receipt_no="R-1")
    assert paid.status_code == 200, paid.json

    with smtp_server() as (inbox, port):  # the mail server is back
        monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(port))
        with runtime.engine.begin() as connection:
            connection.execute(sa.update(Notification).values(
                next_try_at=datetime.now(UTC) - timedelta(seconds=1)))
        run = run_job(runtime, "dispatch_notifications")
        again = dispatch_due(runtime)
    assert inbox.messages == []
    assert run.summary == {"sent": 0, "retrying": 0, "failed": 0, "notified": 0,
                           "cancelled": 1}
    assert again.as_dict() == {"sent": 0, "retrying": 0, "failed": 0, "notified": 0}

    [cancelled] = county.clerk.get("/api/v1/notifications",
                                   query_string={"state": "cancelled"}).json
    assert (cancelled["claim_no"], cancelled["template"]) == (claim["claim_no"],
                                                              "remind_uncollected")
    assert cancelled["last_error"] == "not sent: the claim is now collected"
    assert cancelled["sent_at"] is None
    refused = county.clerk.post(f"/api/v1/notifications/{cancelled['id']}/resend", {})
    assert refused.status_code == 409 and refused.json["code"] == "not_failed"

    samples = scrape(client)  # neither a backlog nor a failure
    assert samples['mutualaid_outbox_messages{state="pending"}'] == 0
    assert samples['mutualaid_outbox_messages{state="failed"}'] == 0
    sign_in(client, county)
    assert 'id="failed-notices"' not in client.get("/console/").get_data(as_text=True)
    page = client.get("/console/notifications?state=cancelled").get_data(as_text=True)
    row = page[page.index(f'id="notice-{cancelled["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert "已取消" in row and "重新发送" not in row and "未发送：理赔已转为“已领取”" in row
    english = client.get("/console/notifications?state=cancelled&lang=en").get_data(as_text=True)
    assert "Not sent: the claim is now “Collected”" in english


def test_a_materials_reminder_is_cancelled_once_the_claim_is_complete(app, county):
    runtime = runtime_of(app)
    claim_no = county.claim(documents=["claim_form"])["claim_no"]
    county.fire(claim_no, "request_materials", documents=["claim_form"], reason="未签字")
    set_latest_event_at(app, claim_no, "request_materials", shanghai(date(2026, 3, 1), 10))
    assert chase_materials(runtime, today=date(2026, 4, 1))["queued"] == 1
    assert county.fire(claim_no, "attach_documents", documents=COMPLETE).status_code == 200
    assert county.fire(claim_no, "verify").status_code == 200
    summary = dispatch_due(runtime)
    assert (summary.sent, summary.cancelled) == (1, 1)  # materials_requested went, the chase not
    outbox = runtime.settings.instance_path / "outbox" / "unit"
    assert not list(outbox.glob("*chase_materials.txt"))
    [chase] = county.clerk.get("/api/v1/notifications",
                               query_string={"template": "chase_materials"}).json
    assert (chase["state"], chase["last_error"]) == ("cancelled",
                                                     "not sent: the claim is now ready")

"""The outbox through the API (SPEC §5 notifications): staff see who was told what and what
failed, and send a failed notice again once its channel is put right: once, never twice."""

from __future__ import annotations

import json

from payout_world import approved_claims, remit
from servers import free_port, http_receiver
from test_console import post_form, sign_in

from workflows.notify import dispatch_due


def outbox(api, **query):
    answer = api.get("/api/v1/notifications", query_string=query)
    assert answer.status_code == 200, answer.json
    return answer


def test_the_outbox_lists_each_notice_newest_first_with_its_claim(county) -> None:
    first = county.claim(documents=["claim_form"])
    second = county.claim(documents=["claim_form"])
    for claim in (first, second):
        county.fire(claim["claim_no"], "request_materials", reason="缺发票")
    answer = outbox(county.clerk)
    assert [n["claim_no"] for n in answer.json] == [second["claim_no"], first["claim_no"]]
    notice = answer.json[0]
    assert (notice["recipient_kind"], notice["template"], notice["state"]) == (
        "unit", "materials_requested", "pending")
    assert notice["unit_code"] == second["unit_code"] and notice["attempts"] == 0
    assert json.loads(answer.headers["X-Pagination"])["total"] == 2
    assert outbox(county.clerk, state="sent").json == []
    assert [n["claim_no"] for n in outbox(county.clerk, claim_no=first["claim_no"].lower())
            .json] == [first["claim_no"]]
    one = county.clerk.get(f"/api/v1/notifications/{notice['id']}")
    assert one.status_code == 200 and one.json == notice
    assert [n["claim_no"] for n in outbox(county.clerk, template="materials_requested")
            .json] == [second["claim_no"], first["claim_no"]]
    assert outbox(county.clerk, template="funds_received").json == []
    for field, value in (("state", "lost"), ("template", "materials_requsted")):
        refused = county.clerk.get("/api/v1/notifications", query_string={field: value})
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == field


def test_unit_staff_see_their_own_units_notices_only(county) -> None:
    ours = county.claim(documents=["claim_form"])
    theirs = county.claim(documents=["claim_form"])
    for claim in (ours, theirs):
        county.fire(claim["claim_no"], "request_materials", reason="缺发票")
    staff = county.unit_staff(ours["unit_code"])
    listed = outbox(staff).json
    assert [n["claim_no"] for n in listed] == [ours["claim_no"]]
    other = outbox(county.clerk, claim_no=theirs["claim_no"]).json[0]
    assert staff.get(f"/api/v1/notifications/{other['id']}").status_code == 404
    assert staff.post(f"/api/v1/notifications/{listed[0]['id']}/resend", {}).status_code == 403


def fail_a_worker_notice(app, county, monkeypatch) -> dict:
    """A payout whose worker's SMS failed for good (the gateway down, one attempt allowed)."""
    [approved] = approved_claims(app, county, ["900.00"])
    assert remit(county, [approved]).status_code == 201
    monkeypatch.setenv("MUTUALAID_NOTIFY_WORKER_CHANNEL", "sms")
    monkeypatch.setenv("MUTUALAID_SMS_URL", f"http://127.0.0.1:{free_port()}/sms")
    monkeypatch.setenv("MUTUALAID_SMS_KEY", "k-1")
    monkeypatch.setenv("MUTUALAID_SMS_TEMPLATES", "funds_received_worker=SMS_100")
    monkeypatch.setenv("MUTUALAID_NOTIFY_MAX_ATTEMPTS", "1")
    assert dispatch_due(app.extensions["mutualaid"]).failed == 1
    return approved


def test_a_failed_notice_is_sent_again_once_when_its_channel_is_back(
        app, county, client, monkeypatch) -> None:
    runtime = app.extensions["mutualaid"]
    approved = fail_a_worker_notice(app, county, monkeypatch)
    [failed] = outbox(county.clerk, state="failed").json
    assert failed["recipient_kind"] == "worker" and failed["last_error"]
    pending = county.clerk.post(f"/api/v1/notifications/{failed['id']}/resend", {})
    assert pending.status_code == 200, pending.json
    assert (pending.json["state"], pending.json["attempts"]) == ("pending", 0)
    assert pending.json["last_error"] is None  # kept in the audit row below
    again = county.clerk.post(f"/api/v1/notifications/{failed['id']}/resend", {})
    assert again.status_code == 409 and again.json["code"] == "not_failed"
    assert county.clerk.post(f"/api/v1/notifications/{failed['id']}/resend",
                             {"now": True}).status_code == 422
    trail = county.clerk.get(f"/api/v1/claims/{approved['claim_no']}/events").json
    assert trail[-1]["event"] == "notification_resent" and trail[-1]["actor"] == "clerk"
    sign_in(client, county)
    page = client.get(f"/console/claims/{approved['claim_no']}").get_data(as_text=True)
    assert "通知已重新排队发送" in page and "职工：互助金到账领取通知" in page
    with http_receiver() as (gateway, url):
        monkeypatch.setenv("MUTUALAID_SMS_URL", url)
        assert dispatch_due(runtime).sent == 1
        assert dispatch_due(runtime).sent == 0
    assert len(gateway.requests) == 1
    sent = county.clerk.get(f"/api/v1/notifications/{failed['id']}").json
    assert sent["state"] == "sent" and sent["channel"] == "sms" and sent["sent_at"]


def test_the_console_warns_of_failed_notices_and_sends_one_again(
        app, county, client, monkeypatch) -> None:
    approved = fail_a_worker_notice(app, county, monkeypatch)
    [failed] = outbox(county.clerk, state="failed").json
    sign_in(client, county)
    home = client.get("/console/").get_data(as_text=True)
    assert 'id="failed-notices"' in home and "/console/notifications?state=failed" in home
    page = client.get("/console/notifications?state=failed").get_data(as_text=True)
    row = page[page.index(f'id="notice-{failed["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert approved["claim_no"] in row and "发送失败" in row and "重新发送" in row
    answer = post_form(client, f"/console/notifications/{failed['id']}/resend",
                       {"state": "failed"})
    assert answer.status_code == 303
    assert "将在一分钟内发送" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert county.clerk.get(f"/api/v1/notifications/{failed['id']}").json["state"] == "pending"
    stale = post_form(client, f"/console/notifications/{failed['id']}/resend", {"state": ""})
    assert "只有发送失败的通知才能重新发送" in client.get(
        stale.headers["Location"]).get_data(as_text=True)
    assert 'id="failed-notices"' not in client.get("/console/").get_data(as_text=True)


def test_unit_staff_have_no_outbox_page(county, client) -> None:
    claim = county.claim()
    county.unit_staff(claim["unit_code"])
    sign_in(client, county, f"staff-{claim['unit_code']}")
    assert client.get("/console/notifications").status_code == 403
    assert 'href="/console/notifications"' not in client.get("/console/").get_data(as_text=True)

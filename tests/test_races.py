"""Two clerks at once, found by a stress run on PostgreSQL: each race answers as the one-at-a-
time case does (409, 200), never 500 or a 503 from a deadlock, and no notice tells a worker to
collect money already paid."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from conftest import Api, County
from flask import Flask
from payout_world import approved_claims, remit
from test_decisions import submitted_claims

from workflows.notify import dispatch_due


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their answers in order."""
    start = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        start.wait()
        answers[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def clerk_client(app: Flask, county: County) -> Api:
    """The clerk on a test client of its own (one per thread)."""
    return Api(app.test_client(), county.clerk.token)


def test_one_receipt_number_on_two_claims_at_once_answers_200_and_409(app, county):
    for trial in range(4):
        first, second = approved_claims(app, county, ["1250.00", "800.00"])
        assert remit(county, [first, second], reference=f"CITY-R-{trial}").status_code == 201
        dispatch_due(app.extensions["mutualaid"])
        collects = [partial(clerk_client(app, county).post,
                            f"/api/v1/claims/{claim['claim_no']}/events",
                            {"event": "collect", "amount": claim["approved_amount"],
                             "id_number": county.id_numbers[claim["member_id"]],
                             "receipt_no": f"SJ-RACE-{trial}"})
                    for claim in (first, second)]
        answers = at_once(*collects)
        assert sorted(a.status_code for a in answers) == [200, 409], [a.json for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.json["errors"][0]["code"] == "duplicate_receipt"


def test_a_return_beside_its_batchs_decisions_upload_never_deadlocks(app, county):
    for _trial in range(6):
        batch_no, (returned, other) = submitted_claims(app, county, 2)
        answers = at_once(
            partial(clerk_client(app, county).post, f"/api/v1/batches/{batch_no}/decisions",
                    {"decisions": [
                        {"claim_no": other, "outcome": "approved", "approved_amount": "1000.00"},
                        {"claim_no": returned, "outcome": "returned", "reason": "补材料"}]}),
            partial(clerk_client(app, county).post, f"/api/v1/claims/{returned}/events",
                    {"event": "return", "reason": "缺病历"}))
        # One of them returns the claim; the other finds it returned already (409 or 422).
        statuses = [a.status_code for a in answers]
        assert 503 not in statuses and 500 not in statuses, [a.json for a in answers]
        assert 200 in statuses
        claim = county.clerk.get(f"/api/v1/claims/{returned}").json
        assert claim["state"] == "pending_materials" and claim["batch_no"] is None


def test_a_payout_notice_still_in_the_outbox_when_the_money_is_paid_is_not_sent(app, county):
    [claim] = approved_claims(app, county, ["6000.00"])
    assert remit(county, [claim]).status_code == 201
    on_site = county.fire(claim["claim_no"], "schedule_onsite",
                          date=county.today.isoformat(), place="单位会议室")
    assert on_site.status_code == 200, on_site.json
    paid = county.fire(claim["claim_no"], "collect",
                       id_number=county.id_numbers[claim["member_id"]], amount="6000.00",
                       receipt_no="SJ-ONSITE-1")
    assert paid.status_code == 200, paid.json
    summary = dispatch_due(app.extensions["mutualaid"])  # the minute after the meeting
    assert (summary.sent, summary.cancelled) == (0, 3)
    outbox = app.extensions["mutualaid"].settings.instance_path / "outbox"
    assert not list(outbox.glob("*/*.txt"))
    states = {n["template"]: n["state"] for n in county.clerk.get(
        f"/api/v1/notifications?claim_no={claim['claim_no']}").json}
    assert states == {"funds_received": "cancelled", "funds_received_worker": "cancelled",
                      "onsite_scheduled": "cancelled"}


def test_the_same_remittance_posted_twice_at_once_answers_201_and_409(app, county):
    for trial in range(4):
        claims = approved_claims(app, county, ["1250.00"])
        body = {"reference": f"CITY-TWICE-{trial}", "received_on": county.today.isoformat(),
                "total_amount": "1250.00",
                "items": [{"claim_no": claims[0]["claim_no"], "amount": "1250.00"}]}
        answers = at_once(*(partial(clerk_client(app, county).post, "/api/v1/remittances", body)
                            for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.json for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.json["code"] == "duplicate_reference"


def test_the_counters_notice_not_sent_before_an_on_site_payment_was_set_is_cancelled(
        app, county):
    [claim] = approved_claims(app, county, ["6000.00"])
    assert remit(county, [claim]).status_code == 201
    on_site = county.fire(claim["claim_no"], "schedule_onsite",
                          date=county.today.isoformat(), place="单位会议室")
    assert on_site.status_code == 200, on_site.json
    summary = dispatch_due(app.extensions["mutualaid"])
    assert (summary.sent, summary.cancelled) == (1, 2)  # the meeting's notice only
    outbox = app.extensions["mutualaid"].settings.instance_path / "outbox"
    assert [p.name.split("-", 1)[1] for p in outbox.glob("*/*.txt")] == ["onsite_scheduled.txt"]

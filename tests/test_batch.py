"""The weekly batch through the API and the run: seal, idempotency, deliver, roles."""

from __future__ import annotations

import json
import threading

import sqlalchemy as sa
from sqlmodel import select

from claims.auth import system_actor
from claims.db import session_scope
from claims.models import Batch, Claim, ClaimEvent
from workflows.batch import iso_week, run_weekly_batch, seal_weekly_batch, transmit_due_batches


def runtime_of(app):
    return app.extensions["mutualaid"]


def claim_states(county, numbers: list[str]) -> set[str]:
    return {county.clerk.get(f"/api/v1/claims/{no}").json["state"] for no in numbers}


def test_run_now_with_nothing_ready_answers_200_and_makes_no_batch(app, county):
    county.claim()  # logged, not ready
    answer = county.clerk.post("/api/v1/batches", {})
    assert answer.status_code == 200
    assert answer.json == {"batch_no": None, "claim_count": 0, "total_claimed": "0.00"}
    assert county.clerk.post("/api/v1/batches").status_code == 200  # no body at all: the same
    assert county.clerk.get("/api/v1/batches").json == []


def test_run_now_seals_ready_claims_into_this_weeks_batch(app, county):
    numbers = county.ready_claims(2)
    county.claim()  # logged only: stays out
    answer = county.clerk.post("/api/v1/batches", {})
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["batch_no"] == iso_week(county.today)
    assert (body["claim_count"], body["total_claimed"], body["sealed"]) == (2, "2500.00", 2)
    assert body["totals_by_state"] == {"batched": {"count": 2, "total_estimate": "2500.00"}}
    # The default folder transmission: the manifest is in the folder, the claims stay batched.
    assert (body["transmission"], body["transmission_state"]) == ("folder", "sent")
    assert body["manifest_written_at"] is not None and body["delivered_at"] is None
    assert claim_states(county, numbers) == {"batched"}
    outbox = runtime_of(app).settings.instance_path / "outbox" / "city" / body["batch_no"]
    assert sorted(p.suffix for p in outbox.iterdir()) == [".csv", ".html", ".xlsx"]
    trail = county.clerk.get(f"/api/v1/claims/{numbers[0]}/events").json
    assert trail[-1]["event"] == "seal" and trail[-1]["actor"] == "clerk"


def test_a_second_run_adds_to_the_open_batch_and_counts_every_claim(county):
    county.ready_claims(2)
    first = county.clerk.post("/api/v1/batches", {}).json
    assert county.clerk.post("/api/v1/batches", {}).status_code == 200  # nothing new: no batch
    county.ready_claims(1)
    again = county.clerk.post("/api/v1/batches", {})
    assert again.status_code == 201
    assert again.json["batch_no"] == first["batch_no"]
    assert (again.json["claim_count"], again.json["sealed"]) == (3, 1)
    assert again.json["total_claimed"] == "3750.00"
    assert len(county.clerk.get("/api/v1/batches").json) == 1
    # Sealed as it now stands: the batch page and the cover sheet date the last claims in.
    assert again.json["sealed_at"] > first["sealed_at"]


def test_deliver_submits_every_claim_and_a_later_run_makes_a_supplementary_batch(county):
    numbers = county.ready_claims(2)
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/events", {"event": "deliver"})
    assert answer.status_code == 200, answer.json
    assert answer.json["delivered_at"] is not None
    assert answer.json["totals_by_state"] == {
        "submitted": {"count": 2, "total_estimate": "2500.00"}}
    assert claim_states(county, numbers) == {"submitted"}
    trail = county.clerk.get(f"/api/v1/claims/{numbers[1]}/events").json
    assert [e["event"] for e in trail][-2:] == ["seal", "deliver"]
    later = county.ready_claims(1)
    supplementary = county.clerk.post("/api/v1/batches", {})
    assert supplementary.status_code == 201
    assert supplementary.json["batch_no"] == f"{batch_no}-2"
    assert supplementary.json["claim_count"] == 1
    assert county.clerk.get(f"/api/v1/claims/{later[0]}").json["batch_no"] == f"{batch_no}-2"


def test_batch_event_errors(county):
    county.ready_claims(1)
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    path = f"/api/v1/batches/{batch_no}/events"
    unknown = county.clerk.post(path, {"event": "explode"})
    assert unknown.status_code == 422 and unknown.json["errors"][0]["code"] == "unknown_event"
    assert county.clerk.post(path, {"event": "seal"}).status_code == 422
    assert county.clerk.post(path, {"event": "deliver", "extra": 1}).status_code == 422
    assert county.clerk.post(path, {}).status_code == 422
    missing = county.clerk.post("/api/v1/batches/2000-W01/events", {"event": "deliver"})
    assert missing.status_code == 404 and missing.json["code"] == "not_found"
    assert county.clerk.post(path, {"event": "deliver"}).status_code == 200
    again = county.clerk.post(path, {"event": "deliver"})
    assert again.status_code == 409 and again.json["code"] == "batch_delivered"
    assert county.clerk.post("/api/v1/batches", {"unknown": 1}).status_code == 422


def test_unit_staff_may_not_use_batch_calls(county):
    unit = county.unit()
    staff = county.unit_staff(unit["code"])
    county.ready_claims(1)
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    for answer in (staff.get("/api/v1/batches"), staff.get(f"/api/v1/batches/{batch_no}"),
                   staff.post("/api/v1/batches", {}),
                   staff.get(f"/api/v1/batches/{batch_no}/manifest"),
                   staff.post(f"/api/v1/batches/{batch_no}/events", {"event": "deliver"})):
        assert answer.status_code == 403, answer.json
    assert county.client.get("/api/v1/batches").status_code == 401


def test_list_is_newest_first_paginated_and_filtered(county):
    county.ready_claims(1)
    first = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    county.clerk.post(f"/api/v1/batches/{first}/events", {"event": "deliver"})
    county.ready_claims(1)
    second = county.admin.post("/api/v1/batches", {}).json["batch_no"]
    answer = county.clerk.get("/api/v1/batches?page_size=1")
    assert [b["batch_no"] for b in answer.json] == [second]
    assert json.loads(answer.headers["X-Pagination"])["total"] == 2
    assert [b["batch_no"] for b in county.clerk.get("/api/v1/batches?delivered=true").json] == [
        first]
    assert [b["batch_no"] for b in county.clerk.get("/api/v1/batches?delivered=false").json] == [
        second]
    shown = county.clerk.get(f"/api/v1/batches/{first}").json
    assert shown["manifest"]["csv"] == f"/api/v1/batches/{first}/manifest?format=csv"
    assert county.clerk.get("/api/v1/batches/1999-W01").status_code == 404


def test_concurrent_runs_never_put_a_claim_in_two_batches(app, county):
    numbers = county.ready_claims(6)
    runtime = runtime_of(app)
    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(run_weekly_batch(runtime, system_actor("weekly_batch")))
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(r["sealed"] for r in results) == [0, 0, 0, 6]
    with session_scope(runtime.engine, write=False) as session:
        batches = session.exec(select(Batch)).all()
        assert [(b.claim_count, b.total_claimed) for b in batches] == [(6, 6 * 125000)]
        seals = session.execute(
            sa.select(ClaimEvent.claim_id, sa.func.count()).where(ClaimEvent.event == "seal")
            .group_by(ClaimEvent.claim_id)).all()
        assert len(seals) == 6 and {count for _id, count in seals} == {1}
    assert claim_states(county, numbers) == {"batched"}


def test_a_run_finishes_what_a_crashed_run_left(app, county):
    """Sealed and committed, then the process died before the manifest: the next run, with
    nothing ready, writes the manifest and transmits it."""
    county.ready_claims(2)
    runtime = runtime_of(app)
    with session_scope(runtime.engine) as session:
        sealed = seal_weekly_batch(session, runtime, system_actor("weekly_batch"))
        assert sealed.batch is not None
        batch_no = sealed.batch.batch_no
    summary = run_weekly_batch(runtime, system_actor("weekly_batch"))
    assert summary["batch_no"] is None and summary["sealed"] == 0
    assert "batch_transmission" not in summary  # it sealed none
    assert summary["manifests_written"] == [batch_no]
    assert summary["transmission"] == {"sent": [batch_no], "failed": []}
    again = run_weekly_batch(runtime, system_actor("weekly_batch"))
    assert again["manifests_written"] == [] and again["transmission"] == {"sent": [],
                                                                          "failed": []}


def test_seal_and_deliver_write_one_audit_event_per_claim(app, county):
    numbers = county.ready_claims(3)
    runtime = runtime_of(app)
    run_weekly_batch(runtime, system_actor("weekly_batch"))
    with session_scope(runtime.engine, write=False) as session:
        claims = session.exec(select(Claim).where(Claim.claim_no.in_(numbers))).all()
        for claim in claims:
            events = session.exec(select(ClaimEvent).where(ClaimEvent.claim_id == claim.id)
                                  .order_by(ClaimEvent.id)).all()
            assert [e.event for e in events] == ["log", "verify", "seal"]
            assert events[-1].version == claim.version == 3
            assert events[-1].payload == {"batch_no": iso_week(county.today)}
            assert events[-1].actor == "job:weekly_batch"


def test_the_run_that_sealed_a_batch_says_when_another_run_sent_it(app, county, monkeypatch):
    import workflows.batch

    county.ready_claims(2)
    runtime = runtime_of(app)
    write_missing_manifests = workflows.batch.write_missing_manifests

    def another_run_sends_first(runtime_: object) -> list[str]:
        written = write_missing_manifests(runtime_)
        assert transmit_due_batches(runtime_)["sent"] == [iso_week(county.today)]
        return written

    monkeypatch.setattr(workflows.batch, "write_missing_manifests", another_run_sends_first)
    summary = run_weekly_batch(runtime, system_actor("weekly_batch"))
    assert summary["sealed"] == 2 and summary["transmission"] == {"sent": [], "failed": []}
    assert summary["batch_transmission"] == "sent by another run"

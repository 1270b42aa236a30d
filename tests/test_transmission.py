"""Transmission of the manifest: folder, real SMTP (aiosmtpd), HTTP; retries and no resends."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import openpyxl
import pytest
import sqlalchemy as sa
from servers import Received, SmtpServer, free_port, http_receiver
from sqlmodel import select

from claims.auth import system_actor
from claims.db import session_scope
from claims.idcard import mask
from claims.models import Batch, ClaimEvent, Member
from config.settings import Settings
from workflows.batch import (
    backoff_seconds,
    run_weekly_batch,
    seal_weekly_batch,
    transmit_due_batches,
)
from workflows.manifest import SHEET

ACTOR = system_actor("weekly_batch")


@pytest.fixture
def smtp(app, monkeypatch) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    monkeypatch.setenv("MUTUALAID_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(server.port))
    monkeypatch.setenv("MUTUALAID_SMTP_FROM", "county@example.org")
    settings = app.extensions["mutualaid"].settings
    monkeypatch.setattr(settings, "transmission", "smtp")
    monkeypatch.setattr(settings, "city_office_email", "city@example.org")
    monkeypatch.setattr(settings, "transmission_timeout", 5.0)
    yield server
    server.stop()


def the_batch(app) -> Batch:
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        return session.exec(select(Batch)).one()


def states(county, claim_nos: list[str]) -> set[str]:
    return {county.clerk.get(f"/api/v1/claims/{n}").json["state"] for n in claim_nos}


def make_due(app) -> None:
    with session_scope(app.extensions["mutualaid"].engine) as session:
        session.execute(sa.update(Batch).values(
            transmission_next_try_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_smtp_sends_the_manifest_to_the_city_office_and_delivers(app, county, smtp):
    smtp.start()
    claims = county.ready_claims(2)
    summary = run_weekly_batch(app.extensions["mutualaid"], ACTOR)
    batch_no = summary["batch_no"]
    assert summary["transmission"] == {"sent": [batch_no], "failed": []}
    [message] = smtp.inbox.messages
    assert message["To"] == "city@example.org" and batch_no in message["Subject"]
    assert message["Message-ID"].startswith(f"<{batch_no}.")
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert sorted(attachments) == [f"{SHEET}-{batch_no}.csv", f"{SHEET}-{batch_no}.xlsx"]
    book = openpyxl.load_workbook(io.BytesIO(attachments[f"{SHEET}-{batch_no}.xlsx"]))
    rows = list(book[SHEET].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:-1]] == claims
    assert [r[3] for r in rows[1:-1]] == [
        county.clerk.get(f"/api/v1/claims/{n}").json["id_number_masked"] for n in claims]
    assert rows[-1][1] == "合计" and rows[-1][12] == 2500
    csv_text = attachments[f"{SHEET}-{batch_no}.csv"]
    assert all(n in csv_text for n in claims) and "2500.00" in csv_text
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        for number in session.exec(select(Member.id_number)).all():
            assert number not in message.as_string() and mask(number) in csv_text
        delivered = session.exec(select(ClaimEvent).where(ClaimEvent.event == "deliver")).all()
        assert {e.actor for e in delivered} == {"job:transmission"} and len(delivered) == 2
    batch = the_batch(app)
    assert (batch.transmission, batch.transmission_state, batch.transmission_attempts) == (
        "smtp", "sent", 1)
    assert batch.delivered_at is not None and batch.transmitted_at is not None
    assert states(county, claims) == {"submitted"}


def test_an_smtp_outage_is_retried_and_the_batch_delivered_once_it_returns(app, county, smtp):
    claims = county.ready_claims(2)
    runtime = app.extensions["mutualaid"]
    summary = run_weekly_batch(runtime, ACTOR)  # the server is down
    assert summary["transmission"] == {"sent": [], "failed": [summary["batch_no"]]}
    batch = the_batch(app)
    assert (batch.transmission_state, batch.transmission_attempts) == ("failed", 1)
    assert batch.transmission_error.startswith("smtp: ConnectionRefusedError")
    assert batch.transmission_next_try_at > datetime.now(UTC)
    assert batch.delivered_at is None and states(county, claims) == {"batched"}
    shown = county.clerk.get(f"/api/v1/batches/{batch.batch_no}").json
    assert shown["transmission_state"] == "failed" and shown["transmission_attempts"] == 1
    assert transmit_due_batches(runtime) == {"sent": [], "failed": []}  # not due yet

    smtp.start()
    make_due(app)
    assert transmit_due_batches(runtime) == {"sent": [batch.batch_no], "failed": []}
    assert len(smtp.inbox.messages) == 1
    batch = the_batch(app)
    assert (batch.transmission_state, batch.transmission_attempts) == ("sent", 2)
    assert batch.transmission_error is None and batch.delivered_at is not None
    assert states(county, claims) == {"submitted"}
    make_due(app)
    assert transmit_due_batches(runtime) == {"sent": [], "failed": []}
    assert run_weekly_batch(runtime, ACTOR)["transmission"] == {"sent": [], "failed": []}
    assert len(smtp.inbox.messages) == 1


def test_concurrent_transmissions_send_a_batch_once(app, county, smtp):
    smtp.start()
    county.ready_claims(2)
    runtime = app.extensions["mutualaid"]
    smtp.stop()
    run_weekly_batch(runtime, ACTOR)  # fails: the batch waits for a retry
    smtp.start()
    make_due(app)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(transmit_due_batches(runtime)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r["sent"]) for r in results) == 1
    assert len(smtp.inbox.messages) == 1


def test_a_clerk_may_deliver_while_the_transmission_is_failing(app, county, smtp):
    county.ready_claims(1)
    runtime = app.extensions["mutualaid"]
    batch_no = run_weekly_batch(runtime, ACTOR)["batch_no"]
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/events", {"event": "deliver"})
    assert answer.status_code == 200
    smtp.start()
    make_due(app)
    assert transmit_due_batches(runtime) == {"sent": [], "failed": []}  # delivered by hand
    assert smtp.inbox.messages == []


def test_the_folder_transmission_copies_the_files_and_claims_stay_batched(app, county, tmp_path,
                                                                         monkeypatch):
    folder = tmp_path / "city-share"
    monkeypatch.setattr(app.extensions["mutualaid"].settings, "transmission_folder", folder)
    claims = county.ready_claims(2)
    batch_no = run_weekly_batch(app.extensions["mutualaid"], ACTOR)["batch_no"]
    names = sorted(p.name for p in (folder / batch_no).iterdir())
    assert names == [f"封面-{batch_no}.html", f"{SHEET}-{batch_no}.csv",
                     f"{SHEET}-{batch_no}.xlsx"]
    assert states(county, claims) == {"batched"}
    batch = the_batch(app)
    assert (batch.transmission, batch.transmission_state, batch.delivered_at) == (
        "folder", "sent", None)
    county.ready_claims(1)  # the batch grows: the folder gets the new manifest
    run_weekly_batch(app.extensions["mutualaid"], ACTOR)
    csv_text = (folder / batch_no / f"{SHEET}-{batch_no}.csv").read_text("utf-8-sig")
    assert len(csv_text.splitlines()) == 5  # header, three claims, totals


@pytest.fixture
def city_office(app, monkeypatch) -> Iterator[Received]:
    with http_receiver([500, 200], path="/manifests") as (received, url):
        settings = app.extensions["mutualaid"].settings
        monkeypatch.setattr(settings, "transmission", "http")
        monkeypatch.setattr(settings, "transmission_url", url)
        monkeypatch.setattr(settings, "transmission_token", "s3cret-token")
        yield received


def test_http_retries_after_a_500_and_delivers_on_200(app, county, city_office):
    claims = county.ready_claims(2)
    runtime = app.extensions["mutualaid"]
    batch_no = run_weekly_batch(runtime, ACTOR)["batch_no"]
    batch = the_batch(app)
    assert batch.transmission_state == "failed"
    assert batch.transmission_error == "http: the city office answered 500"
    assert states(county, claims) == {"batched"}
    make_due(app)
    assert transmit_due_batches(runtime) == {"sent": [batch_no], "failed": []}
    assert states(county, claims) == {"submitted"}
    first, second = (r["headers"] for r in city_office.requests)
    body = city_office.requests[0]["body"]
    assert first["Idempotency-Key"] == second["Idempotency-Key"]  # the same manifest, resent
    assert first["Idempotency-Key"].startswith(f"{batch_no}.")
    assert first["Authorization"] == "Bearer s3cret-token"
    assert first["Content-Type"].startswith("multipart/form-data; boundary=")
    parsed = message_from_bytes(
        b"Content-Type: " + first["Content-Type"].encode() + b"\r\n\r\n" + body,
        policy=policy.default)
    parts = {part.get_param("name", header="content-disposition"): part
             for part in parsed.iter_parts()}
    assert sorted(parts) == ["csv", "metadata", "xlsx"]
    book = openpyxl.load_workbook(io.BytesIO(parts["xlsx"].get_payload(decode=True)))
    assert [r[0] for r in book[SHEET].iter_rows(values_only=True)][1:-1] == claims
    make_due(app)
    assert transmit_due_batches(runtime) == {"sent": [], "failed": []}
    assert len(city_office.requests) == 2


def test_transmission_errors_keep_no_secrets(app, county, monkeypatch):
    settings = app.extensions["mutualaid"].settings
    monkeypatch.setattr(settings, "transmission", "http")
    monkeypatch.setattr(settings, "transmission_url",
                        f"http://user:pa55word@127.0.0.1:{free_port()}/x")
    county.ready_claims(1)
    run_weekly_batch(app.extensions["mutualaid"], ACTOR)
    error = the_batch(app).transmission_error
    assert error.startswith("http: ConnectionRefusedError")
    assert "pa55word" not in error and "user" not in error


def test_backoff_doubles_and_is_capped():
    settings = Settings(instance_path=None, database_url="", secret_key="")  # type: ignore
    assert [backoff_seconds(settings, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff_seconds(settings, 12) == 3600


def test_a_hung_mail_server_holds_up_no_write_and_a_batch_grown_meanwhile_is_sent_whole(
        app, county, smtp, monkeypatch):
    from test_faults import hung_mail_server

    runtime = app.extensions["mutualaid"]
    monkeypatch.setattr(runtime.settings, "transmission_timeout", 30.0)
    claims = county.ready_claims(2)
    summaries: list[dict] = []
    with hung_mail_server() as server:
        monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(server.port))
        run = threading.Thread(target=lambda: summaries.append(run_weekly_batch(runtime, ACTOR)))
        run.start()
        assert server.connected.wait(30)  # the manifest of two claims is on its way, stuck
        claims += county.ready_claims(1)  # writes go on
        with session_scope(runtime.engine) as session:  # and so does a seal into the batch
            assert seal_weekly_batch(session, runtime, ACTOR).sealed == 1
        # Done while the send still waited on the server: it had not given up yet.
        assert not server.hung_up.is_set()
        server.release()
        run.join(60)
    # That send no longer stands for the batch: it grew meanwhile, and is due as it is now.
    assert summaries[0]["transmission"] == {"sent": [], "failed": []}
    batch = the_batch(app)
    assert (batch.claim_count, batch.transmission_state, batch.delivered_at) == (
        3, "pending", None)
    monkeypatch.setenv("MUTUALAID_SMTP_PORT", str(smtp.port))
    smtp.start()
    assert transmit_due_batches(runtime) == {"sent": [batch.batch_no], "failed": []}
    [message] = smtp.inbox.messages
    csv_text = next(part.get_content() for part in message.iter_attachments()
                    if part.get_filename().endswith(".csv"))
    assert all(claim_no in csv_text for claim_no in claims)
    assert states(county, claims) == {"submitted"}

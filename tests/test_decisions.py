"""SPEC §3 approve/reject/return and §7 POST /batches/{batch_no}/decisions, as JSON and as XLSX."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from claims.auth import system_actor
from claims.db import session_scope
from claims.models import Batch, Claim, ClaimEvent, Notification
from workflows.batch import (
    DECISION_COLUMNS,
    MANIFEST_COLUMNS,
    deliver_batch,
    iso_week,
    seal_weekly_batch,
)
from workflows.manifest import SHEET, write_manifest
from workflows.notify import dispatch_due

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- the world: claims the city office has in hand ----------------------------------------


def seal_and_deliver(app: Flask, *, deliver: bool = True) -> str:
    """Run the weekly batch (and record its delivery): the batch_no that took the claims."""
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        batch = seal_weekly_batch(session, runtime, system_actor("weekly_batch")).batch
        assert batch is not None
        if deliver:
            deliver_batch(session, batch, system_actor("transmission"))
        return batch.batch_no


def submitted_claims(app: Flask, county: Any, count: int = 3) -> tuple[str, list[str]]:
    """`count` claims (estimate 1250.00 each) in a batch delivered to the city office."""
    claim_nos = [county.claim()["claim_no"] for _ in range(count)]
    for claim_no in claim_nos:
        assert county.fire(claim_no, "verify").status_code == 200
    return seal_and_deliver(app), claim_nos


def decide(county: Any, batch_no: str, *decisions: dict[str, Any]) -> Any:
    return county.clerk.post(f"/api/v1/batches/{batch_no}/decisions",
                             {"decisions": list(decisions)})


def claim_of(county: Any, claim_no: str) -> dict[str, Any]:
    answer = county.clerk.get(f"/api/v1/claims/{claim_no}")
    assert answer.status_code == 200, answer.json
    return answer.json


def batch_row(app: Flask, batch_no: str) -> Batch:
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        return session.exec(select(Batch).where(Batch.batch_no == batch_no)).one()


def snapshot(app: Flask) -> dict[str, Any]:
    """Everything a refused upload must leave as it was."""
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        claims = {c.claim_no: (c.state, c.version, c.approved_amount, c.batch_id, c.last_reason)
                  for c in session.exec(select(Claim))}
        batches = {b.batch_no: (b.claim_count, b.total_claimed)
                   for b in session.exec(select(Batch))}
        events = session.exec(select(sa.func.count()).select_from(ClaimEvent)).one()
        messages = session.exec(select(sa.func.count()).select_from(Notification)).one()
    return {"claims": claims, "batches": batches, "events": events, "messages": messages}


def error_fields(answer: Any, status: int = 422) -> dict[str, str]:
    assert answer.status_code == status, (answer.status_code, answer.json)
    assert {"code", "message", "errors"} <= set(answer.json)
    return {item["field"]: item["code"] for item in answer.json["errors"]}


# --- JSON ------------------------------------------------------------------------------------


def test_json_decisions_approve_reject_and_return(app, county):
    batch_no, (approved, rejected, returned) = submitted_claims(app, county)
    answer = decide(
        county, batch_no,
        {"claim_no": approved, "outcome": "approved", "approved_amount": "1200.00"},
        {"claim_no": rejected, "outcome": "rejected", "reason": "不属于保障范围"},
        {"claim_no": returned, "outcome": "returned", "reason": "缺住院病历"},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {"applied": 3, "above_estimate": []}
    claim = claim_of(county, approved)
    assert (claim["state"], claim["approved_amount"], claim["above_estimate"]) == (
        "approved", "1200.00", False)
    claim = claim_of(county, rejected)
    assert (claim["state"], claim["reason"]) == ("rejected", "不属于保障范围")
    assert claim_of(county, returned)["state"] == "pending_materials"
    trail = county.clerk.get(f"/api/v1/claims/{approved}/events").json
    assert trail[-1]["event"] == "approve" and trail[-1]["actor"] == "clerk"
    assert trail[-1]["payload"]["amount"] == "1200.00"


def test_an_approved_amount_may_be_sent_as_a_number(app, county):
    batch_no, (claim_no,) = submitted_claims(app, county, 1)
    answer = decide(county, batch_no,
                    {"claim_no": claim_no, "outcome": "approved", "approved_amount": 1000.5})
    assert answer.status_code == 200, answer.json
    assert claim_of(county, claim_no)["approved_amount"] == "1000.50"


def test_an_approved_amount_above_the_estimate_is_applied_and_flagged(app, county):
    batch_no, (above, within) = submitted_claims(app, county, 2)
    answer = decide(county, batch_no,
                    {"claim_no": above, "outcome": "approved", "approved_amount": "1500.00"},
                    {"claim_no": within, "outcome": "approved", "approved_amount": "1250.00"})
    assert answer.status_code == 200, answer.json
    assert answer.json == {"applied": 2, "above_estimate": [above]}
    claim = claim_of(county, above)
    assert (claim["state"], claim["approved_amount"], claim["above_estimate"]) == (
        "approved", "1500.00", True)
    assert claim_of(county, within)["above_estimate"] is False


def test_a_returned_claim_leaves_its_batch_and_travels_in_a_later_one(app, county):
    batch_no, (returned, stays) = submitted_claims(app, county, 2)
    before = batch_row(app, batch_no)
    assert (before.claim_count, before.total_claimed) == (2, 250000)
    answer = decide(county, batch_no,
                    {"claim_no": returned, "outcome": "returned", "reason": "发票不清晰"})
    assert answer.status_code == 200, answer.json
    claim = claim_of(county, returned)
    assert (claim["state"], claim["batch_no"], claim["reason"]) == (
        "pending_materials", None, "发票不清晰")
    after = batch_row(app, batch_no)
    assert (after.claim_count, after.total_claimed) == (1, 125000)
    assert claim_of(county, stays)["batch_no"] == batch_no
    # The week's batch was delivered: the claim goes in a supplementary one.
    assert county.fire(returned, "verify").status_code == 200
    later = seal_and_deliver(app, deliver=False)
    assert later == f"{iso_week(county.today)}-2" != batch_no
    claim = claim_of(county, returned)
    assert (claim["state"], claim["batch_no"]) == ("batched", later)
    assert (batch_row(app, later).claim_count, batch_row(app, later).total_claimed) == (1, 125000)


def test_a_returned_claim_names_the_documents_sent_back_and_tells_the_unit(app, county):
    batch_no, (returned, plain, approved) = submitted_claims(app, county, 3)
    refused = decide(county, batch_no, {"claim_no": approved, "outcome": "approved",
                                        "approved_amount": "1250.00", "documents": ["invoice"]})
    assert error_fields(refused) == {"decisions.0.documents": "not_applicable"}
    answer = decide(county, batch_no,
                    {"claim_no": returned, "outcome": "returned", "documents": ["invoice"],
                     "reason": "发票金额与结算单不一致，请补交医院盖章的费用清单"},
                    {"claim_no": plain, "outcome": "returned", "reason": "需核实费用"})
    assert answer.status_code == 200, answer.json
    invoice = next(d for d in claim_of(county, returned)["documents"] if d["code"] == "invoice")
    assert (invoice["status"], invoice["reason"]) == (
        "rejected", "发票金额与结算单不一致，请补交医院盖章的费用清单")
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        notices = {n.payload["claim_no"]: n for n in session.exec(
            select(Notification).where(Notification.template == "materials_requested"))}
    assert set(notices) == {returned, plain}  # the unit union hears of both
    dispatch_due(app.extensions["mutualaid"])
    outbox = app.extensions["mutualaid"].settings.instance_path / "outbox" / "unit"
    texts = {path.read_text() for path in outbox.glob("*materials_requested.txt")}
    with_documents = next(t for t in texts if returned in t)
    assert "经市总工会审核后退回" in with_documents
    assert f"{invoice['name']}（未通过：发票金额" in with_documents
    without = next(t for t in texts if plain in t)
    assert "经市总工会审核后退回" in without and "说明：需核实费用" in without
    # The unit brings the invoice again; the clerk verifies; it travels in a later batch.
    assert county.fire(returned, "attach_documents", documents=["invoice"]).status_code == 200
    assert county.fire(returned, "verify").status_code == 200


def test_one_bad_row_among_good_ones_refuses_the_upload_listing_every_bad_row(app, county):
    batch_no, claim_nos = submitted_claims(app, county, 6)
    outside = county.claim()["claim_no"]  # logged, in no batch
    before = snapshot(app)
    answer = decide(
        county, batch_no,
        {"claim_no": claim_nos[0], "outcome": "approved", "approved_amount": "1000.00"},
        {"claim_no": claim_nos[1], "outcome": "approved"},
        {"claim_no": claim_nos[2], "outcome": "rejected", "reason": "  "},
        {"claim_no": "LP1999-999999", "outcome": "rejected", "reason": "不符"},
        {"claim_no": outside, "outcome": "approved", "approved_amount": "10.00"},
        {"claim_no": claim_nos[3], "outcome": "returned", "reason": "缺材料",
         "approved_amount": "5.00"},
        {"claim_no": claim_nos[0], "outcome": "rejected", "reason": "重复"},
        {"claim_no": claim_nos[4], "outcome": "approved", "approved_amount": "0"},
        {"claim_no": claim_nos[5], "outcome": "returned", "reason": "缺发票"},
    )
    assert error_fields(answer) == {
        "decisions.1.approved_amount": "required",
        "decisions.2.reason": "required",
        "decisions.3.claim_no": "unknown_claim",
        "decisions.4.claim_no": "not_in_batch",
        "decisions.5.approved_amount": "not_applicable",
        "decisions.6.claim_no": "duplicate_claim",
        "decisions.7.approved_amount": "amount_not_positive",
    }
    assert snapshot(app) == before


def test_a_claim_decided_already_is_refused_and_nothing_else_applies(app, county):
    batch_no, (first, second) = submitted_claims(app, county, 2)
    approve = {"claim_no": first, "outcome": "approved", "approved_amount": "1000.00"}
    assert decide(county, batch_no, approve).status_code == 200
    before = snapshot(app)
    answer = decide(county, batch_no, approve,
                    {"claim_no": second, "outcome": "rejected", "reason": "不符"})
    assert error_fields(answer) == {"decisions.0.claim_no": "not_submitted"}
    assert snapshot(app) == before


def test_decisions_on_a_batch_not_yet_delivered_are_refused(app, county):
    claim_no = county.claim()["claim_no"]
    county.fire(claim_no, "verify")
    batch_no = seal_and_deliver(app, deliver=False)
    answer = decide(county, batch_no, {"claim_no": claim_no, "outcome": "rejected",
                                       "reason": "不符"})
    assert error_fields(answer) == {"decisions.0.claim_no": "not_submitted"}


@pytest.mark.parametrize(("decision", "field"), [
    ({"outcome": "maybe", "reason": "x"}, "decisions.0.outcome"),
    ({"outcome": "approved", "approved_amount": "12.345"}, "decisions.0.approved_amount"),
    ({"outcome": "approved", "approved_amount": "-1.00"}, "decisions.0.approved_amount"),
    ({"outcome": "rejected", "reason": "x" * 201}, "decisions.0.reason"),
    ({"outcome": "rejected", "reason": "x", "note": "?"}, "decisions.0.note"),
])
def test_a_malformed_decision_answers_422_naming_it(app, county, decision, field):
    batch_no, (claim_no,) = submitted_claims(app, county, 1)
    before = snapshot(app)
    answer = decide(county, batch_no, {"claim_no": claim_no, **decision})
    assert field in error_fields(answer)
    assert snapshot(app) == before


def test_an_empty_list_of_decisions_answers_422(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    assert "decisions" in error_fields(decide(county, batch_no))


def test_decisions_on_an_unknown_batch_answer_404(county):
    answer = decide(county, "2026-W01", {"claim_no": "LP2026-000001", "outcome": "rejected",
                                         "reason": "不符"})
    assert error_fields(answer, 404) == {}


def test_unit_staff_may_not_record_decisions(app, county):
    batch_no, (claim_no,) = submitted_claims(app, county, 1)
    staff = county.unit_staff(county.unit()["code"])
    answer = staff.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": claim_no, "outcome": "rejected", "reason": "不符"}]})
    assert answer.status_code == 403


def test_decisions_need_a_token(client):
    answer = client.post("/api/v1/batches/2026-W01/decisions", json={"decisions": []})
    assert answer.status_code == 401


# --- the city office's sheet ---------------------------------------------------------------


HEADERS = [title for _key, title in MANIFEST_COLUMNS + DECISION_COLUMNS]


def decisions_sheet(rows: list[dict[str, Any]], *, cover: bool = True) -> bytes:
    """The manifest as the city office sends it back: a cover sheet, a title, the claims with
    审核结果 / 核准金额 / 原因 filled in, a blank row and a totals row."""
    book = openpyxl.Workbook()
    if cover:
        book.active.title = "封面"
        book.active.append(["报送清单", "签字："])
        sheet = book.create_sheet("清单")
    else:
        sheet = book.active
    sheet.append(["县总工会职工互助保障理赔报送清单"])
    sheet.append(HEADERS)
    for row in rows:
        sheet.append([row.get(title) for title in HEADERS])
    sheet.append([])
    totals = {"理赔编号": "合计", "预估互助金": 1250.0 * len(rows),
              "核准金额": sum(r["核准金额"] for r in rows
                          if isinstance(r.get("核准金额"), float | int))}
    sheet.append([totals.get(title) for title in HEADERS])
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def upload(county: Any, batch_no: str, data: bytes, filename: str = "decisions.xlsx",
           content_type: str = XLSX) -> Any:
    return county.clerk.post(f"/api/v1/batches/{batch_no}/decisions",
                             data={"file": (BytesIO(data), filename, content_type)},
                             content_type="multipart/form-data")


def row(claim_no: str, outcome: Any, amount: Any = None, reason: Any = None) -> dict[str, Any]:
    return {"理赔编号": claim_no, "单位": "单位1", "姓名": "张伟", "身份证号": "330100********0011",
            "险种": "住院医疗互助保障", "预估互助金": 1250.0, "审核结果": outcome,
            "核准金额": amount, "原因": reason}


def test_the_decisions_sheet_round_trip_decides_the_claims(app, county):
    batch_no, claim_nos = submitted_claims(app, county, 5)
    data = decisions_sheet([
        row(claim_nos[0], "核准", 1234.5),  # a number cell: exactly 1234.50, no float error
        row(claim_nos[1], "不予赔付", reason="既往症"),
        row(claim_nos[2], "退回", reason="缺出院小结"),
        row(claim_nos[3], "approved", "1300.10"),  # a text cell
        row(claim_nos[4], None),  # undecided yet: skipped
    ])
    answer = upload(county, batch_no, data)
    assert answer.status_code == 200, answer.json
    assert answer.json == {"applied": 4, "above_estimate": [claim_nos[3]]}
    assert claim_of(county, claim_nos[0])["approved_amount"] == "1234.50"
    assert claim_of(county, claim_nos[1])["state"] == "rejected"
    assert claim_of(county, claim_nos[2])["state"] == "pending_materials"
    assert claim_of(county, claim_nos[3])["approved_amount"] == "1300.10"
    assert claim_of(county, claim_nos[4])["state"] == "submitted"


def manifest_xlsx(app: Flask, batch_no: str) -> Path:
    """The batch's manifest as the county sends it to the city office."""
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        batch = session.exec(select(Batch).where(Batch.batch_no == batch_no)).one()
        return write_manifest(session, runtime, batch).xlsx


def filled_in(manifest: Path, decided: dict[str, tuple[Any, Any, Any]],
              totals: Any = None) -> bytes:
    """The manifest as the city office sends it back: its own decision columns (审核结果,
    核准金额, 原因) filled in for the claims `decided`, `totals` as the totals row's amount."""
    book = openpyxl.load_workbook(manifest)
    sheet = book[SHEET]
    headers = [cell.value for cell in sheet[1]]
    columns = [headers.index(title) + 1 for _key, title in DECISION_COLUMNS]  # there already
    for number in range(2, sheet.max_row + 1):
        claim_no = sheet.cell(number, 1).value
        values = decided.get(claim_no) if claim_no else (None, totals, None)
        for column, value in zip(columns, values or (None, None, None), strict=True):
            sheet.cell(number, column, value)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_manifest_comes_back_filled_in_and_decides_the_claims(app, county):
    batch_no, (approved, rejected, returned) = submitted_claims(app, county, 3)
    data = filled_in(manifest_xlsx(app, batch_no), {
        approved: ("核准", 1180.3, None),  # a number cell, as typed into the 0.00 cell
        rejected: ("不予赔付", None, "等待期内出险"),
        returned: ("退回", None, "缺出院小结"),
    }, totals=1180.3)  # the city's own total: the totals row is no decision
    answer = upload(county, batch_no, data, f"{SHEET}-{batch_no}.xlsx")
    assert answer.status_code == 200, answer.json
    assert answer.json == {"applied": 3, "above_estimate": []}
    claim = claim_of(county, approved)
    assert (claim["state"], claim["approved_amount"]) == ("approved", "1180.30")
    claim = claim_of(county, rejected)
    assert (claim["state"], claim["approved_amount"], claim["reason"]) == (
        "rejected", None, "等待期内出险")
    claim = claim_of(county, returned)
    assert (claim["state"], claim["batch_no"], claim["reason"]) == (
        "pending_materials", None, "缺出院小结")
    assert (batch_row(app, batch_no).claim_count, batch_row(app, batch_no).total_claimed) == (
        2, 250000)


def test_a_manifest_partly_filled_in_decides_only_its_filled_rows(app, county):
    batch_no, (decided, later) = submitted_claims(app, county, 2)
    data = filled_in(manifest_xlsx(app, batch_no), {decided: ("approved", "1250", None)})
    answer = upload(county, batch_no, data)
    assert answer.status_code == 200 and answer.json["applied"] == 1, answer.json
    assert claim_of(county, decided)["approved_amount"] == "1250.00"
    assert claim_of(county, later)["state"] == "submitted"  # the city decides it another day


def test_the_manifest_sent_back_unfilled_is_refused_naming_its_rows(app, county):
    batch_no, _claim_nos = submitted_claims(app, county, 3)
    before = snapshot(app)
    answer = upload(county, batch_no, manifest_xlsx(app, batch_no).read_bytes())
    # Rows 2-4 hold the claims; row 5, the totals row, is no claim.
    assert error_fields(answer) == {f"rows.{n}.审核结果": "required" for n in (2, 3, 4)}
    assert "all 3 claim row(s) (rows 2-4)" in answer.json["message"]
    assert snapshot(app) == before


def test_the_sheet_may_come_as_the_body_with_its_own_content_type(app, county):
    batch_no, (claim_no,) = submitted_claims(app, county, 1)
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions",
                               data=decisions_sheet([row(claim_no, "核准", 1000)], cover=False),
                               content_type=XLSX)
    assert answer.status_code == 200, answer.json
    assert claim_of(county, claim_no)["approved_amount"] == "1000.00"


def test_a_sheet_with_a_bad_amount_and_an_unknown_claim_lists_both_rows(app, county):
    batch_no, claim_nos = submitted_claims(app, county, 2)
    before = snapshot(app)
    data = decisions_sheet([
        row(claim_nos[0], "核准", "1200.00"),
        row(claim_nos[1], "核准", "12.345"),
        row("LP1999-999999", "不予赔付", reason="不符"),
    ])
    # Row 1 is the title, row 2 the header: the claims are rows 3, 4 and 5.
    assert error_fields(upload(county, batch_no, data)) == {
        "rows.4.核准金额": "too_many_decimals",
        "rows.5.理赔编号": "unknown_claim",
    }
    assert snapshot(app) == before


def test_a_sheet_row_breaking_the_rules_is_named_by_its_column(app, county):
    batch_no, claim_nos = submitted_claims(app, county, 3)
    data = decisions_sheet([
        row(claim_nos[0], "同意", 1000),
        row(claim_nos[1], "不予赔付", 100, "不符"),
        row(claim_nos[2], "核准", 1000.125),
    ])
    assert error_fields(upload(county, batch_no, data)) == {
        "rows.3.审核结果": "invalid_choice",
        "rows.4.核准金额": "not_applicable",
        "rows.5.核准金额": "too_many_decimals",
    }


def test_a_sheet_without_the_decision_columns_answers_422(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    book = openpyxl.Workbook()
    book.active.append(["理赔编号", "审核结果"])
    out = BytesIO()
    book.save(out)
    assert error_fields(upload(county, batch_no, out.getvalue())) == {"file": "missing_columns"}


def test_a_file_that_is_no_workbook_answers_422(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    answer = upload(county, batch_no, b"PK\x03\x04 not really a zip")
    assert error_fields(answer) == {"file": "unreadable_file"}


def test_a_file_of_another_type_answers_415(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    answer = upload(county, batch_no, b"claim_no,outcome\n", "decisions.csv", "text/csv")
    assert answer.status_code == 415 and answer.json["code"] == "unsupported_media_type"
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", data="hello",
                               content_type="text/plain")
    assert answer.status_code == 415


def test_a_form_without_the_file_answers_422(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", data={"other": "x"},
                               content_type="multipart/form-data")
    assert error_fields(answer) == {"file": "required"}


def test_a_file_over_1_mib_answers_413(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    path, big = f"/api/v1/batches/{batch_no}/decisions", b"PK" + b"\0" * (1024 * 1024)
    answer = county.clerk.post(path, data=big, content_type=XLSX)
    assert answer.status_code == 413 and answer.json["code"] == "payload_too_large"
    # Encoded here: the test client would spool a large form to a file it never closes.
    boundary, body = encode_multipart({"file": FileStorage(BytesIO(big), "decisions.xlsx",
                                                           content_type=XLSX)})
    answer = county.clerk.post(path, data=body,
                               content_type=f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 413 and answer.json["code"] == "payload_too_large"


def test_a_workbook_unpacking_into_too_much_answers_422(app, county):
    batch_no, _ = submitted_claims(app, county, 1)
    packed = BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (65 * 1024 * 1024))
    answer = upload(county, batch_no, packed.getvalue())
    assert error_fields(answer) == {"file": "file_too_large"}

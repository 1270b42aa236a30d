"""Coded reasons (config/reasons.toml): decisions (JSON and the XLSX sheet) and
request_materials take a reason_code beside the free text; unknown codes are refused naming
the row or the field; the report counts reasons per unit and per product."""

from __future__ import annotations

import json
import os
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def submitted(county: Any, n: int, **claim_fields: Any) -> tuple[str, list[str]]:
    """n claims verified, sealed and delivered: awaiting the city office's decision."""
    claims = [county.claim(**claim_fields)["claim_no"] for _ in range(n)]
    for claim_no in claims:
        assert county.fire(claim_no, "verify").status_code == 200
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    assert county.clerk.post(f"/api/v1/batches/{batch_no}/events",
                             {"event": "deliver"}).status_code == 200
    return batch_no, claims


def _claim(county: Any, claim_no: str) -> dict[str, Any]:
    return county.clerk.get(f"/api/v1/claims/{claim_no}").json


def _last_event(county: Any, claim_no: str) -> dict[str, Any]:
    return county.clerk.get(f"/api/v1/claims/{claim_no}/events").json[-1]


def test_decisions_take_reason_codes_and_free_text_alone_is_other(county):
    batch_no, (rejected, returned, free, approved) = submitted(county, 4)
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": rejected, "outcome": "rejected", "reason_code": "waiting_period"},
        {"claim_no": returned, "outcome": "returned", "reason_code": "missing_discharge_summary",
         "reason": "出院小结为复印件"},
        {"claim_no": free, "outcome": "rejected", "reason": "单位未按时缴费"},
        {"claim_no": approved, "outcome": "approved", "approved_amount": "1250.00"},
    ]})
    assert answer.status_code == 200, answer.json
    one = _claim(county, rejected)
    assert (one["state"], one["reason"], one["reason_code"], one["reason_label"]) == (
        "rejected", "等待期内出险", "waiting_period", "等待期内出险")
    two = _claim(county, returned)
    assert (two["reason"], two["reason_code"], two["reason_label"]) == (
        "出院小结为复印件", "missing_discharge_summary", "缺少出院小结原件")
    three = _claim(county, free)
    assert (three["reason"], three["reason_code"], three["reason_label"]) == (
        "单位未按时缴费", "other", "其他")
    assert _claim(county, approved)["reason_code"] is None
    event = _last_event(county, returned)
    assert event["event"] == "return"
    assert event["payload"]["reason_code"] == "missing_discharge_summary"
    assert event["payload"]["reason_label"] == "缺少出院小结原件"
    assert event["payload"]["batch_no"] == batch_no


def test_an_unknown_or_misplaced_code_is_refused_by_its_row_and_nothing_applies(county):
    batch_no, claims = submitted(county, 3)
    answer = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": claims[0], "outcome": "rejected", "reason_code": "not_covered"},
        {"claim_no": claims[1], "outcome": "rejected", "reason_code": "no_such_code"},
        {"claim_no": claims[2], "outcome": "rejected", "reason_code": "missing_invoice"},
    ]})
    assert answer.status_code == 422
    assert [(e["field"], e["code"]) for e in answer.json["errors"]] == [
        ("decisions.1.reason_code", "unknown_reason_code"),
        ("decisions.2.reason_code", "wrong_reason_kind")]
    assert {_claim(county, no)["state"] for no in claims} == {"submitted"}
    assert {_last_event(county, no)["event"] for no in claims} == {"deliver"}


def _sheet(rows: list[tuple[Any, ...]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(("理赔编号", "审核结果", "核准金额", "原因", "原因代码"))
    for row in rows:
        sheet.append(row)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _upload(county: Any, batch_no: str, data: bytes) -> Any:
    return county.clerk.post(f"/api/v1/batches/{batch_no}/decisions",
                             data={"file": (BytesIO(data), "decisions.xlsx", XLSX)},
                             content_type="multipart/form-data")


def test_the_decisions_sheet_carries_codes_by_code_or_label(county):
    batch_no, (coded, labelled, approved) = submitted(county, 3)
    refused = _upload(county, batch_no, _sheet([
        (coded, "不予赔付", None, None, "claim_deadline"),
        (labelled, "退回", None, None, "没有这个原因"),
        (approved, "核准", "1250.00", None, None),
    ]))
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json["errors"]] == [
        ("rows.3.原因代码", "unknown_reason_code")]
    assert {_claim(county, no)["state"] for no in (coded, labelled, approved)} == {"submitted"}
    applied = _upload(county, batch_no, _sheet([
        (coded, "不予赔付", None, None, "claim_deadline"),
        (labelled, "退回", None, "发票金额与清单不符", "申请信息与材料不一致"),
        (approved, "核准", "1250.00", None, None),
    ]))
    assert applied.status_code == 200, applied.json
    assert applied.json["applied"] == 3
    first, second = _claim(county, coded), _claim(county, labelled)
    assert (first["state"], first["reason"], first["reason_code"]) == (
        "rejected", "超过申请时效", "claim_deadline")
    assert (second["state"], second["reason"], second["reason_code"]) == (
        "pending_materials", "发票金额与清单不符", "info_mismatch")


def test_request_materials_takes_a_document_reason_code(county):
    claim_no = county.claim()["claim_no"]
    unknown = county.fire(claim_no, "request_materials", documents=["discharge_summary"],
                          reason_code="nonsense")
    assert unknown.status_code == 422
    assert [(e["field"], e["code"]) for e in unknown.json["errors"]] == [
        ("reason_code", "unknown_reason_code")]
    answer = county.fire(claim_no, "request_materials", documents=["discharge_summary"],
                         reason_code="missing_discharge_summary")
    assert answer.status_code == 200, answer.json
    claim = answer.json
    assert (claim["reason"], claim["reason_code"]) == ("缺少出院小结原件",
                                                       "missing_discharge_summary")
    (doc,) = [d for d in claim["documents"] if d["code"] == "discharge_summary"]
    assert (doc["status"], doc["reason"]) == ("rejected", "缺少出院小结原件")
    event = _last_event(county, claim_no)
    assert event["payload"]["reason_code"] == "missing_discharge_summary"
    withdraw = county.fire(claim_no, "withdraw", reason="不再申请", reason_code="other")
    assert withdraw.status_code == 422
    assert withdraw.json["errors"][0]["field"] == "reason_code"


def reasons_given(county: Any) -> tuple[str, str, list[str]]:
    """Two units; the city office returns one claim of each for the invoice and rejects a
    second of the first unit's for its waiting period: (unit a, unit b, the claims)."""
    unit_a, unit_b = county.unit()["code"], county.unit()["code"]
    members = []
    for unit_code in (unit_a, unit_a, unit_b):
        member = county.member(unit_code)
        county.enrol(member)
        members.append(member)
    batch_claims = [county.claim(member)["claim_no"] for member in members]
    for claim_no in batch_claims:
        assert county.fire(claim_no, "verify").status_code == 200
    batch_no = county.clerk.post("/api/v1/batches", {}).json["batch_no"]
    county.clerk.post(f"/api/v1/batches/{batch_no}/events", {"event": "deliver"})
    assert county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": batch_claims[0], "outcome": "returned", "reason_code": "missing_invoice"},
        {"claim_no": batch_claims[1], "outcome": "rejected", "reason_code": "waiting_period"},
        {"claim_no": batch_claims[2], "outcome": "returned", "reason_code": "missing_invoice"},
    ]}).status_code == 200
    return unit_a, unit_b, batch_claims


def test_the_reasons_report_counts_per_unit_and_per_product(county):
    unit_a, unit_b, batch_claims = reasons_given(county)
    asked = county.fire(batch_claims[0], "request_materials", reason="发票请加盖公章")
    assert asked.status_code == 409  # returned claims are pending materials already
    report = county.clerk.get("/api/v1/reports/reasons",
                              query_string={"year": county.today.year}).json
    assert report["total"] == 3
    assert [(r["code"], r["count"]) for r in report["reasons"]] == [
        ("missing_invoice", 2), ("waiting_period", 1)]
    by_unit = {u["unit_code"]: {r["code"]: r["count"] for r in u["reasons"]}
               for u in report["by_unit"]}
    assert by_unit == {unit_a: {"missing_invoice": 1, "waiting_period": 1},
                       unit_b: {"missing_invoice": 1}}
    (product,) = report["by_product"]
    assert product["product_code"] == "inpatient" and product["total"] == 3
    staff = county.unit_staff(unit_b).get("/api/v1/reports/reasons").json
    assert [u["unit_code"] for u in staff["by_unit"]] == [unit_b] and staff["total"] == 1
    assert county.unit_staff(unit_b).get(
        "/api/v1/reports/reasons", query_string={"unit_code": unit_a}).status_code == 422
    last_year = county.clerk.get("/api/v1/reports/reasons",
                                 query_string={"year": county.today.year - 1}).json
    assert last_year["total"] == 0


def test_the_reasons_report_downloads_as_a_workbook_unit_staff_their_units_only(county):
    unit_a, unit_b, _claims = reasons_given(county)

    def sheets(api: Any) -> dict[str, list[tuple[Any, ...]]]:
        answer = api.get(f"/api/v1/reports/reasons.xlsx?year={county.today.year}")
        assert answer.status_code == 200 and answer.mimetype == XLSX
        assert f"reasons-{county.today.year}.xlsx" in answer.headers["Content-Disposition"]
        book = openpyxl.load_workbook(BytesIO(answer.data))
        return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book}

    county_book = sheets(county.clerk)
    assert county_book["原因汇总"] == [
        ("原因代码", "原因", "类别", "次数"),
        ("missing_invoice", "缺少医疗费用发票原件", "材料问题", 2),
        ("waiting_period", "等待期内出险", "不予赔付", 1),
        ("合计", None, None, 3)]
    assert [(r[0], r[2], r[4]) for r in county_book["分单位"][1:]] == [
        (unit_a, "missing_invoice", 1), (unit_a, "waiting_period", 1),
        (unit_b, "missing_invoice", 1)]
    assert [(r[0], r[4]) for r in county_book["分险种"][1:]] == [
        ("inpatient", 2), ("inpatient", 1)]
    staff_book = sheets(county.unit_staff(unit_b))
    assert [r[0] for r in staff_book["分单位"][1:]] == [unit_b]
    assert staff_book["原因汇总"][-1] == ("合计", None, None, 1)


def test_the_code_table_is_data_a_county_edits_without_a_release(app, county, tmp_path: Path):
    codes = {r["code"]: r for r in county.clerk.get("/api/v1/reasons").json}
    assert codes["waiting_period"]["label"] == "等待期内出险"
    assert codes["other"]["events"] == ["reject", "return", "request_materials"]
    table = tmp_path / "reasons.toml"
    table.write_text('[[reasons]]\ncode = "late_fee"\nlabel = "未按时缴纳互助费"\n'
                     'kind = "reject"\n', encoding="utf-8")
    app.extensions["mutualaid"].settings.reasons_file = str(table)
    batch_no, (claim_no,) = submitted(county, 1)
    refused = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": claim_no, "outcome": "rejected", "reason_code": "waiting_period"}]})
    assert refused.json["errors"][0]["code"] == "unknown_reason_code"
    applied = county.clerk.post(f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": claim_no, "outcome": "rejected", "reason_code": "late_fee"}]})
    assert applied.status_code == 200, applied.json
    assert _claim(county, claim_no)["reason"] == "未按时缴纳互助费"
    # Reworded in place: read again without a restart; the claim keeps its code.
    table.write_text('[[reasons]]\ncode = "late_fee"\nlabel = "逾期未缴互助费"\n'
                     'kind = "reject"\n', encoding="utf-8")
    stat = table.stat()
    os.utime(table, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _claim(county, claim_no)["reason_label"] == "逾期未缴互助费"


def test_the_code_table_is_a_list_paginated_like_every_list(county):
    everything = county.clerk.get("/api/v1/reasons", query_string={"page_size": 100})
    total = json.loads(everything.headers["X-Pagination"])["total"]
    assert total == len(everything.json) > 5
    first = county.clerk.get("/api/v1/reasons", query_string={"page_size": 5})
    assert [r["code"] for r in first.json] == [r["code"] for r in everything.json[:5]]
    refused = county.clerk.get("/api/v1/reasons", query_string={"page_size": 101})
    assert refused.status_code == 422

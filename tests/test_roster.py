"""Roster import (issue 6): POST /api/v1/members/import and `mutualaid import roster FILE`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
import xlsxwriter
from conftest import County, new_id_number
from flask import Flask
from test_console import csrf_token, sign_in
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from claims.db import session_scope
from claims.idcard import make_id_number, mask
from claims.models import Enrolment, JobRun, Member, Unit
from claims.schemas.roster import read_sheet
from workflows.errors import RuleFailed

HEADERS = ("姓名", "身份证号", "手机", "单位代码", "险种", "份数", "起保日期", "止保日期")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx(rows: list[tuple[Any, ...]], headers: tuple[str, ...] = HEADERS,
         title: str | None = "2027年度职工互助保障参保名册") -> bytes:
    """A workbook as a unit sends it: a title line, the header, the rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[tuple[Any, ...]], headers: tuple[str, ...] = HEADERS,
              encoding: str = "utf-8-sig") -> bytes:
    lines = [",".join(headers)] + [",".join("" if v is None else str(v) for v in row)
                                   for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def upload(api: Any, data: bytes, filename: str = "roster.xlsx", **form: str) -> Any:
    return api.post("/api/v1/members/import", data={"file": (BytesIO(data), filename), **form},
                    content_type="multipart/form-data")


def members(app: Flask) -> dict[str, tuple[str, str | None, int]]:
    """id_number -> (name, phone, unit_id) of every member."""
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        rows = session.execute(sa.select(Member.id_number, Member.name, Member.phone,
                                         Member.unit_id)).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def enrolments(app: Flask) -> list[tuple[str, str, int, date, date]]:
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        rows = session.execute(
            sa.select(Member.id_number, Enrolment.product_code, Enrolment.shares,
                      Enrolment.start_date, Enrolment.end_date)
            .join(Member, Member.id == Enrolment.member_id)).all()
    return sorted(tuple(r) for r in rows)


def unit_id(app: Flask, code: str) -> int:
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        return int(session.scalar(sa.select(Unit.id).where(Unit.code == code)))


def bad_check_digit(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


def test_a_file_with_a_bad_id_a_duplicate_an_unknown_unit_and_a_bad_date_is_refused_whole(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    good, twice = new_id_number(), new_id_number()
    data = xlsx([
        ("李明", good, "13800000001", unit, None, None, None, None),  # row 3: fine on its own
        ("王强", bad_check_digit(new_id_number()), "13800000002", unit, None, None, None, None),
        ("赵丽", twice, "13800000003", unit, None, None, None, None),
        ("赵丽", twice, "13800000003", unit, None, None, None, None),  # row 6: duplicate
        ("孙杰", new_id_number(), "13800000004", "NOPE", None, None, None, None),
        ("周敏", new_id_number(), None, unit, "inpatient", 1, "2027-02-30", "2027-12-31"),
    ])
    answer = upload(county.clerk, data)
    assert answer.status_code == 422, answer.json
    body = answer.json
    assert body["code"] == "roster_invalid"
    found = {(e["field"], e["code"]) for e in body["errors"]}
    assert found == {("rows.4.身份证号", "invalid_check_digit"),
                     ("rows.6.身份证号", "duplicate_in_file"),
                     ("rows.7.单位代码", "unknown_unit"),
                     ("rows.8.起保日期", "invalid_date")}
    assert "row 5" in next(e["message"] for e in body["errors"] if e["code"] == "duplicate_in_file")
    report = body["report"]
    assert (report["rows"], report["invalid_rows"], report["valid_rows"]) == (6, 4, 2)
    assert report["applied"] is False
    assert {e["row"] for e in report["errors"]} == {4, 6, 7, 8}
    assert members(app) == {}  # not even the good rows
    assert enrolments(app) == []


def test_a_dry_run_reports_what_would_happen_and_applies_nothing(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    data = xlsx([("李明", new_id_number(), "13800000001", unit, "inpatient", 2,
                  date(2027, 1, 1), date(2027, 12, 31)),
                 ("王强", new_id_number(), "13800000002", unit, None, None, None, None)])
    answer = upload(county.clerk, data, dry_run="true")
    assert answer.status_code == 200, answer.json
    assert answer.json | {"warnings": []} == {
        "dry_run": True, "applied": False, "rows": 2, "valid_rows": 2, "invalid_rows": 0,
        "members_created": 2, "members_updated": 0, "members_unchanged": 0,
        "enrolments_created": 1, "enrolments_unchanged": 0, "other_unit_rows": 0,
        "warnings": [], "errors": []}
    assert members(app) == {}
    bad = upload(county.clerk, xlsx([("王强", "123", None, unit) + (None,) * 4]),
                 dry_run="true")
    assert bad.status_code == 200  # a dry run shows the problems rather than refusing
    assert bad.json["errors"][0]["field"] == "rows.3.身份证号"
    typed_as_number = upload(county.clerk, xlsx([("王强", 330102198506150011, None, unit)
                                                 + (None,) * 4]), dry_run="true")
    assert [e["code"] for e in typed_as_number.json["errors"]] == ["id_number_as_number"]
    assert members(app) == {}


def test_a_good_csv_creates_updates_and_enrols_and_a_second_import_changes_nothing(
        app: Flask, county: County) -> None:
    old_unit, new_unit = county.unit()["code"], county.unit()["code"]
    moving = county.member(old_unit, name="张伟")
    county.enrol(moving, "accident", start=date(2026, 1, 1), end=date(2026, 12, 31))
    fresh, woman = new_id_number(), new_id_number(sex="F")
    rows = [
        ("张伟伟", moving["id_number"], "13900000000", new_unit, "意外伤害互助保障", 2,
         "2027/1/1", "2027年12月31日"),  # renamed, moved, enrolled again after the last term
        ("刘洋", fresh, "13900000001", new_unit, "inpatient", None, "2027-01-01", "2027-12-31"),
        ("陈静", woman, None, new_unit, None, None, None, None),
    ]
    data = csv_bytes(rows, encoding="gb18030")  # what Excel in Chinese saves as CSV
    answer = upload(county.clerk, data, filename="名册.csv")
    assert answer.status_code == 200, answer.json
    report = answer.json
    assert (report["applied"], report["members_created"], report["members_updated"],
            report["enrolments_created"]) == (True, 2, 1, 2)
    now = members(app)
    assert now[moving["id_number"]] == ("张伟伟", "13900000000", unit_id(app, new_unit))
    assert now[fresh] == ("刘洋", "13900000001", unit_id(app, new_unit))
    assert now[woman] == ("陈静", None, unit_id(app, new_unit))
    assert (fresh, "inpatient", 1, date(2027, 1, 1), date(2027, 12, 31)) in enrolments(app)
    assert (moving["id_number"], "accident", 2, date(2027, 1, 1), date(2027, 12, 31)) \
        in enrolments(app)
    listed = county.clerk.get(f"/api/v1/members?unit_code={new_unit}").json
    assert {m["name"] for m in listed} == {"张伟伟", "刘洋", "陈静"}

    again = upload(county.clerk, data, filename="名册.csv")
    assert again.status_code == 200, again.json
    assert (again.json["members_created"], again.json["members_updated"],
            again.json["members_unchanged"], again.json["enrolments_created"],
            again.json["enrolments_unchanged"]) == (0, 0, 3, 0, 2)
    assert len(enrolments(app)) == 3
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        runs = session.execute(sa.select(JobRun.summary).where(JobRun.job == "roster_import")
                               .order_by(JobRun.id)).scalars().all()
    assert [r["members_created"] for r in runs] == [2, 0]  # each applied import is recorded
    assert runs[0]["actor"] == "clerk" and runs[0]["source"] == "名册.csv"
    assert moving["id_number"] not in json.dumps(runs)  # no ID number in the record


def test_the_enrolment_rules_are_the_registers_all_listed_at_once(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    held = county.member(unit)
    county.enrol(held, "inpatient", start=date(2026, 7, 1), end=date(2027, 6, 30))
    man = new_id_number(sex="M")
    data = xlsx([
        ("甲", held["id_number"], None, unit, "inpatient", 1, "2027-01-01", "2027-12-31"),
        ("乙", new_id_number(), None, unit, "accident", 4, "2027-01-01", "2027-12-31"),
        ("丙", man, None, unit, "female_special", 1, "2027-01-01", "2027-12-31"),
        ("丁", new_id_number(), None, unit, "pension", 1, "2027-01-01", "2027-12-31"),
        ("戊", new_id_number(), None, unit, "inpatient", 1, "2027-12-31", "2027-01-01"),
        ("己", new_id_number(), None, unit, "inpatient", 1, None, None),
        ("庚", new_id_number(), None, unit, None, 2, None, None),
    ])
    answer = upload(county.clerk, data)
    assert answer.status_code == 422, answer.json
    assert {(e["row"], e["field"].split(".")[-1], e["code"])
            for e in answer.json["report"]["errors"]} == {
        (3, "起保日期", "overlapping_enrolment"),
        (4, "份数", "shares"),
        (5, "身份证号", "sex"),
        (6, "险种", "unknown_product"),
        (7, "止保日期", "end_before_start"),
        (8, "起保日期", "required"), (8, "止保日期", "required"),
        (9, "险种", "required"),
    }
    assert len(members(app)) == 1


def test_unit_staff_import_their_own_unit_and_rows_naming_another_are_refused(
        app: Flask, county: County) -> None:
    mine, theirs = county.unit()["code"], county.unit()["code"]
    elsewhere = county.member(theirs)
    staff = county.unit_staff(mine)
    refused = upload(staff, xlsx([
        ("李明", new_id_number(), None, mine) + (None,) * 4,
        ("王强", new_id_number(), None, theirs) + (None,) * 4,
        ("赵丽", elsewhere["id_number"], None, mine) + (None,) * 4,
    ]))
    assert refused.status_code == 422
    # Another unit's member is counted, never placed: which row would say, of any ID number
    # tried, whether it is registered (and unmask one shown masked elsewhere).
    assert {(e["row"], e["field"], e["code"]) for e in refused.json["report"]["errors"]} == {
        (4, "rows.4.单位代码", "other_unit"), (None, "file", "other_unit_members")}
    assert refused.json["report"]["other_unit_rows"] == 1
    assert len(members(app)) == 1
    fine = upload(staff, xlsx([("李明", new_id_number(), None, mine) + (None,) * 4]))
    assert fine.status_code == 200, fine.json
    assert fine.json["members_created"] == 1


def test_unit_staff_cannot_use_the_register_to_unmask_another_units_id_numbers(
        app: Flask, county: County) -> None:
    mine, theirs = county.unit()["code"], county.unit()["code"]
    elsewhere = county.member(theirs)
    county.enrol(elsewhere, "accident", start=date(2026, 1, 1), end=date(2026, 12, 31))
    staff = county.unit_staff(mine)
    candidates = [new_id_number() for _ in range(30)] + [elsewhere["id_number"]]
    rows = [(f"职工{i}", number, None, mine, "accident", 5, "2026-03-01", "2026-12-31")
            for i, number in enumerate(candidates)]  # 5 shares: every row asks too many
    answer = upload(staff, xlsx(rows), dry_run="true")
    assert answer.status_code == 200 and answer.json["other_unit_rows"] == 1
    assert answer.json["invalid_rows"] == len(rows)  # the withheld row counted once
    errors = answer.json["errors"]
    # Every row's own problem is told alike, the registered one's too; no enrolment of the
    # other unit's member shows through (its dates overlap the row's).
    assert sorted(e["row"] for e in errors if e["row"] is not None) == list(range(3, 34))
    assert {e["code"] for e in errors if e["row"] is not None} == {"shares"}
    assert "2026-01-01" not in answer.get_data(as_text=True)
    for _ in range(4):  # five requests a day may come upon such rows
        assert upload(staff, xlsx(rows), dry_run="true").json["other_unit_rows"] == 1
    spent = upload(staff, xlsx([("李明", new_id_number(), None, mine) + (None,) * 4]))
    assert spent.status_code == 429 and spent.json["code"] == "too_many_requests"
    assert int(spent.headers["Retry-After"]) > 3600
    assert upload(county.clerk, xlsx(rows), dry_run="true").status_code == 200  # the county


def test_malformed_files_answer_422_and_the_size_limit_is_10_mib(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    clerk = county.clerk
    broken = xlsx([("李明", new_id_number(), None, unit) + (None,) * 4])[:700]
    cases = {
        "broken.xlsx": (b"PK\x03\x04" + b"\x00" * 300, "unreadable_file"),
        "cut.xlsx": (broken, "unreadable_file"),
        "old.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "unsupported_format"),
        "noise.csv": (bytes(range(256)) * 8, "unreadable_file"),
        "no-header.csv": ("名字,号码\n李明,1\n".encode(), "missing_columns"),
        "empty.csv": ("姓名,身份证号,单位代码\n\n".encode(), "empty_file"),
    }
    for filename, (data, code) in cases.items():
        answer = upload(clerk, data, filename)
        assert answer.status_code == 422, (filename, answer.json)
        assert answer.json["errors"][0]["field"] == "file", filename
        assert answer.json["errors"][0]["code"] == code, (filename, answer.json)
    assert upload(clerk, b"x", "a.csv", other="1").status_code == 422
    assert clerk.post("/api/v1/members/import", json={}).status_code == 415
    # Over 1 MiB is fine here (blank lines pad it), over 10 MiB is not. (As the body: the test
    # client leaves a large multipart upload's temporary file open.)
    padded = csv_bytes([("李明", new_id_number(), None, unit)], HEADERS[:4])
    for blank_lines, status in ((700_000, 200), (5_300_000, 413)):
        answer = clerk.post("/api/v1/members/import?dry_run=true",
                            data=padded + b"\r\n" * blank_lines, content_type="text/csv")
        assert answer.status_code == status, answer.json
    assert clerk.post("/api/v1/units", data=b" " * 1_100_000,
                      content_type="application/json").status_code == 413  # others: 1 MiB


def test_the_cli_imports_a_real_file_with_a_dry_run_first(
        app: Flask, county: County, runner: Any, tmp_path: Path) -> None:
    unit = county.unit()["code"]
    path = tmp_path / "roster.xlsx"
    path.write_bytes(xlsx([("李明", new_id_number(), "13800000001", unit, "inpatient", 1,
                            date(2027, 1, 1), date(2027, 12, 31))],
                          headers=("name", "ID number", "phone", "unit code", "product", "shares",
                                   "start", "end"), title=None))
    dry = runner.invoke(args=["import", "roster", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout.strip().splitlines()[-1])["members_created"] == 1
    assert members(app) == {}
    done = runner.invoke(args=["import", "roster", str(path)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["applied"] is True
    assert len(members(app)) == 1 and len(enrolments(app)) == 1
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([("王强", "123", None, unit, None, None, None, None)]))
    refused = runner.invoke(args=["import", "roster", str(bad)])
    assert refused.exit_code == 1
    assert "rows.2.身份证号" in refused.stderr


def test_the_console_page_checks_first_lists_every_bad_row_then_imports(
        app: Flask, county: County) -> None:
    client = county.client
    sign_in(client, county)
    unit = county.unit()["code"]
    page = client.get("/console/members/import")
    assert page.status_code == 200 and "身份证号" in page.text

    def send(data: bytes, action: str) -> Any:
        return client.post("/console/members/import", content_type="multipart/form-data", data={
            "file": (BytesIO(data), "名册.xlsx"), "action": action,
            "csrf_token": csrf_token(client, "/console/members/import")})

    bad = send(xlsx([("李明", bad_check_digit(new_id_number()), None, unit) + (None,) * 4,
                     ("王强", new_id_number(), None, "NOPE") + (None,) * 4,
                     ("赵丽", new_id_number(), None, unit, "住院险", 1, "2027-01-01",
                      "2027-12-31"),
                     ("钱芳", new_id_number(), None, unit, "inpatient", 1, "2027-02-30",
                      "2027-12-31")]), "import")
    assert bad.status_code == 422
    assert "身份证号码校验位不正确" in bad.text and "没有此单位代码" in bad.text
    assert "<td class=\"num\">3</td>" in bad.text and "<td class=\"num\">4</td>" in bad.text
    # What to write instead: the catalogue's names, the date's form.
    assert "没有此险种；可填：住院医疗互助保障、意外伤害互助保障" in bad.text
    assert "请写作 2027-01-01" in bad.text
    good = xlsx([("李明", new_id_number(), None, unit) + (None,) * 4])
    checked = send(good, "check")
    assert checked.status_code == 200 and "预检通过" in checked.text
    assert members(app) == {}
    done = send(good, "import")
    assert done.status_code == 200 and "导入结果" in done.text
    assert len(members(app)) == 1
    # The page takes rosters over 1 MiB as the API does (blank lines pad this one).
    boundary, body = encode_multipart(MultiDict({
        "file": FileStorage(BytesIO(csv_bytes(
            [("王强", new_id_number(), None, unit)], HEADERS[:4])
            + b"\r\n" * 700_000), "big.csv"),
        "action": "check", "csrf_token": csrf_token(client, "/console/members/import")}))
    big = client.post("/console/members/import", data=body,
                      content_type=f"multipart/form-data; boundary={boundary}")
    assert big.status_code == 200 and "预检通过" in big.text


# --- files as Excel and WPS leave them (review of the roster import) -------------------------


def workbook(sheets: dict[str, list[tuple[Any, ...]]], hidden: tuple[str, ...] = ()) -> bytes:
    """An XlsxWriter workbook, one sheet per name, the named ones hidden (a header row each)."""
    buffer = BytesIO()
    book = xlsxwriter.Workbook(buffer)
    for title, rows in sheets.items():
        sheet = book.add_worksheet(title)
        for number, row in enumerate(rows):
            sheet.write_row(number, 0, row)
    # XlsxWriter keeps the active sheet visible: open the workbook on a visible one, as Excel does.
    next(s for s in book.worksheets() if s.name not in hidden).activate()
    for sheet in book.worksheets():
        if sheet.name in hidden:
            sheet.hide()
    book.close()
    return buffer.getvalue()


def console_send(client: Any, data: bytes, action: str = "check",
                 filename: str = "名册.xlsx") -> Any:
    return client.post("/console/members/import", content_type="multipart/form-data", data={
        "file": (BytesIO(data), filename), "action": action,
        "csrf_token": csrf_token(client, "/console/members/import")})


def id_ending_in_000() -> str:
    """A valid ID number ending in 000, as about 1 in 1,100 real ones does."""
    born = date(1970, 1, 1)
    while True:
        number = make_id_number("110105", born, 0, "F")
        if number.endswith("000"):
            return number
        born += timedelta(days=1)


def test_hidden_sheets_are_not_read_and_two_visible_rosters_are_refused(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    old, current = new_id_number(), new_id_number()
    data = workbook({"旧名册": [HEADERS[:4], ("李明", old, None, unit)],
                     "名册": [HEADERS[:4], ("王强", current, None, unit)]}, hidden=("旧名册",))
    answer = upload(county.clerk, data)
    assert answer.status_code == 200, answer.json
    assert set(members(app)) == {current}

    both = workbook({"一车间": [HEADERS[:4], ("赵丽", new_id_number(), None, unit)],
                     "说明": [("请按表头填写",)],
                     "二车间": [("二车间名单",), HEADERS[:4],
                                ("孙杰", new_id_number(), None, unit)]})
    refused = upload(county.clerk, both, dry_run="true")
    assert refused.status_code == 422, refused.json
    assert refused.json["errors"] == [{
        "field": "file", "code": "several_sheets",
        "message": "Several sheets have a roster header (一车间, 二车间): import one sheet at a "
                   "time."}]
    sign_in(county.client, county)
    page = console_send(county.client, both)
    assert page.status_code == 422
    assert "多个工作表都有花名册表头（一车间, 二车间）：请每次只导入一个工作表" in page.text
    assert set(members(app)) == {current}


def test_a_unit_code_merged_down_over_its_workers_counts_for_each_row(
        app: Flask, county: County) -> None:
    # 单位代码 written once and merged over the unit's rows, as units' sheets often are; the
    # title merged across the columns and a two-row header's merge above stay as they are.
    unit, other = county.unit()["code"], county.unit()["code"]
    people = [new_id_number() for _ in range(4)]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["2027年度职工互助保障参保名册"])
    sheet.merge_cells("A1:D1")
    sheet.append(list(HEADERS[:4]))
    for name, number, code in zip(("李明", "王强", "赵丽", "孙杰"), people,
                                  (unit, None, None, other), strict=True):
        sheet.append([name, number, None, code])
    sheet.merge_cells("D3:D5")
    buffer = BytesIO()
    book.save(buffer)
    answer = upload(county.clerk, buffer.getvalue())
    assert answer.status_code == 200, answer.json
    stored = members(app)
    assert [stored[n][2] for n in people] == [unit_id(app, unit)] * 3 + [unit_id(app, other)]


def test_spreadsheet_error_values_are_row_problems_naming_row_and_column(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    buffer = BytesIO()
    book = xlsxwriter.Workbook(buffer)
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADERS[:4])
    sheet.write_row(1, 0, ("李明", new_id_number(), None, unit))
    sheet.write_formula(2, 0, "=VLOOKUP(B3,人员!A:B,2,FALSE)", None, "#N/A")
    sheet.write_row(2, 1, (new_id_number(), None, unit))
    sheet.write_row(3, 0, ("王强", new_id_number()))
    sheet.write_formula(3, 2, "=1/0", None, "#DIV/0!")
    sheet.write_formula(3, 3, "=#REF!", None, "#REF!")
    book.close()
    answer = upload(county.clerk, buffer.getvalue(), dry_run="true")
    assert answer.status_code == 200, answer.json
    assert [(e["field"], e["code"], e["message"]) for e in answer.json["errors"]] == [
        ("rows.3.姓名", "cell_error", "The cell holds the spreadsheet error #N/A."),
        ("rows.4.手机", "cell_error", "The cell holds the spreadsheet error #DIV/0!."),
        ("rows.4.单位代码", "cell_error", "The cell holds the spreadsheet error #REF!.")]
    text = csv_bytes([("赵丽", "#VALUE!", None, unit), ("孙杰", new_id_number(), "#NAME?", unit)],
                     HEADERS[:4])
    refused = upload(county.clerk, text, "名册.csv")
    assert refused.status_code == 422
    assert {(e["row"], e["field"], e["code"]) for e in refused.json["report"]["errors"]} == {
        (2, "rows.2.身份证号", "cell_error"), (3, "rows.3.手机", "cell_error")}
    sign_in(county.client, county)
    page = console_send(county.client, text, "import", "名册.csv")
    assert "单元格中是表格的错误值 #VALUE!" in page.text
    assert members(app) == {}


@pytest.mark.parametrize("written", ["1.10101E+17", "3.30102e+17", "3.3010219850615E+17",
                                     "3E17"])
def test_an_id_number_saved_as_excels_number_text_is_refused_as_a_number(
        county: County, written: str) -> None:
    unit = county.unit()["code"]
    answer = upload(county.clerk, csv_bytes([("王强", written, None, unit)], HEADERS[:4]),
                    "名册.csv", dry_run="true")
    assert answer.status_code == 200, answer.json
    assert [(e["field"], e["code"]) for e in answer.json["errors"]] == [
        ("rows.2.身份证号", "id_number_as_number")]


def test_an_id_number_ending_in_000_is_imported_with_a_warning_to_check_it(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    rounded = id_ending_in_000()
    data = xlsx([("李明", new_id_number(), None, unit) + (None,) * 4,
                 ("王强", rounded, None, unit) + (None,) * 4])
    checked = upload(county.clerk, data, dry_run="true")
    assert checked.status_code == 200, checked.json
    assert checked.json["errors"] == []
    assert checked.json["warnings"] == [
        f"Row 4: the ID number {mask(rounded)} ends in 000 and may have been rounded by Excel; "
        f"check it against the ID card."]
    done = upload(county.clerk, data)
    assert done.status_code == 200 and done.json["applied"] is True
    assert len(done.json["warnings"]) == 1 and rounded not in json.dumps(done.json)
    assert rounded in members(app)
    sign_in(county.client, county)
    page = console_send(county.client, xlsx([("赵丽", rounded, None, unit) + (None,) * 4]))
    assert f"第 4 行：身份证号码 {mask(rounded)} 以 000 结尾" not in page.text
    assert f"第 3 行：身份证号码 {mask(rounded)} 以 000 结尾，可能被 Excel 四舍五入过" in page.text


def test_id_numbers_with_invisible_full_width_or_grouping_characters_are_stored_clean(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    ids = [new_id_number() for _ in range(7)]
    full_width = ids[3].translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
    written = [f'="{ids[0]}"', f"'{ids[1]}", f"\ufeff{ids[2][:6]}\u200b{ids[2][6:]}\u2060",
               full_width, f"{ids[4][:6]} {ids[4][6:14]} {ids[4][14:]}",
               f"{ids[5][:6]}\u3000{ids[5][6:]}"]
    data = csv_bytes([(f"职工{n}", number, None, unit) for n, number in enumerate(written)],
                     HEADERS[:4])
    answer = upload(county.clerk, data, "名册.csv")
    assert answer.status_code == 200, answer.json
    assert set(members(app)) == set(ids[:6])
    in_a_cell = xlsx([("李明", f"\u200c{ids[6]}\u200d", None, unit) + (None,) * 4])
    assert upload(county.clerk, in_a_cell).status_code == 200
    assert ids[6] in members(app)
    again = county.clerk.post("/api/v1/members", {"unit_code": unit, "name": "职工3",
                                                  "id_number": ids[3]})
    assert again.status_code == 409  # the full-width number imported is the same person


@pytest.mark.parametrize("headers", [
    ("职工姓名*", "身份证号码(18位)", "手机号码", "单位代码（必填）"),
    ("姓名", "身份证", "联系电话", "单位代码"),
    ("姓名", "证件号码", "手机", "单位编码"),
    ("姓名＊", "身份证号（18位）", "手机", "单位代码 [必填]"),
    ("姓名", "身份证号码\n（18位）*", "手机", "单位代码"),
])
def test_common_header_wordings_and_notes_in_brackets_are_recognised(
        county: County, headers: tuple[str, ...]) -> None:
    unit = county.unit()["code"]
    answer = upload(county.clerk, xlsx([("李明", new_id_number(), None, unit)], headers),
                    dry_run="true")
    assert answer.status_code == 200, answer.json
    assert answer.json["members_created"] == 1


def test_the_name_columns_english_header_is_shown_as_name_like_the_others(
        county: County) -> None:
    sign_in(county.client, county)
    page = county.client.get("/console/members/import").text
    assert "<code>姓名</code> / <code>name</code>" in page
    assert "<code>身份证号</code> / <code>ID number</code>" in page
    assert "职工姓名" not in page
    answer = upload(county.clerk, "名字,号码\n李明,1\n".encode(), "a.csv")
    assert answer.json["errors"][0]["message"] == (
        "No header row with the columns 姓名 (name) / 身份证号 (ID number) / 单位代码 (unit code) "
        "was found in the first 20 rows.")


def test_the_row_limit_is_exactly_20000_data_rows_in_xlsx_and_csv() -> None:
    def rows(n: int) -> list[tuple[str, ...]]:
        return [(f"职工{i}", f"ID{i}", "", "U1") for i in range(n)]

    def as_xlsx(n: int) -> bytes:
        buffer = BytesIO()
        book = xlsxwriter.Workbook(buffer, {"constant_memory": True})
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["2027年度参保名册"])
        sheet.write_row(2, 0, HEADERS[:4])  # a blank row between title and header
        for number, row in enumerate(rows(n), start=3):
            sheet.write_row(number, 0, row)
        sheet.write_row(n + 4, 5, ["制表人：张伟"])  # a row outside the roster's columns
        book.close()
        return buffer.getvalue()

    def as_csv(n: int) -> bytes:
        return "\r\n".join(["2027年度参保名册", "", ",".join(HEADERS[:4])]
                           + [",".join(row) + ("\r\n" if i % 500 == 0 else "")
                              for i, row in enumerate(rows(n))]).encode("utf-8-sig")

    for build in (as_xlsx, as_csv):
        with pytest.raises(RuleFailed) as refused:
            read_sheet(build(20_001))
        assert refused.value.errors[0].code == "too_many_rows", build
        assert len(read_sheet(build(20_000)).body) == 20_000


def test_an_empty_file_says_it_is_empty(county: County) -> None:
    for data in (b"", b"\xef\xbb\xbf", b"\r\n \r\n"):
        answer = upload(county.clerk, data, "名册.csv")
        assert answer.status_code == 422, data
        assert answer.json["errors"] == [
            {"field": "file", "code": "empty_upload", "message": "The file is empty."}]
    sign_in(county.client, county)
    page = console_send(county.client, b"", "import", "名册.csv")
    assert page.status_code == 422 and "文件是空的" in page.text and "未找到表头" not in page.text


def test_a_refused_or_checked_file_shows_what_would_be_added_not_what_was(
        app: Flask, county: County) -> None:
    unit = county.unit()["code"]
    sign_in(county.client, county)
    refused = console_send(county.client, xlsx([
        ("李明", new_id_number(), None, unit) + (None,) * 4,
        ("王强", bad_check_digit(new_id_number()), None, unit) + (None,) * 4]), "import")
    assert refused.status_code == 422 and "发现问题，未导入" in refused.text
    assert "<th>改正后可新增职工</th><td class=\"num\">1</td>" in refused.text
    assert "<th>新增职工</th>" not in refused.text and "<th>更新职工</th>" not in refused.text
    good = xlsx([("李明", new_id_number(), None, unit) + (None,) * 4])
    assert "<th>可新增职工</th>" in console_send(county.client, good, "check").text
    done = console_send(county.client, good, "import")
    assert "<th>新增职工</th><td class=\"num\">1</td>" in done.text
    assert "可新增" not in done.text and len(members(app)) == 1


# --- workbooks claiming more than they hold (a 5 KB file froze a worker for 30 s) -------------


def edited_xlsx(rows: list[tuple[Any, ...]], cells: dict[str, str] | None = None,
                merges: tuple[str, ...] = (), dimension: str | None = None) -> bytes:
    """A small workbook whose sheet XML is edited by hand, as a hostile file's is: merged
    ranges and a dimension openpyxl would not write (merging A2:XFD1048576 makes its cells)."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    for coordinate, value in (cells or {}).items():
        sheet[coordinate] = value
    written = BytesIO()
    book.save(written)
    edited = BytesIO()
    with zipfile.ZipFile(written) as source, \
            zipfile.ZipFile(edited, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                xml = data.decode()
                if dimension is not None:
                    xml = re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"', xml)
                if merges:
                    ranges = "".join(f'<mergeCell ref="{ref}"/>' for ref in merges)
                    xml = xml.replace("</sheetData>", f'</sheetData><mergeCells count='
                                                      f'"{len(merges)}">{ranges}</mergeCells>')
                data = xml.encode()
            target.writestr(info.filename, data)
    return edited.getvalue()


_READ_IN_A_CHILD = """
import json, sys
from claims.schemas.roster import read_sheet
from workflows.errors import RuleFailed
try:
    sheet = read_sheet(sys.stdin.buffer.read())
except RuleFailed as refused:
    print(json.dumps([error.code for error in refused.errors]))
else:
    print(json.dumps(len(sheet.body)))
"""


def read_apart(data: bytes) -> Any:
    """read_sheet's answer in a child process given 20 s (a refusal's codes, or the number of
    rows read): a reader doing whatever a file's ranges claim would hang the test run."""
    done = subprocess.run([sys.executable, "-c", _READ_IN_A_CHILD], input=data,
                          capture_output=True, timeout=20, check=True,
                          cwd=Path(__file__).parents[1])
    return json.loads(done.stdout)


# The security tester's file: 20 ranges to the sheet's last cell, and a cell in its last row.
TO_THE_LAST_CELL = ("A2:XFD1048576",) * 20


def test_a_workbook_merged_to_its_last_cell_is_refused_not_read_to_the_end(
        county: County) -> None:
    data = edited_xlsx([HEADERS[:4]], {"E1048576": "x"}, TO_THE_LAST_CELL)
    assert len(data) < 10_000
    assert read_apart(data) == ["too_many_rows"]
    staff = county.unit_staff(county.unit()["code"])
    answer = upload(staff, data, dry_run="true")
    assert answer.status_code == 422, answer.json
    assert answer.json["errors"] == [{
        "field": "file", "code": "too_many_rows",
        "message": "The sheet goes on below row 65536: at most 20000 member rows at once; "
                   "delete the rows below the roster."}]


@pytest.mark.parametrize(("cells", "merges", "refused_as"), [
    ({"A1048576": "x"}, (), "too_many_rows"),  # a million blank rows up to it, read one by one
    ({"A2": "x", "E1048576": "x"}, TO_THE_LAST_CELL, "file_too_large"),  # overlapping, filled
    ({}, tuple(f"E{row}:E{row + 1}" for row in range(2, 140_000, 2)), "file_too_large"),
], ids=["a cell in the last row", "overlapping ranges with a value", "70,000 ranges"])
def test_a_workbook_claiming_more_than_a_roster_holds_is_refused(
        cells: dict[str, str], merges: tuple[str, ...], refused_as: str) -> None:
    assert read_apart(edited_xlsx([HEADERS[:4]], cells, merges)) == [refused_as]


def test_merged_ranges_fill_only_the_columns_read_in_the_rows_there_are() -> None:
    # A real range (单位代码 merged down) beside ranges claiming every column to the last row,
    # and a dimension claiming the whole sheet: what is made is the 4 columns read, 4 rows.
    people = [(f"职工{i}", new_id_number(), None, "U1" if i == 0 else None, None, "备注")
              for i in range(4)]
    data = edited_xlsx([HEADERS[:4], *people], merges=("D2:D5", *("F2:XFD1048576",) * 20,
                                                       "B5:XFD1048576"),
                       dimension="A1:XFD1048576")
    sheet = read_sheet(data)
    assert [number for number, _cells in sheet.body] == [2, 3, 4, 5]
    assert [cells[3] for _number, cells in sheet.body] == ["U1"] * 4
    assert [len(cells) for _number, cells in sheet.body] == [4] * 4

"""Roster import (issue 6): POST /api/v1/members/import and `mutualaid import roster FILE`."""

from __future__ import annotations

import json
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import sqlalchemy as sa
from conftest import County, new_id_number
from flask import Flask
from test_console import csrf_token, sign_in
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from claims.db import session_scope
from claims.models import Enrolment, JobRun, Member, Unit

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
        "enrolments_created": 1, "enrolments_unchanged": 0, "warnings": [], "errors": []}
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
    assert {(e["row"], e["code"]) for e in refused.json["report"]["errors"]} == {
        (4, "other_unit"), (5, "other_unit_member")}
    assert len(members(app)) == 1
    fine = upload(staff, xlsx([("李明", new_id_number(), None, mine) + (None,) * 4]))
    assert fine.status_code == 200, fine.json
    assert fine.json["members_created"] == 1


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
                     ("王强", new_id_number(), None, "NOPE") + (None,) * 4]), "import")
    assert bad.status_code == 422
    assert "身份证号码校验位不正确" in bad.text and "没有此单位代码" in bad.text
    assert "<td class=\"num\">3</td>" in bad.text and "<td class=\"num\">4</td>" in bad.text
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

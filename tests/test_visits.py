"""Holiday visits (issue 6): who is visited before Spring Festival and Mid-Autumn, and the job
that prepares the list two weeks ahead."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from conftest import County, new_id_number
from flask import Flask

from workflows.jobs import JOBS, load_schedules, run_job
from workflows.visits import festival_date, next_festival, prepare_visits


def test_festival_dates_come_from_the_lunar_calendar() -> None:
    assert festival_date("spring", 2026) == date(2026, 2, 17)
    assert festival_date("mid_autumn", 2026) == date(2026, 9, 25)
    assert festival_date("spring", 2027) == date(2027, 2, 6)
    assert festival_date("mid_autumn", 2027) == date(2027, 9, 15)
    assert next_festival(date(2026, 9, 25)) == ("mid_autumn", 2026, date(2026, 9, 25))
    assert next_festival(date(2026, 9, 26)) == ("spring", 2027, date(2027, 2, 6))
    assert next_festival(date(2026, 12, 31)) == ("spring", 2027, date(2027, 2, 6))


@pytest.fixture
def world(county: County) -> dict[str, Any]:
    """Unit A: a critical illness, a female special illness, a large in-patient stay, a small
    one, a withdrawn critical illness; unit B: a critical illness."""
    a = county.unit(union_contact="李红", union_phone="0571-1111111")["code"]
    b = county.unit()["code"]
    people: dict[str, Any] = {}
    for key, unit, product, sex, shares in (
            ("critical", a, "critical_illness", "M", 1), ("female", a, "female_special", "F", 1),
            ("large", a, "inpatient", "M", 2), ("small", a, "inpatient", "M", 1),
            ("withdrawn", a, "critical_illness", "M", 1), ("other_unit", b, "critical_illness",
                                                           "M", 1)):
        member = county.member(unit, sex=sex, name=f"职工{key}")
        county.enrol(member, product, shares=shares)
        people[key] = member
        fields = {"self_paid": "12000.00", "total_expense": "20000.00"} if key == "large" else {}
        people[key]["claim_no"] = county.claim(member, product, **fields)["claim_no"]
    assert county.fire(people["withdrawn"]["claim_no"], "withdraw",
                       reason="重复登记").status_code == 200
    return {"a": a, "b": b, **people}


def names(answer: Any) -> set[str]:
    return {row["member_name"] for row in answer.json}


def test_serious_illness_and_large_claims_of_the_past_year_are_listed_by_unit(
        app: Flask, county: County, world: dict[str, Any]) -> None:
    answer = county.clerk.get("/api/v1/visits")
    assert answer.status_code == 200, answer.json
    festival, _year, day = next_festival(county.today)
    assert answer.headers["X-Festival"] == festival
    assert answer.headers["X-Festival-Date"] == day.isoformat()
    assert [row["member_name"] for row in answer.json] == [
        "职工critical", "职工female", "职工large", "职工other_unit"]  # by unit, then name
    rows = {row["member_name"]: row for row in answer.json}
    critical = rows["职工critical"]
    assert critical["unit_code"] == world["a"]
    assert (critical["union_contact"], critical["union_phone"]) == ("李红", "0571-1111111")
    assert critical["member_phone"] == "13800000000"
    assert critical["id_number_masked"] == world["critical"]["id_number_masked"]
    assert critical["reasons"][0] == "重大疾病互助保障"
    assert critical["claim_nos"] == [world["critical"]["claim_no"]]
    assert critical["largest_amount"] == "10000.00"
    assert rows["职工female"]["reasons"][0] == "女职工特殊疾病互助保障"
    assert rows["职工large"]["reasons"] == ["大额理赔（5000.00元及以上）"]
    assert rows["职工large"]["largest_amount"] == "10000.00"
    assert answer.headers["X-Pagination"]
    # A year later these claims are more than a year before the festival.
    later = county.clerk.get(f"/api/v1/visits?festival=spring&year={day.year + 2}")
    assert later.status_code == 200 and later.json == []


def test_a_member_whose_death_claim_is_logged_is_not_visited(
        county: County, world: dict[str, Any]) -> None:
    member = world["large"]
    county.enrol(member, "accident")
    county.claim(member, "accident", cause="accident", death=True, total_expense="0",
                 insurance_paid="0", self_paid="0", beneficiary={
        "name": "王秀英", "id_number": new_id_number(sex="F"), "relation": "配偶"})
    assert names(county.clerk.get("/api/v1/visits")) == {
        "职工critical", "职工female", "职工other_unit"}


def test_unit_staff_see_their_own_unit_and_bad_filters_are_refused(
        app: Flask, county: County, world: dict[str, Any]) -> None:
    staff = county.unit_staff(world["b"])
    assert names(staff.get("/api/v1/visits")) == {"职工other_unit"}
    for query in ("festival=new_year", "year=2027", "festival=spring&year=1800", "colour=red"):
        answer = county.clerk.get(f"/api/v1/visits?{query}")
        assert answer.status_code == 422, query
    assert county.client.get("/api/v1/visits").status_code == 401


def test_the_list_exports_as_xlsx_and_csv_with_ids_masked(
        app: Flask, county: County, world: dict[str, Any]) -> None:
    xlsx = county.clerk.get("/api/v1/visits/export?festival=spring")
    assert xlsx.status_code == 200
    assert "attachment" in xlsx.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(BytesIO(xlsx.data), read_only=True).active
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert "春节" in cells[0][0]
    assert cells[1][:5] == ["单位代码", "单位名称", "工会联系人", "工会电话", "职工姓名"]
    assert [row[4] for row in cells[2:]] == ["职工critical", "职工female", "职工large",
                                            "职工other_unit"]
    text = county.clerk.get("/api/v1/visits/export?festival=mid_autumn&format=csv")
    assert text.status_code == 200 and text.mimetype == "text/csv"
    rows = list(csv.reader(StringIO(text.data.decode("utf-8-sig"))))
    assert len(rows) == 5
    for member in (world["critical"], world["other_unit"]):
        assert member["id_number"] not in text.data.decode("utf-8-sig")
        assert member["id_number_masked"] in text.data.decode("utf-8-sig")


def test_no_csv_cell_of_the_list_is_read_as_a_formula(county: County) -> None:
    # Names and phones come from unit rosters and forms: a spreadsheet must show them as text.
    unit = county.unit(union_contact="=cmd|' /C calc'!A0", union_phone="+1+1")["code"]
    member = county.member(unit, name='=HYPERLINK("http://evil.example","点此")')
    county.enrol(member, "critical_illness")
    county.claim(member, "critical_illness")
    text = county.clerk.get("/api/v1/visits/export?festival=spring&format=csv")
    [row] = list(csv.reader(StringIO(text.data.decode("utf-8-sig"))))[1:]
    assert row[2:5] == ["'=cmd|' /C calc'!A0", "'+1+1", "'" + member["name"]]


def test_the_job_prepares_the_list_two_weeks_ahead_once(
        app: Flask, county: County, world: dict[str, Any], tmp_path: Path) -> None:
    runtime = app.extensions["mutualaid"]
    festival, year, day = next_festival(county.today)
    early = prepare_visits(runtime, today=day - timedelta(days=15))
    assert early["prepared"] is False and early["days_ahead"] == 15
    folder = Path(runtime.settings.instance_path) / "visits"
    assert not folder.exists()
    due = prepare_visits(runtime, today=day - timedelta(days=14))
    assert due["prepared"] is True and due["members"] == 4 and due["units"] == 2
    path = folder / f"visits-{year}-{festival}.xlsx"
    assert due["file"] == f"visits/{path.name}"
    written = path.read_bytes()
    sheet = openpyxl.load_workbook(BytesIO(written), read_only=True).active
    assert len(list(sheet.iter_rows(values_only=True))) == 2 + 4
    again = prepare_visits(runtime, today=day - timedelta(days=13))
    assert again["prepared"] is False and again["already_prepared"] is True
    assert path.read_bytes() == written
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # no temporary left


def test_the_job_is_scheduled_daily_and_records_its_run(app: Flask) -> None:
    assert "prepare_visits" in JOBS
    schedule = load_schedules(app.extensions["mutualaid"].settings)["prepare_visits"]
    assert schedule.enabled and schedule.cron == {"hour": 8, "minute": 0}
    run = run_job(app.extensions["mutualaid"], "prepare_visits")
    assert run.outcome == "ok"
    assert {"festival", "year", "date", "days_ahead", "prepared"} <= set(run.summary)


def test_the_console_shows_the_list_by_unit_and_downloads_it(
        app: Flask, county: County, world: dict[str, Any]) -> None:
    from test_console import sign_in

    browser = app.test_client()
    sign_in(browser, county)
    page = browser.get("/console/visits").get_data(as_text=True)
    assert f'id="unit-{world["a"]}"' in page and f'id="unit-{world["b"]}"' in page
    assert "职工critical" in page and "职工large" in page and "职工small" not in page
    assert "李红 0571-1111111" in page and world["critical"]["id_number_masked"] in page
    assert all(world[k]["id_number"] not in page for k in ("critical", "female", "large"))
    assert "共 4 人" in page
    download = browser.get("/console/visits/export.xlsx")
    assert download.status_code == 200
    sheet = openpyxl.load_workbook(BytesIO(download.data)).active
    assert "职工critical" in {cell for row in sheet.iter_rows(values_only=True) for cell in row}
    staff = app.test_client()
    county.unit_staff(world["b"])
    sign_in(staff, county, f"staff-{world['b']}")
    mine = staff.get("/console/visits").get_data(as_text=True)
    assert "职工other_unit" in mine and "职工critical" not in mine

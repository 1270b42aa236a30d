"""The manifest (报送清单): XLSX and CSV rows, totals, cover sheet, safety, atomic writes."""

from __future__ import annotations

import csv
import io
import logging
import sys
import tracemalloc
from datetime import date, datetime

import openpyxl
import pytest
from sqlmodel import select

from claims.auth import system_actor
from claims.db import session_scope
from claims.idcard import mask
from claims.models import Batch, Member
from config.settings import PROJECT_ROOT
from workflows import manifest
from workflows.batch import seal_weekly_batch
from workflows.manifest import (
    COVER_SHEET,
    DECISION_COLUMNS,
    MANIFEST_COLUMNS,
    SHEET,
    SHEET_COLUMNS,
    SIGNATURES,
    TITLE,
    manifest_files,
    write_manifest,
)

if str(PROJECT_ROOT) not in sys.path:  # bench/ sits beside the code; it is not installed
    sys.path.append(str(PROJECT_ROOT))
from bench.batch import make_ready_claims  # noqa: E402

HEADERS = [title for _key, title in MANIFEST_COLUMNS]  # the CSV's
# The XLSX's: the claim, then the city office's decision, blank for it to fill in.
SHEET_HEADERS = HEADERS + ["审核结果", "核准金额", "原因"]


def seal(app):
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        result = seal_weekly_batch(session, runtime, system_actor("weekly_batch"))
        assert result.batch is not None
        return result.batch.batch_no


def write(app, batch_no: str):
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        batch = session.exec(select(Batch).where(Batch.batch_no == batch_no)).one()
        return write_manifest(session, runtime, batch)


def ready(county, member=None, product_code: str = "inpatient", **fields) -> dict:
    claim = county.claim(member, product_code, **fields)
    assert county.fire(claim["claim_no"], "verify").status_code == 200
    return claim


def download(api, path: str):
    """GET a file and close the response (a file response holds the file open until then)."""
    response = api.get(path)
    response.get_data()
    response.close()
    return response


def id_numbers(app) -> list[str]:
    with session_scope(app.extensions["mutualaid"].engine, write=False) as session:
        return list(session.exec(select(Member.id_number)).all())


def test_manifest_has_a_row_per_claim_masked_ids_and_a_totals_row(app, county):
    claims = [ready(county) for _ in range(3)]
    files = write(app, seal(app))
    book = openpyxl.load_workbook(files.xlsx)
    assert book.sheetnames == [SHEET, COVER_SHEET]
    rows = list(book[SHEET].iter_rows(values_only=True))
    assert list(rows[0]) == SHEET_HEADERS == [title for _key, title in SHEET_COLUMNS]
    body, totals = rows[1:-1], rows[-1]
    assert [r[0] for r in body] == [c["claim_no"] for c in claims]
    first = body[0]
    assert first[1] == "单位1" and first[2] == "张伟" and first[4] == "住院医疗互助保障"
    assert first[3] == claims[0]["id_number_masked"] and "*" * 8 in first[3]
    assert first[5] == "疾病" and first[13] == "齐全（5项）"
    assert isinstance(first[6], datetime) and first[6].date() == date.fromisoformat(
        claims[0]["incident_date"])
    assert all(isinstance(first[col], datetime) for col in (6, 7, 8))  # dates are dates
    assert first[9:13] == (8000, 4000, 3000, 1250)
    assert all(type(value) is float for value in first[9:13])  # numbers are numbers
    sheet = book[SHEET]
    assert sheet.cell(row=2, column=10).number_format == "0.00"
    assert sheet.cell(row=2, column=7).number_format == "yyyy-mm-dd"
    assert all(cell.font.b for cell in sheet[1]) and sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == 15 and sheet.auto_filter.ref == "A1:Q4"
    assert sheet.print_title_rows == "$1:$1" and sheet.page_setup.orientation == "landscape"
    assert (totals[0], totals[1], totals[2]) == (None, "合计", "3件")
    assert totals[9:13] == (24000, 12000, 9000, 3750)
    total_row = sheet[len(rows)]
    assert all(cell.font.b and cell.border.top.style == "thin" for cell in total_row)
    assert [cell.number_format for cell in total_row[9:13]] == ["0.00"] * 4
    # The decisions upload reads sheets read-only: it sees the same rows.
    read_only = openpyxl.load_workbook(files.xlsx, read_only=True)
    assert list(read_only[SHEET].iter_rows(values_only=True)) == rows
    read_only.close()

    text = files.csv.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese correctly
    lines = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
    assert lines[0] == HEADERS
    assert [line[0] for line in lines[1:-1]] == [c["claim_no"] for c in claims]
    assert lines[1][6] == claims[0]["incident_date"] and lines[1][9:13] == [
        "8000.00", "4000.00", "3000.00", "1250.00"]
    assert lines[-1][:3] == ["", "合计", "3件"] and lines[-1][12] == "3750.00"

    # Only masked ID numbers, anywhere in the files.
    raw = files.csv.read_text("utf-8-sig") + files.cover.read_text("utf-8") + "".join(
        str(v) for sheet in book for row in sheet.iter_rows(values_only=True) for v in row)
    for number in id_numbers(app):
        assert number not in raw and mask(number) in raw


def test_the_sheet_leaves_the_decision_columns_blank_with_a_list_for_the_outcome(app, county):
    ready(county)
    ready(county)
    files = write(app, seal(app))
    sheet = openpyxl.load_workbook(files.xlsx)[SHEET]
    rows = list(sheet.iter_rows(values_only=True))
    decision = slice(len(MANIFEST_COLUMNS), len(SHEET_COLUMNS))
    assert list(rows[0][decision]) == [title for _key, title in DECISION_COLUMNS]
    assert all(row[decision] == (None, None, None) for row in rows[1:])  # totals row too
    assert [cell.fill.fgColor.rgb for cell in sheet[1][decision]] == ["FFFFF2CC"] * 3
    assert all(cell.border.left.style == "thin" for cell in sheet[2][decision])  # boxed
    assert sheet["P2"].number_format == "0.00"  # 核准金额, when the city types it
    assert sheet.column_dimensions["Q"].width == 24
    # 审核结果 offers the words the decisions reader takes, on the claim rows only.
    (validation,) = sheet.data_validations.dataValidation
    assert (validation.type, str(validation.sqref)) == ("list", "O2:O3")
    assert validation.formula1 == '"核准,不予赔付,退回"' and validation.allow_blank
    assert validation.showErrorMessage and "核准、不予赔付、退回" in validation.error
    # The CSV is not read back: it keeps the claim columns only.
    lines = list(csv.reader(io.StringIO(files.csv.read_text("utf-8-sig"))))
    assert lines[0] == HEADERS and all(len(line) == len(HEADERS) for line in lines)


def test_the_cover_sheet_is_printable_with_totals_and_signature_lines(app, county):
    ready(county)
    ready(county)
    batch_no = seal(app)
    files = write(app, batch_no)
    cover = openpyxl.load_workbook(files.xlsx)[COVER_SHEET]
    text = [str(v) for row in cover.iter_rows(values_only=True) for v in row if v is not None]
    assert text[0] == TITLE
    assert batch_no in text and "2件" in text
    assert any("2500.00元" in t and "贰仟伍佰元整" in t for t in text)
    assert "住院医疗互助保障" in text
    for who in SIGNATURES:
        assert f"{who}：" in text
    assert cover.print_area is not None
    assert cover.page_setup.paperSize == 9 and cover.sheet_properties.pageSetUpPr.fitToPage
    page = files.cover.read_text("utf-8")
    assert TITLE in page and batch_no in page and "size:A4" in page
    assert all(who in page for who in SIGNATURES) and "2500.00" in page


def test_formulas_in_names_are_neutralised(app, county):
    unit = county.unit(name="=HYPERLINK(\"http://x\",\"点我\")")
    member = county.member(unit["code"], name="+SUM(1,2)")
    county.enrol(member)
    ready(county, member)
    files = write(app, seal(app))
    lines = list(csv.reader(io.StringIO(files.csv.read_text("utf-8-sig"))))
    assert lines[1][1] == "'=HYPERLINK(\"http://x\",\"点我\")"
    assert lines[1][2] == "'+SUM(1,2)"
    sheet = openpyxl.load_workbook(files.xlsx)[SHEET]
    for cell in sheet[2][1:3]:
        assert cell.data_type == "s" and cell.quotePrefix  # text, never a formula
    assert sheet.cell(row=2, column=2).value.startswith("=HYPERLINK")
    assert sheet.cell(row=2, column=3).value == "+SUM(1,2)"


def test_markup_and_control_characters_in_names_reach_the_sheet_safely(app, county):
    unit = county.unit(name="<b>甲&乙</b>\x07厂")
    member = county.member(unit["code"], name="王\x0b五")
    county.enrol(member)
    ready(county, member)
    files = write(app, seal(app))
    row = next(openpyxl.load_workbook(files.xlsx)[SHEET].iter_rows(min_row=2, values_only=True))
    stored = [line[1:3] for line in csv.reader(io.StringIO(files.csv.read_text("utf-8-sig")))]
    # The sheet drops what XML cannot hold; the CSV keeps the names as stored.
    assert row[1:3] == (stored[1][0].replace("\x07", ""), stored[1][1].replace("\x0b", ""))
    assert row[1].startswith("<b>甲&乙</b>")


def test_download_writes_a_missing_manifest_and_answers_each_format(app, county):
    ready(county)
    batch_no = seal(app)  # sealed without a run: no manifest yet
    base = f"/api/v1/batches/{batch_no}/manifest"
    xlsx = download(county.clerk, base)
    assert xlsx.status_code == 200
    assert xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in xlsx.headers["Content-Disposition"]
    assert xlsx.headers["Cache-Control"] == "no-store"  # names every claimant of the batch
    assert openpyxl.load_workbook(io.BytesIO(xlsx.data)).sheetnames == [SHEET, COVER_SHEET]
    answer = download(county.clerk, f"{base}?format=csv")
    assert answer.mimetype == "text/csv" and answer.data.startswith(b"\xef\xbb\xbf")
    cover = download(county.clerk, f"{base}?format=cover")
    assert cover.mimetype == "text/html" and TITLE in cover.data.decode()
    assert county.clerk.get(f"{base}?format=pdf").status_code == 422
    assert county.clerk.get("/api/v1/batches/1999-W01/manifest").status_code == 404
    assert county.clerk.get(f"/api/v1/batches/{batch_no}").json["manifest_written_at"]


@pytest.mark.parametrize("kind, mimetype", [("csv", "text/csv"), ("cover", "text/html")])
def test_a_manifest_download_names_its_charset_once(app, county, kind, mimetype):
    ready(county)
    batch_no = seal(app)
    answer = download(county.clerk, f"/api/v1/batches/{batch_no}/manifest?format={kind}")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == f"{mimetype}; charset=utf-8"


def test_a_batch_that_grew_gets_a_new_manifest(app, county):
    ready(county)
    batch_no = seal(app)
    first = download(county.clerk, f"/api/v1/batches/{batch_no}/manifest?format=csv").data
    ready(county)
    assert seal(app) == batch_no
    assert county.clerk.get(f"/api/v1/batches/{batch_no}").json["manifest_written_at"] is None
    second = download(county.clerk, f"/api/v1/batches/{batch_no}/manifest?format=csv").data
    assert len(first.decode("utf-8-sig").splitlines()) == 3  # header, one claim, totals
    assert len(second.decode("utf-8-sig").splitlines()) == 4


def test_a_manifest_on_disk_another_database_wrote_is_not_served(app, county, caplog):
    """After a restore from backup, or with a manifest folder two databases write, the files
    under a batch number can hold other claims: the download writes this database's again."""
    claim = ready(county)
    batch_no = seal(app)
    files = write(app, batch_no)
    theirs = "理赔编号,单位\nLP2026-999999,别的县\n"
    for path in files.all():
        path.write_text(theirs, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="mutualaid.batch"):
        answer = download(county.clerk, f"/api/v1/batches/{batch_no}/manifest?format=csv")
    text = answer.data.decode("utf-8-sig")
    assert claim["claim_no"] in text and "LP2026-999999" not in text
    assert files.csv.read_bytes() == answer.data  # written again on disk
    assert any(batch_no in r.getMessage() and "not the one" in r.getMessage()
               for r in caplog.records)
    cover = download(county.clerk, f"/api/v1/batches/{batch_no}/manifest?format=cover")
    assert "别的县" not in cover.data.decode()


def test_a_failed_write_leaves_no_manifest_under_the_final_name(app, county, monkeypatch):
    for _ in range(3):
        ready(county)
    batch_no = seal(app)
    calls = []

    def failing_on_the_second_row(text: str) -> str:
        calls.append(text)
        if len(calls) > 2:  # two names a row
            raise OSError("disk full")
        return text

    monkeypatch.setattr(manifest, "csv_text", failing_on_the_second_row)
    with pytest.raises(OSError):
        write(app, batch_no)
    files = manifest_files(app.extensions["mutualaid"], batch_no)
    assert list(files.xlsx.parent.iterdir()) == []  # no final files, no half files
    assert county.clerk.get(f"/api/v1/batches/{batch_no}").json["manifest_written_at"] is None
    monkeypatch.undo()
    assert write(app, batch_no).exist()


def test_manifest_memory_stays_flat_as_the_batch_grows(app):
    runtime = app.extensions["mutualaid"]
    peaks = []
    for n, prefix in ((500, "A-"), (4000, "B-")):
        make_ready_claims(runtime.engine, runtime.catalogue, n, members=50, prefix=prefix,
                          today=runtime.today())
        with session_scope(runtime.engine) as session:
            batch = seal_weekly_batch(session, runtime, system_actor("weekly_batch")).batch
            assert batch is not None
            tracemalloc.start()
            write_manifest(session, runtime, batch)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    small, large = peaks
    assert large < small * 2 + 2_000_000, peaks  # 9x the claims, not 9x the memory

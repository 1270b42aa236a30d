"""Issue 7 bad input, by Hypothesis: the decisions sheet reader given malformed and hostile
files always refuses with a 422 naming the file (never a 5xx), formula-looking text never
becomes a formula in an exported sheet, and uploads over 1 MiB answer 413 JSON.

Also covered: ID numbers, money strings and dates (test_idcard_money.py, test_rules.py),
the decisions sheet's happy paths, a zip bomb and a non-zip (test_decisions.py), every
operation fuzzed from the OpenAPI document (test_schemathesis.py)."""

from __future__ import annotations

import csv
import http.client
import io
import json
import zipfile
from datetime import date
from io import BytesIO
from urllib.parse import urlsplit

import hypothesis.strategies as st
import openpyxl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from openpyxl.utils.exceptions import IllegalCharacterError
from sqlmodel import select

from claims.auth import system_actor
from claims.db import session_scope
from claims.models import Batch
from claims.schemas.payout import SHEET_HEADERS, XLSX_MIMETYPE, read_decisions_sheet
from claims.schemas.roster import read_roster
from workflows.batch import seal_weekly_batch
from workflows.errors import RuleFailed
from workflows.manifest import SHEET, write_manifest
from workflows.xlsx_stream import FORMULA_PREFIXES, Workbook

FILE_CODES = {"unreadable_file", "missing_columns", "file_too_large", "too_many_rows"}
risky_text = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(FORMULA_PREFIXES),
                       st.text(max_size=30))


def workbook(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def read_or_refuse(data: bytes) -> object:
    """The sheet's decisions, or the RuleFailed (422) it is refused with: nothing else."""
    try:
        return read_decisions_sheet(data)
    except RuleFailed as refused:
        assert refused.errors, "a refusal names what is wrong"
        return refused


VALID = workbook([list(SHEET_HEADERS.values()),
                  ["LP2026-000001", "核准", "1200.00", None],
                  ["LP2026-000002", "不予赔付", None, "不属于保障范围"]])


@given(st.binary(max_size=4096))
@settings(max_examples=200, deadline=None)
def test_any_bytes_are_refused_as_a_file_or_read(data):
    result = read_or_refuse(data)
    if isinstance(result, RuleFailed):
        assert {e.code for e in result.errors} <= FILE_CODES


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(VALID) - 1),
                          st.integers(min_value=0, max_value=255)), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_a_corrupted_workbook_is_refused_or_read_never_a_crash(flips):
    data = bytearray(VALID)
    for position, value in flips:
        data[position] = value
    read_or_refuse(bytes(data))


ROSTER = workbook([["姓名", "身份证号", "手机", "单位代码"],
                   ["张伟", "330100198506150011", "13800000000", "U001"]])


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(ROSTER) - 1),
                          st.integers(min_value=0, max_value=255)), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_a_corrupted_roster_is_refused_or_read_never_a_crash(flips):
    data = bytearray(ROSTER)
    for position, value in flips:
        data[position] = value
    try:
        read_roster(bytes(data))
    except RuleFailed as refused:
        assert refused.errors and refused.errors[0].field == "file"


cell = st.one_of(st.none(), st.text(max_size=40), st.integers(min_value=-10**12, max_value=10**12),
                 st.floats(allow_nan=True, allow_infinity=True), st.booleans(), risky_text,
                 st.dates(), st.sampled_from(["核准", "不予赔付", "退回补充材料", "合计"]))


@given(st.lists(st.lists(cell, min_size=0, max_size=6), max_size=6),
       st.permutations(list(SHEET_HEADERS.values())), st.booleans())
@settings(max_examples=80, deadline=None)
def test_any_cells_under_the_headers_are_decisions_or_a_422_naming_rows(rows, headers, full):
    header = list(headers) if full else list(headers)[:-1]
    try:
        data = workbook([header, *[[str(v) if isinstance(v, bool) else v for v in row]
                                   for row in rows]])
    except (ValueError, TypeError, IllegalCharacterError):
        assume(False)  # openpyxl itself would not write it (illegal characters)
        return
    read_or_refuse(data)


def test_a_huge_shared_strings_table_is_refused_or_read_without_a_crash():
    """Bomb-ish: 60,000 long distinct strings packed small, a few MiB uploaded."""
    packed = BytesIO()
    strings = "".join(f"<si><t>{'甲' * 60}{n}</t></si>" for n in range(60_000))
    with zipfile.ZipFile(BytesIO(VALID)) as source, \
            zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "xl/sharedStrings.xml":
                body = body.replace(b"</sst>", strings.encode() + b"</sst>")
            target.writestr(item, body)
    result = read_or_refuse(packed.getvalue())
    assert not isinstance(result, RuleFailed) or {e.code for e in result.errors} <= FILE_CODES


@given(st.binary(min_size=1, max_size=2048))
@settings(max_examples=15, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
def test_uploads_of_any_bytes_answer_a_4xx_and_apply_nothing(county, data):
    for body, content_type in ((data, XLSX_MIMETYPE), (data, "application/json"),
                               (data, "text/csv")):
        answer = county.clerk.post("/api/v1/batches/2026-W01/decisions", data=body,
                                   content_type=content_type)
        assert 400 <= answer.status_code < 500 and answer.is_json, answer.status_code


def test_a_body_over_its_limit_answers_413_json(county, client):
    """The decisions sheet: test_decisions.py::test_a_file_over_1_mib_answers_413."""
    mib = 1024 * 1024
    for path, content_type, limit in (("/api/v1/claims", "application/json", mib),
                                      ("/api/v1/status", "application/json", mib),
                                      ("/api/v1/members/import", "text/csv", 10 * mib)):
        answer = county.clerk.post(path, data=b"x" * (limit + 1), content_type=content_type)
        assert answer.status_code == 413 and answer.json["code"] == "payload_too_large", path


def test_json_nested_past_the_parsers_stack_answers_4xx_not_500(county, client, caplog):
    deep = b"[" * 200_000 + b"]" * 200_000  # 400 KB, under the 1 MiB limit
    for api, path in ((client, "/api/v1/status"), (county.clerk, "/api/v1/claims")):
        answer = api.post(path, data=deep, content_type="application/json")
        assert 400 <= answer.status_code < 500 and answer.is_json, (path, answer.status_code)
    assert "RecursionError" not in caplog.text and "Traceback" not in caplog.text


MIB = 1024 * 1024


def post_chunked(url: str, path: str, body: bytes, content_type: str = "application/json",
                 token: str | None = None) -> tuple[int, str, dict]:
    """POST `body` to a real server with Transfer-Encoding: chunked and no Content-Length
    (the Flask test client always knows the length); answers status, content type, JSON."""
    server = urlsplit(url)
    connection = http.client.HTTPConnection(server.hostname, server.port, timeout=30)
    headers = {"Content-Type": content_type} | (
        {"Authorization": f"Bearer {token}"} if token else {})
    chunks = (body[at:at + 64 * 1024] for at in range(0, len(body), 64 * 1024))
    try:
        connection.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), json.loads(answer.read())
    finally:
        connection.close()


def test_a_chunked_body_over_1_mib_answers_413_json_as_with_a_content_length(county,
                                                                            live_server):
    token = county.clerk.token
    for path in ("/api/v1/claims", "/api/v1/status", "/api/v1/units"):
        status, content_type, body = post_chunked(live_server.url, path, b"x" * (MIB + 1),
                                                  token=token)
        assert (status, body["code"]) == (413, "payload_too_large"), (path, body)
        assert content_type == "application/json" and body["errors"] == []
    assert county.clerk.get("/api/v1/units").json == []


def test_a_chunked_body_of_exactly_1_mib_is_read_whole(county, live_server):
    padding = b'{"pad": "' + b"x" * (MIB - 11) + b'"}'
    assert len(padding) == MIB
    status, _type, body = post_chunked(live_server.url, "/api/v1/units", padding,
                                       token=county.clerk.token)
    assert status == 422, body
    assert ("pad", "unknown_field") in {(e["field"], e["code"]) for e in body["errors"]}


def test_a_chunked_roster_may_be_larger_than_1_mib_up_to_its_own_limit(county, live_server):
    row = f"{'张' * 100},330100198506150011,13800000000,NOPE\n"
    data = ("姓名,身份证号,手机,单位代码\n" + row * 5_000).encode()
    assert MIB < len(data) < 10 * MIB
    status, _type, body = post_chunked(live_server.url, "/api/v1/members/import?dry_run=true",
                                       data, content_type="text/csv", token=county.clerk.token)
    assert (status, body["rows"]) == (200, 5_000), body  # read whole, every row


@given(st.lists(st.one_of(risky_text, st.text(max_size=30)), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_text_that_looks_like_a_formula_never_becomes_one_in_a_sheet(texts):
    out = BytesIO()
    with Workbook(out, ["s"]) as book, book.sheet("s") as sheet:
        sheet.write_row(texts)
    rows = list(openpyxl.load_workbook(BytesIO(out.getvalue()))["s"].iter_rows())
    for text, cell in zip(texts, rows[0] if rows else [], strict=False):
        assert cell.data_type != "f"
        if text.startswith(FORMULA_PREFIXES):
            assert cell.quotePrefix, text


@given(st.lists(risky_text.filter(lambda t: t.strip() and len(t) <= 60), min_size=2,
                max_size=2, unique=True))
@settings(max_examples=5, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
def test_every_risky_text_cell_of_the_manifest_is_neutralised(app, county, names):
    names = [name.replace("\r", "x").replace("\x00", "x") for name in names]
    unit = county.unit(name=names[0])
    member = county.member(unit["code"], name=names[1])
    county.enrol(member)
    claim = county.claim(member)
    assert county.fire(claim["claim_no"], "verify").status_code == 200
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        batch = seal_weekly_batch(session, runtime, system_actor("weekly_batch")).batch
        assert batch is not None
        files = write_manifest(session, runtime, session.exec(
            select(Batch).where(Batch.id == batch.id)).one())
    sheet = openpyxl.load_workbook(files.xlsx)[SHEET]
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value
            if isinstance(cell.value, str) and cell.value.startswith(FORMULA_PREFIXES):
                assert cell.quotePrefix, cell.value
    for line in csv.reader(io.StringIO(files.csv.read_text("utf-8-sig"))):
        for text in line:
            assert not text.startswith(FORMULA_PREFIXES) or text.lstrip("-").replace(
                ".", "").isdigit(), text


# --- fields: whatever a client sends, a value or a 422, never an exception of another kind ----

anything = st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.decimals(),
                     st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(anything)
@settings(max_examples=300, deadline=None)
def test_any_money_input_is_exact_fen_or_refused(value):
    from claims.money import MoneyError, format_fen, parse_yuan

    try:
        fen = parse_yuan(value)
    except MoneyError:
        return
    assert isinstance(fen, int) and 0 <= fen <= 9_999_999_999
    assert parse_yuan(format_fen(fen)) == fen


@given(st.one_of(anything, st.text(alphabet="0123456789Xx", min_size=17, max_size=19)))
@settings(max_examples=300, deadline=None)
def test_any_id_number_input_parses_or_is_refused(value):
    from claims.idcard import IdNumberError, mask, parse_id_number

    try:
        parsed = parse_id_number(value)
    except IdNumberError:
        return
    assert len(parsed.number) == 18 and mask(parsed.number).count("*") == 8


@given(st.one_of(st.dates().map(str), st.text(max_size=12), st.integers(), st.none()))
@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
def test_any_incident_date_is_a_past_date_or_a_422_naming_it(county, value):
    member = county.member() if not county.id_numbers else {
        "id_number": next(iter(county.id_numbers.values()))}
    answer = county.clerk.post("/api/v1/claims", county.claim_body(
        member, "critical_illness", incident_date=value))
    if answer.status_code != 422:
        assert answer.status_code == 201, answer.json
        assert date.fromisoformat(answer.json["incident_date"]) <= county.today
    else:
        assert "incident_date" in {e["field"] for e in answer.json["errors"]}, answer.json


@pytest.mark.parametrize("path", ["/api/v1/enrolments?member_id=470121971713",
                                  "/api/v1/claims?member_id=470121971713"])
def test_an_id_filter_past_the_id_columns_range_answers_422_naming_it(county, path):
    """Found by the schemathesis run on PostgreSQL: the enrolments list compared an INTEGER
    column with a number past 2**31 and answered 500."""
    answer = county.clerk.get(path)
    assert answer.status_code == 422, answer.status_code
    assert [e["field"] for e in answer.json["errors"]] == ["member_id"]

"""Roster files at the edge: an XLSX or CSV member list read into rows, each row's fields
checked by the same schema as POST /members (plus the enrolment fields of POST /enrolments).

Columns are found by header, Chinese or English (姓名/name, 身份证号/ID number, 手机/phone,
单位代码/unit code; optionally 险种/product, 份数/shares, 起保日期/start, 止保日期/end), on
whichever sheet has them, in the first 20 rows. Errors name the spreadsheet row and the
header as written: `rows.7.身份证号`. CSV may be UTF-8 (with or without BOM) or GB18030,
which is what Excel in Chinese saves as "CSV".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from io import StringIO
from typing import Any

import marshmallow as ma

from claims.schemas.common import InputSchema
from claims.schemas.fields import StrictInteger, Text, error_code_for
from claims.schemas.members import MemberInSchema
from claims.schemas.uploads import read_workbook
from workflows.roster_rows import Roster, RosterRow, RowProblem, refuse_file

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv"
MAX_ROSTER_BYTES = 10 * 1024 * 1024  # a 10,000-row sheet with enrolments is ~0.5 MiB as XLSX
MAX_ROSTER_ROWS = 20_000  # data rows; a county has ~2,000 members, a large unit a few thousand
HEADER_SEARCH_ROWS = 20

# Each field's header, as a unit may write it; compared without case, spaces, _ or *.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "职工姓名", "name"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "ID number", "id_number"),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "phone", "mobile"),
    "unit_code": ("单位代码", "单位编码", "unit code", "unit_code"),
    "product_code": ("险种", "险种代码", "product", "product_code"),
    "shares": ("份数", "shares"),
    "start_date": ("起保日期", "保障起始日期", "start", "start date", "start_date"),
    "end_date": ("止保日期", "保障截止日期", "end", "end date", "end_date"),
}
REQUIRED_COLUMNS = ("name", "id_number", "unit_code")
_IGNORED_IN_HEADERS = re.compile(r"[\s_*＊]")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def _header_key(text: str) -> str:
    return _IGNORED_IN_HEADERS.sub("", text).lower()


Lines = list[tuple[int, tuple[Any, ...]]]
_BY_HEADER = {_header_key(header): key for key, headers in COLUMNS.items() for header in headers}


class RosterRowSchema(MemberInSchema):
    """A roster row: a member by POST /members' rules, and optionally an enrolment's fields
    as POST /enrolments takes them (the catalogue's rules are checked in workflows.roster)."""

    product_code = Text(max_length=200)  # a code, or the product's name
    shares = StrictInteger()
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()


class RosterQuerySchema(InputSchema):
    dry_run = ma.fields.Boolean(load_default=False)


class RosterErrorSchema(ma.Schema):
    row = ma.fields.Integer(metadata={"description": "the spreadsheet row (or CSV line)"})
    field = ma.fields.String(metadata={"description": "rows.<row>.<header as written>"})
    code = ma.fields.String()
    message = ma.fields.String()


class RosterReportSchema(ma.Schema):
    dry_run = ma.fields.Boolean()
    applied = ma.fields.Boolean()
    rows = ma.fields.Integer()
    valid_rows = ma.fields.Integer()
    invalid_rows = ma.fields.Integer()
    members_created = ma.fields.Integer()
    members_updated = ma.fields.Integer()
    members_unchanged = ma.fields.Integer()
    enrolments_created = ma.fields.Integer()
    enrolments_unchanged = ma.fields.Integer()
    warnings = ma.fields.List(ma.fields.String())
    errors = ma.fields.List(ma.fields.Nested(RosterErrorSchema))


# --- reading the file -------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterSheet:
    """A file's header (each field's column and header text) and its non-blank rows below."""

    columns: dict[str, int]
    labels: dict[str, str]
    body: Lines


def read_sheet(data: bytes) -> RosterSheet:
    """The header and rows of an XLSX or CSV roster, told apart by content, not by name."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise refuse_file("unsupported_format",
                          "An old .xls workbook: save it as .xlsx or .csv and upload again.")
    lines = _xlsx_lines(data) if data.startswith(b"PK") else _csv_lines(data)
    return RosterSheet(*_find_columns(lines))


def parse_rows(sheet: RosterSheet, source: str = "",
               progress: Callable[[int], None] | None = None) -> Roster:
    """Each row's fields through RosterRowSchema; a bad cell becomes a problem of its row."""
    rows: list[RosterRow] = []
    schema = RosterRowSchema()
    for number, cells in sheet.body:
        values = {key: _cell(cells, index) for key, index in sheet.columns.items()}
        if all(value is None for value in values.values()):
            continue  # a row with text only in columns we do not read
        rows.append(_row(schema, number, values))
        if progress is not None and len(rows) % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(len(rows) % 1000)
    return Roster(rows=rows, labels=sheet.labels, source=source)


def read_roster(data: bytes, source: str = "") -> Roster:
    """The rows of an XLSX or CSV roster, fields parsed."""
    return parse_rows(read_sheet(data), source)


def _xlsx_lines(data: bytes) -> Lines:
    """Every sheet's rows, numbered as Excel numbers them, the first sheet first."""
    return read_workbook(data, _roster_sheet)


def _roster_sheet(book: Any) -> Lines:
    """The rows of the first sheet whose top rows hold the required headers."""
    for sheet in book.worksheets:
        sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
        lines = enumerate(sheet.iter_rows(values_only=True), start=1)
        top: Lines = []
        for number, row in lines:
            top.append((number, row))
            if _has_required(row) or number >= HEADER_SEARCH_ROWS:
                break
        if top and _has_required(top[-1][1]):
            rest: Lines = []
            for number, row in lines:
                if any(value is not None and value != "" for value in row):
                    rest.append((number, row))
                    _count(len(rest))
            return top + rest
    return []


def _count(lines: int) -> None:
    """Stop reading as soon as a file is too long, rather than after reading all of it."""
    if lines > MAX_ROSTER_ROWS + 1:
        raise refuse_file("too_many_rows", f"At most {MAX_ROSTER_ROWS} member rows at once.")


def _has_required(row: tuple[Any, ...]) -> bool:
    found = {_BY_HEADER.get(_header_key(str(v))) for v in row if v is not None}
    return all(key in found for key in REQUIRED_COLUMNS)


def _csv_lines(data: bytes) -> Lines:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise refuse_file("unreadable_file", "The file is neither UTF-8 nor GB18030 text.")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    lines: Lines = []
    try:
        for number, row in enumerate(csv.reader(StringIO(text, newline=""), dialect), start=1):
            if any(cell.strip() for cell in row):
                lines.append((number, tuple(row)))
                _count(len(lines) - HEADER_SEARCH_ROWS)
    except csv.Error:
        raise refuse_file("unreadable_file", "The file is not readable CSV.") from None
    return lines


def _find_columns(lines: Lines) -> tuple[dict[str, int], dict[str, str], Lines]:
    """The header row (in the first 20): each field's column and header text, and the rows below."""
    for position, (_number, row) in enumerate(lines[:HEADER_SEARCH_ROWS]):
        if not _has_required(row):
            continue
        columns: dict[str, int] = {}
        labels: dict[str, str] = {}
        for index, value in enumerate(row):
            key = _BY_HEADER.get(_header_key(str(value))) if value is not None else None
            if key is not None and key not in columns:
                columns[key] = index
                labels[key] = str(value).strip()
        return columns, labels, lines[position + 1:]
    wanted = " / ".join(f"{COLUMNS[k][0]} ({COLUMNS[k][-2]})" for k in REQUIRED_COLUMNS)
    raise refuse_file("missing_columns", f"No header row with the columns {wanted} was found "
                                         f"in the first {HEADER_SEARCH_ROWS} rows.")


def _cell(cells: tuple[Any, ...], index: int) -> Any:
    value = cells[index] if index < len(cells) else None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _row(schema: RosterRowSchema, number: int, values: dict[str, Any]) -> RosterRow:
    """One row through the schema; each bad field becomes a RowProblem naming its column."""
    present = frozenset(key for key, value in values.items() if value is not None)
    raw = {key: _as_input(key, value) for key, value in values.items() if value is not None}
    problems: list[RowProblem] = []
    if isinstance(values.get("id_number"), int | float):
        # Excel keeps 15 significant digits: an ID number typed as a number has lost its tail.
        raw.pop("id_number")
        problems.append(RowProblem(number, "id_number", "id_number_as_number",
                                   "The ID number is stored as a number, which loses digits: "
                                   "format the column as text and type it again."))
    try:
        loaded = schema.load(raw)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        for key, found in messages.items():
            if key == "id_number" and problems:
                continue  # said already: stored as a number
            for message in found if isinstance(found, list) else [found]:
                problems.append(RowProblem(number, str(key), error_code_for(str(message)),
                                           str(message)))
        valid = error.valid_data if isinstance(error.valid_data, dict) else {}
        loaded = {key: value for key, value in valid.items() if key not in messages}
    return RosterRow(number=number, present=present, problems=tuple(problems),
                     **{key: loaded.get(key) for key in COLUMNS})


def _as_input(key: str, value: Any) -> Any:
    """A cell as the JSON API would take it: dates ISO, numbers of text columns as text."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel keeps every number as a float
    if key == "shares":
        return int(value) if isinstance(value, str) and value.isdigit() else value
    if key in ("start_date", "end_date") and isinstance(value, str):
        match = _DATE.match(value)  # 2026/1/1, 2026.1.1 and 2026年1月1日 are dates too
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return date(year, month, day).isoformat()
            except ValueError:
                return value
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a phone number or unit code typed as a number
    return value if isinstance(value, str) else str(value)

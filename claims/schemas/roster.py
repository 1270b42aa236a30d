"""Roster files at the edge: an XLSX or CSV member list read into rows, each row's fields
checked by the same schema as POST /members (plus the enrolment fields of POST /enrolments).

Columns are found by header, Chinese or English (姓名/name, 身份证号/ID number, 手机/phone,
单位代码/unit code; optionally 险种/product, 份数/shares, 起保日期/start date, 止保日期/end date),
in the first 20 rows of the one visible sheet that has them (hidden sheets are not read; two
visible sheets with a header are refused). Errors name the spreadsheet row and the header as
written: `rows.7.身份证号`. CSV may be UTF-8 (with or without BOM) or GB18030, which is what
Excel in Chinese saves as "CSV".

A workbook is read within an old .xls sheet's bounds, 65,536 rows by 256 columns, whatever its
dimension or merged ranges claim: a sheet going on below is refused (`too_many_rows`), and so is
one whose merged ranges would fill more cells than the sheet has to read (`file_too_large`).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from io import StringIO
from typing import Any

import marshmallow as ma

from claims.idcard import mask
from claims.schemas.common import InputSchema
from claims.schemas.fields import StrictInteger, Text, error_code_for
from claims.schemas.members import MemberInSchema
from claims.schemas.uploads import Merged, merged_ranges, read_workbook
from workflows.roster_rows import Roster, RosterRow, RowProblem, refuse_file

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv"
MAX_ROSTER_BYTES = 10 * 1024 * 1024  # a 10,000-row sheet with enrolments is ~0.5 MiB as XLSX
MAX_ROSTER_ROWS = 20_000  # data rows; a county has ~2,000 members, a large unit a few thousand
HEADER_SEARCH_ROWS = 20
# Where reading a workbook stops, whatever its dimension says: openpyxl yields a blank row for
# each one missing before the next it finds, so a lone cell at row 1,048,576 is a million rows.
# An .xls sheet's rows: room for the member rows with blank and subtotal rows between them.
MAX_SHEET_ROWS = 65_536
MAX_SHEET_COLUMNS = 256  # IV; a header beyond it is not found

# Each field's headers as a unit may write them, compared by _header_key. The first is the
# Chinese header the console shows, the first in ASCII the English one.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "职工姓名", "员工姓名", "name"),
    "id_number": ("身份证号", "身份证号码", "身份证", "身份证件号码", "公民身份号码", "证件号码",
                  "证件号", "ID number", "id_number"),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "电话", "phone", "mobile"),
    "unit_code": ("单位代码", "单位编码", "unit code", "unit_code"),
    "product_code": ("险种", "险种代码", "险种名称", "product", "product_code"),
    "shares": ("份数", "参保份数", "shares"),
    "start_date": ("起保日期", "保障起始日期", "start date", "start", "start_date"),
    "end_date": ("止保日期", "保障截止日期", "end date", "end", "end_date"),
}
LABELS: dict[str, tuple[str, str]] = {
    key: (headers[0], next(h for h in headers if h.isascii())) for key, headers in COLUMNS.items()}
REQUIRED_COLUMNS = ("name", "id_number", "unit_code")
# Merged ranges never overlap in Excel, so they fill each cell read at most once.
MAX_MERGED_CELLS = MAX_SHEET_ROWS * len(COLUMNS)
# What Excel (and WPS) show in a cell whose formula failed; never a member's data.
SPREADSHEET_ERRORS = frozenset({"#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NULL!",
                                "#NUM!", "#GETTING_DATA", "#SPILL!", "#CALC!"})
_IGNORED_IN_HEADERS = re.compile(r"[\s_*]")
_NOTE_IN_HEADER = re.compile(r"(?:\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】)+$")  # 身份证号(18位)
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_KEPT_AS_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)  # ="0571..." keeps a CSV cell text in Excel
_AS_EXCEL_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d*)?E[+-]?\d+$", re.IGNORECASE)  # 1.10101E+17


def _header_key(text: str) -> str:
    """A header compared without case, width, spaces, _, * or a bracketed note (18位)."""
    key = _IGNORED_IN_HEADERS.sub("", unicodedata.normalize("NFKC", text))  # （ and ＊ too
    return _NOTE_IN_HEADER.sub("", key).lower()


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
    row = ma.fields.Integer(allow_none=True, metadata={
        "description": "the spreadsheet row (or CSV line); null for a problem of the file"})
    field = ma.fields.String(metadata={"description": "rows.<row>.<header as written>, or file"})
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
    other_unit_rows = ma.fields.Integer(metadata={
        "description": "unit staff: rows whose ID number another unit's member holds (which "
                       "rows is not said); the county office can move them"})
    warnings = ma.fields.List(ma.fields.String())
    errors = ma.fields.List(ma.fields.Nested(RosterErrorSchema))


# --- reading the file -------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterSheet:
    """A file's header (each field's column and header text) and its data rows below."""

    columns: dict[str, int]
    labels: dict[str, str]
    body: Lines


def read_sheet(data: bytes) -> RosterSheet:
    """The header and rows of an XLSX or CSV roster, told apart by content, not by name."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise refuse_file("unsupported_format",
                          "An old .xls workbook: save it as .xlsx or .csv and upload again.")
    if data.startswith(b"PK"):
        return read_workbook(data, _workbook_sheet)
    return _csv_sheet(data)


def parse_rows(sheet: RosterSheet, source: str = "",
               progress: Callable[[int], None] | None = None) -> Roster:
    """Each row's fields through RosterRowSchema; a bad cell becomes a problem of its row."""
    rows: list[RosterRow] = []
    schema = RosterRowSchema()
    for number, cells in sheet.body:
        values = {key: _cell(cells, index) for key, index in sheet.columns.items()}
        rows.append(_row(schema, number, values))
        if progress is not None and len(rows) % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(len(rows) % 1000)
    return Roster(rows=rows, labels=sheet.labels, source=source)


def read_roster(data: bytes, source: str = "") -> Roster:
    """The rows of an XLSX or CSV roster, fields parsed."""
    return parse_rows(read_sheet(data), source)


Numbered = Iterator[tuple[int, tuple[Any, ...]]]


def _workbook_sheet(book: Any) -> RosterSheet:
    """The one visible sheet whose top rows hold the required headers."""
    found: list[tuple[Any, tuple[int, tuple[Any, ...]]]] = []
    for sheet in book.worksheets:
        if sheet.sheet_state != "visible":
            continue  # hidden sheets hold lookup lists and old copies the clerk does not see
        sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
        top = sheet.iter_rows(max_row=HEADER_SEARCH_ROWS, max_col=MAX_SHEET_COLUMNS,
                              values_only=True)
        header = _find_header(enumerate(top, start=1))
        if header is not None:
            found.append((sheet, header))
    if len(found) > 1:
        # Importing one and ignoring the rest would silently drop a workshop's members.
        names = ", ".join(sheet.title for sheet, _header in found)
        raise refuse_file("several_sheets", f"Several sheets have a roster header ({names}): "
                                            f"import one sheet at a time.")
    if not found:
        raise _no_header()
    sheet, header = found[0]
    read = sorted(_header_columns(header[1])[0].values())
    rows = _rows_below(sheet, header[0], width=read[-1] + 1)
    merges = merged_ranges(book, sheet, limit=MAX_SHEET_ROWS)
    return _sheet(header, _merged_filled(rows, merges, read))


def _rows_below(sheet: Any, header_row: int, width: int) -> Numbered:
    """The sheet's rows below the header, as wide as the columns read, down to MAX_SHEET_ROWS;
    a sheet going on below is refused rather than read to its end or cut silently."""
    rows = sheet.iter_rows(min_row=header_row + 1, max_col=width, values_only=True)
    for number, row in enumerate(rows, start=header_row + 1):
        if number > MAX_SHEET_ROWS:
            # openpyxl yields no blank rows after the last it finds: there is one down there.
            raise refuse_file("too_many_rows",
                              f"The sheet goes on below row {MAX_SHEET_ROWS}: at most "
                              f"{MAX_ROSTER_ROWS} member rows at once; delete the rows below "
                              f"the roster.")
        yield number, row


def _merged_filled(rows: Numbered, merges: list[Merged], read: list[int]) -> Numbered:
    """The rows below the header with each merged range's value in the columns we `read`: a
    unit writes 单位代码 once and merges it down over its workers, and the clerk sees it on
    every row. Only ranges that start below the header: a two-row header stays a header.

    Ranges fill only the cells read, in the rows there are, so however far a range claims to
    reach, the work is bounded by the rows read. Excel's ranges never overlap, so no real sheet
    fills a cell twice; ranges filling more than the sheet has to read are refused.
    """
    starting: dict[int, list[tuple[Merged, list[int]]]] = {}
    for merged in merges:
        columns = [index for index in read if merged.first_col - 1 <= index < merged.last_col]
        # A range across columns only, or outside the columns read, fills nothing.
        if merged.last_row > merged.first_row and columns:
            starting.setdefault(merged.first_row, []).append((merged, columns))
    spread: list[tuple[int, list[int], Any]] = []  # last row, columns and value over this row
    filled = 0
    for number, row in rows:
        cells = list(row)
        cells.extend([None] * (read[-1] + 1 - len(cells)))
        spread = [(last, columns, value) for last, columns, value in spread if number <= last]
        for _last, columns, value in spread:
            filled += len(columns)
            if filled > MAX_MERGED_CELLS:
                raise refuse_file("file_too_large",
                                  f"The merged cells overlap: they would fill more than "
                                  f"{MAX_MERGED_CELLS} cells. Unmerge them and upload again.")
            for column in columns:
                if cells[column] is None:
                    cells[column] = value
        for merged, columns in starting.get(number, ()):
            top = cells[merged.first_col - 1]  # within: a column read is at or right of it
            if top is not None:
                spread.append((merged.last_row, columns, top))
        yield number, tuple(cells)


def _csv_sheet(data: bytes) -> RosterSheet:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise refuse_file("unreadable_file", "The file is neither UTF-8 nor GB18030 text.")
    if not text.strip():
        raise refuse_file("empty_upload", "The file is empty.")
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is sniffed: Excel and WPS always quote with " and double it inside,
    # and a column of '330102... would otherwise be taken for quotes.
    reader = csv.reader(StringIO(text, newline=""), csv.excel, delimiter=delimiter)
    rows: Numbered = ((number, tuple(row)) for number, row in enumerate(reader, start=1)
                      if any(cell.strip() for cell in row))
    try:
        header = _find_header(rows)
        if header is None:
            raise _no_header()
        return _sheet(header, rows)
    except csv.Error:
        raise refuse_file("unreadable_file", "The file is not readable CSV.") from None


def _find_header(rows: Numbered) -> tuple[int, tuple[Any, ...]] | None:
    """The header among the first 20 rows, leaving `rows` at the row below it."""
    for position, (number, row) in enumerate(rows, start=1):
        if _has_required(row):
            return number, row
        if position >= HEADER_SEARCH_ROWS:
            break
    return None


def _sheet(header: tuple[int, tuple[Any, ...]], rows: Numbered) -> RosterSheet:
    """Each field's column and header text, and the data rows below the header.

    A data row has something in a column we read: blank rows, and rows with text only in
    other columns (a remark, a signature line), are neither imported nor counted, so the limit
    is exactly on the rows the report counts. Reading stops at the first row over it.
    """
    columns, labels = _header_columns(header[1])
    body: Lines = []
    for number, row in rows:
        if any(_cell(row, index) is not None for index in columns.values()):
            body.append((number, tuple(row)))
            if len(body) > MAX_ROSTER_ROWS:
                raise refuse_file("too_many_rows",
                                  f"At most {MAX_ROSTER_ROWS} member rows at once.")
    return RosterSheet(columns, labels, body)


def _header_columns(header: tuple[Any, ...]) -> tuple[dict[str, int], dict[str, str]]:
    """Each field's column index and header text as written; the first of a field counts."""
    columns: dict[str, int] = {}
    labels: dict[str, str] = {}
    for index, value in enumerate(header):
        key = _BY_HEADER.get(_header_key(str(value))) if value is not None else None
        if key is not None and key not in columns:
            columns[key] = index
            labels[key] = str(value).strip()
    return columns, labels


def _has_required(row: tuple[Any, ...]) -> bool:
    found = {_BY_HEADER.get(_header_key(str(v))) for v in row if v is not None}
    return all(key in found for key in REQUIRED_COLUMNS)


def _no_header() -> Exception:
    wanted = " / ".join(f"{LABELS[k][0]} ({LABELS[k][1]})" for k in REQUIRED_COLUMNS)
    return refuse_file("missing_columns", f"No header row with the columns {wanted} was found "
                                          f"in the first {HEADER_SEARCH_ROWS} rows.")


def _cell(cells: tuple[Any, ...], index: int) -> Any:
    """A cell's value; text without its spaces and the marks that keep a CSV cell text."""
    value = cells[index] if index < len(cells) else None
    if not isinstance(value, str):
        return value
    text = value.strip()
    wrapped = _KEPT_AS_TEXT.match(text)
    if wrapped:
        text = wrapped[1].strip()
    elif text.startswith("'"):  # Excel's own keep-as-text mark, typed into a CSV
        text = text[1:].strip()
    return text or None


def _row(schema: RosterRowSchema, number: int, values: dict[str, Any]) -> RosterRow:
    """One row through the schema; each bad field becomes a RowProblem naming its column."""
    present = frozenset(key for key, value in values.items() if value is not None)
    problems = [problem for key, value in values.items()
                if (problem := _damaged(number, key, value)) is not None]
    said = {problem.key for problem in problems}
    raw = {key: _as_input(key, value) for key, value in values.items()
           if value is not None and key not in said}
    try:
        loaded = schema.load(raw)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        for key, found in messages.items():
            if key in said:
                continue  # said already, better: an error value, or an ID kept as a number
            for message in found if isinstance(found, list) else [found]:
                problems.append(RowProblem(number, str(key), error_code_for(str(message)),
                                           str(message)))
        valid = error.valid_data if isinstance(error.valid_data, dict) else {}
        loaded = {key: value for key, value in valid.items() if key not in messages}
    return RosterRow(number=number, present=present, problems=tuple(problems),
                     warnings=_rounded(number, loaded.get("id_number")),
                     **{key: loaded.get(key) for key in COLUMNS})


def _damaged(number: int, key: str, value: Any) -> RowProblem | None:
    """A cell Excel has spoiled: an error value, or an ID number that went through a number."""
    if isinstance(value, str) and value in SPREADSHEET_ERRORS:
        return RowProblem(number, key, "cell_error",
                          f"The cell holds the spreadsheet error {value}.")
    if key != "id_number":
        return None
    as_number = isinstance(value, int | float) and not isinstance(value, bool)
    if as_number or (isinstance(value, str) and _AS_EXCEL_NUMBER.match(value)):
        # Excel keeps 15 significant digits: an ID number typed as a number has lost its tail,
        # whether the cell is still a number or was saved as its text, 1.10101E+17.
        return RowProblem(number, key, "id_number_as_number",
                          "The ID number is stored as a number, which loses digits: "
                          "format the column as text and type it again.")
    return None


def _rounded(number: int, id_number: str | None) -> tuple[str, ...]:
    """A warning for a valid ID number ending in 000: about 1 in 1,100 real ones does, and
    so does every number Excel rounded to 15 digits and a clerk then widened and saved."""
    if id_number is None or not id_number.endswith("000"):
        return ()
    return (f"Row {number}: the ID number {mask(id_number)} ends in 000 and may have been "
            f"rounded by Excel; check it against the ID card.",)


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

"""The XML an .xlsx is made of, for workflows/xlsx_stream.py: cells and references (text
escaped so Excel reads it back unchanged, dates as serial day numbers, column letters,
ranges) and the package's fixed parts."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

MAX_ROWS, MAX_COLUMNS, MAX_TEXT = 1_048_576, 16_384, 32_767  # Excel refuses a file beyond
_EXCEL_DAY_ZERO = date(1899, 12, 30).toordinal()
MAIN_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
NS = f'{MAIN_NS} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument"
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# XML 1.0 forbids these characters anywhere, even escaped: they are dropped.
_FORBIDDEN = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_NOT_XML = re.compile(f"[{_FORBIDDEN}]")
# Excel reads _xHHHH_ in text as an escaped character: a literal one is escaped as _x005F_.
_EXCEL_ESCAPE = re.compile("_x[0-9A-Fa-f]{4}_")
_NEEDS_WORK = re.compile(f"[&<>\r{_FORBIDDEN}]|_x[0-9A-Fa-f]{{4}}_")


def xml_text(text: str) -> str:
    """Text as XML character data Excel reads back unchanged; forbidden characters dropped."""
    if _NEEDS_WORK.search(text) is None:
        return text
    text = _EXCEL_ESCAPE.sub(lambda found: "_x005F" + found.group(0), _NOT_XML.sub("", text))
    # A bare CR would come back as LF (XML normalises line ends); a reference survives.
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def text_cell(text: str) -> str:
    """A text cell's XML after its reference and style: an inline string (cut to Excel's
    limit: a longer one makes Excel refuse the whole file)."""
    text = text[:MAX_TEXT]
    if text[:1].isspace() or text[-1:].isspace():  # else readers may trim it
        return f' t="inlineStr"><is><t xml:space="preserve">{xml_text(text)}</t></is></c>'
    return f' t="inlineStr"><is><t>{xml_text(text)}</t></is></c>'


def attribute(text: str) -> str:
    return xml_text(text).replace('"', "&quot;")


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def excel_serial(value: date | datetime) -> float | int:
    """A date (or naive datetime) as Excel's serial day number (1900 system)."""
    if isinstance(value, datetime):
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return value.toordinal() - _EXCEL_DAY_ZERO + seconds / 86400
    return value.toordinal() - _EXCEL_DAY_ZERO


def other_cell(value: Any) -> str:
    """The cell XML of the values the hot loop does not check by exact type."""
    if isinstance(value, bool):
        return f' t="b"><v>{int(value)}</v></c>'
    if isinstance(value, date):  # datetime too
        return f"><v>{excel_serial(value)}</v></c>"
    if isinstance(value, int):  # an IntEnum, say: its number, not its name
        return f"><v>{int(value)}</v></c>"
    if isinstance(value, float | Decimal):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise ValueError(f"Excel has no number {value}")
        return f"><v>{value if isinstance(value, Decimal) else repr(float(value))}</v></c>"
    if isinstance(value, str):  # a subclass of str
        return text_cell(str(value)) if value else "/>"
    raise TypeError(f"No cell for a {type(value).__name__}: {value!r}")


def flag(name: str, on: Any) -> str:
    return f' {name}="1"' if on else ""


def cell_range(first_row: int, first_column: int, last_row: int, last_column: int) -> str:
    return (f"{column_letter(first_column)}{first_row}:"
            f"{column_letter(last_column)}{last_row}")


def absolute(reference: str) -> str:
    """A1:N9 -> $A$1:$N$9."""
    return ":".join(re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", part) for part in reference.split(":"))


def list_validation(reference: str, choices: Sequence[str], *, title: str = "",
                    error: str = "") -> str:
    """A dropdown of `choices` on the cells of `reference` (a list data validation); a blank
    cell stays allowed, other text is refused with `error` when typed in Excel."""
    listed = ",".join(choices)
    # An inline list is one quoted formula: no commas or quotes inside, 255 characters at most.
    if not choices or any("," in c or '"' in c for c in choices) or len(listed) > 255:
        raise ValueError(f"Not a list Excel can offer: {choices!r}")
    messages = (f' errorTitle="{attribute(title[:32])}"' if title else "") + (
        f' error="{attribute(error[:225])}"' if error else "")
    return (f'<dataValidation type="list" allowBlank="1" showErrorMessage="1"{messages} '
            f'sqref="{reference}"><formula1>"{xml_text(listed)}"</formula1></dataValidation>')


def package_parts(sheet_count: int, title: str | None, created: datetime
                  ) -> list[tuple[str, str]]:
    """The package's parts that depend on nothing but the sheets' number and the title:
    content types, relationships, document properties; as (name, XML)."""
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
        f'ContentType="{CT}.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheet_count + 1))
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    relations = "".join(
        f'<Relationship Id="rId{n}" Type="{REL}/worksheet" '
        f'Target="worksheets/sheet{n}.xml"/>' for n in range(1, sheet_count + 1))
    return [
        ("[Content_Types].xml", (
            f'{DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            f'ContentType="{CT}.spreadsheetml.sheet.main+xml"/>{sheets}'
            f'<Override PartName="/xl/styles.xml" ContentType="{CT}.spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.'
            'openxmlformats-package.core-properties+xml"/><Override PartName="/docProps/'
            f'app.xml" ContentType="{CT}.extended-properties+xml"/></Types>')),
        ("_rels/.rels", (
            f'{DECLARATION}<Relationships xmlns="{PKG_REL}">'
            f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{REL}/extended-properties" '
            'Target="docProps/app.xml"/></Relationships>')),
        ("docProps/core.xml", (
            f'{DECLARATION}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
            'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"'
            ' xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/'
            f'XMLSchema-instance">{f"<dc:title>{xml_text(title)}</dc:title>" if title else ""}'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
            '</cp:coreProperties>')),
        ("docProps/app.xml", (
            f'{DECLARATION}<Properties xmlns="http://schemas.openxmlformats.org/'
            'officeDocument/2006/extended-properties"><Application>mutualaid</Application>'
            '</Properties>')),
        ("xl/_rels/workbook.xml.rels", (
            f'{DECLARATION}<Relationships xmlns="{PKG_REL}">{relations}'
            f'<Relationship Id="rId{sheet_count + 1}" Type="{REL}/styles" '
            'Target="styles.xml"/></Relationships>')),
    ]

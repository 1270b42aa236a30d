"""A small streaming XLSX writer: rows go straight into the zip entry of their sheet.

An .xlsx is a zip of a few small fixed XML parts and one XML part per sheet. Rows are
written as they come (inline strings, numbers as <v>, dates as serial numbers with a date
style), so memory stays flat however many rows a sheet has; the small parts that depend on
what was written (styles, the workbook with its print areas) are written at the end.
A bare loop over 100,000 manifest rows takes ~1.2 s of CPU here, XlsxWriter's ~8 s (see
docs/decisions.md). It writes only what the manifest needs: text, numbers, dates, cell
styles, column widths, merged cells, a frozen header, an autofilter, dropdown lists and print
settings.

Every text cell is plain text (never a formula); one that a spreadsheet would evaluate if
retyped (=, +, -, @ ...) also gets the quote prefix, as Excel does for text typed after '.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from workflows.xlsx_xml import (
    DECLARATION,
    MAIN_NS,
    MAX_COLUMNS,
    MAX_ROWS,
    NS,
    absolute,
    attribute,
    cell_range,
    column_letter,
    excel_serial,
    flag,
    list_validation,
    other_cell,
    package_parts,
    text_cell,
    xml_text,
)

# Text a spreadsheet may read as a formula when it is edited or exported.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """Text for a CSV cell: one a spreadsheet would evaluate gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text

MAX_SHEET_NAME = 31
_FLUSH_ROWS = 256  # rows buffered before they go into the zip entry
_BAD_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")
_CACHE_LIMIT = 4096  # text cells remembered (most columns repeat a few values)



@dataclass(frozen=True)
class Style:
    """A cell format; the workbook numbers each distinct one (Workbook.style)."""

    bold: bool = False
    size: float | None = None  # points; None is the default 11
    fill: str | None = None  # background as RGB hex, e.g. "D9E1F2"
    border: Literal["", "all", "top"] = ""
    number_format: str | None = None  # e.g. "0.00", "yyyy-mm-dd"
    align: Literal["", "left", "center", "right"] = ""
    valign: Literal["", "top", "center", "bottom"] = ""
    wrap: bool = False
    quote_prefix: bool = False


@dataclass(frozen=True)
class PageSetup:
    """How a sheet prints."""

    landscape: bool = False
    paper: int = 9  # 9 is A4
    fit_width: int | None = None  # pages across; with fit_height, shrink to fit
    fit_height: int | None = None  # pages down; 0 is as many as needed
    center_horizontally: bool = False
    footer: str | None = None  # Excel's codes: &C centre, &P page, &N pages
    repeat_header_rows: int = 0  # rows printed on top of every page
    print_area: bool = False  # print exactly the written cells


_BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9}


class Workbook:
    """An .xlsx written front to back: `with Workbook(path, sheets) as book:`, then each sheet
    in turn with `with book.sheet(name, ...) as sheet: sheet.write_row(...)`."""

    def __init__(self, target: str | Path | IO[bytes], sheets: Sequence[str], *,
                 title: str | None = None, created: datetime | None = None,
                 compresslevel: int = 1) -> None:
        if not sheets:
            raise ValueError("A workbook needs at least one sheet.")
        for name in sheets:
            if not name or len(name) > MAX_SHEET_NAME or _BAD_SHEET_NAME.search(name):
                raise ValueError(f"Not a sheet name Excel accepts: {name!r}")
        if len({name.lower() for name in sheets}) != len(sheets):
            raise ValueError("Sheet names must differ (Excel ignores case).")
        self.sheets = tuple(sheets)
        # Level 1: the sheet XML is repetitive, so it compresses well even at the fastest level.
        self._zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._styles: dict[Style, int] = {Style(): 0}
        self._quoted: dict[int, int] = {}  # style -> the same with the quote prefix
        self._defined: list[tuple[str, int, str, bool]] = []  # name, sheet, value, hidden
        self._next_sheet = 0
        self._closed = False
        self._write_package(title, created or datetime.now(UTC))

    def style(self, style: Style | None = None, **fields: Any) -> int:
        """The number of a cell format (a Style, or its fields), to pass to write_row."""
        style = style or Style(**fields)
        number = self._styles.get(style)
        if number is None:
            number = self._styles[style] = len(self._styles)
        return number

    def quoted(self, style: int) -> int:
        """The same format with the quote prefix (for text that looks like a formula)."""
        number = self._quoted.get(style)
        if number is None:
            base = next(s for s, n in self._styles.items() if n == style)
            number = self._quoted[style] = self.style(replace(base, quote_prefix=True))
        return number

    @contextmanager
    def sheet(self, name: str, *, widths: Sequence[float] = (), freeze_rows: int = 0,
              page: PageSetup | None = None) -> Iterator[Sheet]:
        """Write the next sheet; it must be the next of the names given to the workbook."""
        if self._next_sheet >= len(self.sheets) or self.sheets[self._next_sheet] != name:
            raise ValueError(f"Sheets are written in the order declared: {self.sheets}")
        index = self._next_sheet
        self._next_sheet += 1
        with self._zip.open(f"xl/worksheets/sheet{index + 1}.xml", "w",
                            force_zip64=True) as handle:
            sheet = Sheet(self, handle, index, widths, freeze_rows, page or PageSetup())
            yield sheet
            sheet._finish()

    def close(self) -> None:
        """Write the workbook and styles parts and close the file (empty sheets if unwritten)."""
        if self._closed:
            return
        self._closed = True
        try:
            while self._next_sheet < len(self.sheets):
                with self.sheet(self.sheets[self._next_sheet]):
                    pass
            self._zip.writestr("xl/workbook.xml", self._workbook_xml())
            self._zip.writestr("xl/styles.xml", self._styles_xml())
        finally:
            self._zip.close()

    def abandon(self) -> None:
        """Close the file without finishing it (after an error: the caller discards it)."""
        self._closed = True
        self._zip.close()

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.close()
        else:
            self.abandon()

    def _define(self, name: str, sheet: int, value: str, hidden: bool = False) -> None:
        self._defined.append((name, sheet, value, hidden))

    def _write_package(self, title: str | None, created: datetime) -> None:
        for name, xml in package_parts(len(self.sheets), title, created):
            self._zip.writestr(name, xml)

    def _workbook_xml(self) -> str:
        sheets = "".join(f'<sheet name="{attribute(name)}" sheetId="{n}" r:id="rId{n}"/>'
                         for n, name in enumerate(self.sheets, start=1))
        names = "".join(
            f'<definedName name="{name}" localSheetId="{sheet}"{flag("hidden", hidden)}>'
            f"{xml_text(value)}</definedName>"
            for name, sheet, value, hidden in self._defined)
        return (f"{DECLARATION}<workbook {NS}><bookViews><workbookView/></bookViews>"
                f"<sheets>{sheets}</sheets>"
                f"{f'<definedNames>{names}</definedNames>' if names else ''}</workbook>")

    def _styles_xml(self) -> str:
        formats: dict[str, int] = {}
        fonts: dict[tuple[bool, float], int] = {(False, 11): 0}
        fills: dict[str | None, int] = {None: 0}  # and 1: the gray125 Excel requires
        borders = {"": 0, "all": 1, "top": 2}
        xfs = []
        for style in sorted(self._styles, key=self._styles.__getitem__):
            number_format = 0
            if style.number_format:
                number_format = _BUILTIN_FORMATS.get(style.number_format) or formats.setdefault(
                    style.number_format, 164 + len(formats))
            font = fonts.setdefault((style.bold, style.size or 11), len(fonts))
            fill = fills.setdefault(style.fill, len(fills) + 1) if style.fill else 0
            alignment = "".join((
                f' horizontal="{style.align}"' if style.align else "",
                f' vertical="{style.valign}"' if style.valign else "",
                ' wrapText="1"' if style.wrap else ""))
            xfs.append(
                f'<xf numFmtId="{number_format}" fontId="{font}" fillId="{fill}" '
                f'borderId="{borders[style.border]}" xfId="0"'
                f'{flag("quotePrefix", style.quote_prefix)}'
                f'{flag("applyNumberFormat", number_format)}{flag("applyFont", font)}'
                f'{flag("applyFill", fill)}{flag("applyBorder", style.border)}'
                + (f' applyAlignment="1"><alignment{alignment}/></xf>' if alignment else "/>"))
        number_formats = "".join(f'<numFmt numFmtId="{n}" formatCode="{attribute(code)}"/>'
                                 for code, n in formats.items())
        font_xml = "".join(
            f'<font>{"<b/>" if bold else ""}<sz val="{size:g}"/><name val="Calibri"/>'
            '<family val="2"/></font>' for bold, size in fonts)
        fill_xml = "".join(f'<fill><patternFill patternType="solid"><fgColor rgb="FF{rgb}"/>'
                           '<bgColor indexed="64"/></patternFill></fill>'
                           for rgb in fills if rgb)
        thin = '<{0} style="thin"><color auto="1"/></{0}>'
        return (
            f"{DECLARATION}<styleSheet {MAIN_NS}>"
            + (f'<numFmts count="{len(formats)}">{number_formats}</numFmts>' if formats else "")
            + f'<fonts count="{len(fonts)}">{font_xml}</fonts>'
            f'<fills count="{len(fills) + 1}"><fill><patternFill patternType="none"/></fill>'
            f'<fill><patternFill patternType="gray125"/></fill>{fill_xml}</fills>'
            '<borders count="3"><border><left/><right/><top/><bottom/><diagonal/></border>'
            f"<border>{''.join(thin.format(side) for side in ('left', 'right', 'top', 'bottom'))}"
            f"<diagonal/></border><border><left/><right/>{thin.format('top')}<bottom/>"
            "<diagonal/></border></borders>"
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
            f'</cellStyleXfs><cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            "</cellStyles></styleSheet>")


class Sheet:
    """One worksheet being written: rows in order, top to bottom."""

    def __init__(self, book: Workbook, handle: IO[bytes], index: int, widths: Sequence[float],
                 freeze_rows: int, page: PageSetup) -> None:
        self.book, self.index, self.page = book, index, page
        self.rows = 0  # rows written so far (the last row's number)
        self.columns = 0  # the widest row's cell count
        self._handle = handle
        self._buffer: list[str] = []
        self._pending_rows = 0
        self._merged: list[str] = []
        self._validations: list[str] = []
        self._autofilter: str | None = None
        self._starts: list[str] = []  # '<c r="A' for each column
        self._last_styles: Sequence[int] | int | None = None
        self._last_attributes: list[str] = []
        self._text_cells: dict[str, str] = {}  # text -> its cell XML after the reference
        self._day_cells: dict[date, str] = {}  # a batch's claims share a few weeks of dates
        fit = page.fit_width is not None or page.fit_height is not None
        head = [f"{DECLARATION}<worksheet {NS}>"]
        if fit:
            head.append('<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>')
        view = f'<sheetView workbookViewId="0"{flag("tabSelected", index == 0)}'
        if freeze_rows:
            top = f"A{freeze_rows + 1}"
            head.append(f'<sheetViews>{view}><pane ySplit="{freeze_rows}" topLeftCell="{top}" '
                        'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" '
                        f'activeCell="{top}" sqref="{top}"/></sheetView></sheetViews>')
        else:
            head.append(f"<sheetViews>{view}/></sheetViews>")
        head.append('<sheetFormatPr defaultRowHeight="15"/>')
        if widths:
            head.append("<cols>" + "".join(
                f'<col min="{n}" max="{n}" width="{width:g}" customWidth="1"/>'
                for n, width in enumerate(widths, start=1)) + "</cols>")
        head.append("<sheetData>")
        self._buffer.append("".join(head))

    def write_row(self, values: Sequence[Any], styles: Sequence[int] | int = 0, *,
                  height: float | None = None) -> int:
        """Write the next row: str, int, float, Decimal, date, datetime, bool; None (or "") is
        an empty cell, kept when it has a style. `styles` is one style or one per value. Returns its
        row number (1-based)."""
        self.rows = row = self.rows + 1
        if row > MAX_ROWS:
            raise ValueError(f"A sheet holds at most {MAX_ROWS:,} rows.")
        number = str(row)
        if len(values) > len(self._starts):
            if len(values) > MAX_COLUMNS:
                raise ValueError(f"A sheet holds at most {MAX_COLUMNS:,} columns.")
            self._starts.extend(f'<c r="{column_letter(n)}'
                                for n in range(len(self._starts), len(values)))
            self.columns = len(values)
        if not isinstance(styles, int | tuple):
            styles = tuple(styles)  # compared with the last row's: a list may change meanwhile
        if styles != self._last_styles or len(values) > len(self._last_attributes):
            self._last_styles = styles
            self._last_attributes = (
                [self._style_attribute(styles)] * len(values) if isinstance(styles, int)
                else [self._style_attribute(style) for style in styles])
        starts, attributes = self._starts, self._last_attributes
        append = self._buffer.append  # cells go straight into the buffer
        append(f'<row r="{number}" ht="{height:g}" customHeight="1">' if height
               else f'<row r="{number}">')
        text_cells, day_cells = self._text_cells, self._day_cells
        for column, value in enumerate(values):
            kind = type(value)
            if kind is str and value:
                tail = text_cells.get(value)
                if tail is None:
                    tail = text_cell(value)
                    if len(text_cells) >= _CACHE_LIMIT:
                        text_cells.clear()
                    text_cells[value] = tail
                if value.startswith(FORMULA_PREFIXES):
                    append(f"{starts[column]}{number}{self._quoted(styles, column)}{tail}")
                    continue
            elif kind is date:
                tail = day_cells.get(value)
                if tail is None:
                    tail = day_cells[value] = f"><v>{excel_serial(value)}</v></c>"
            elif kind is float:
                text = repr(value)
                if text[-1] in "nf":  # nan, inf
                    raise ValueError(f"Excel has no number {text}")
                tail = f"><v>{text}</v></c>"
            elif value is None or kind is str:  # "" too, as in Excel: an empty cell
                if attributes[column] == '"':
                    continue
                tail = "/>"
            elif kind is int:
                tail = f"><v>{value}</v></c>"
            else:
                tail = other_cell(value)
                if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
                    append(f"{starts[column]}{number}{self._quoted(styles, column)}{tail}")
                    continue
            append(f"{starts[column]}{number}{attributes[column]}{tail}")
        append("</row>")
        self._pending_rows += 1
        if self._pending_rows >= _FLUSH_ROWS:
            self._flush()
        return row

    def _quoted(self, styles: tuple[int, ...] | int, column: int) -> str:
        style = styles if isinstance(styles, int) else styles[column]
        return self._style_attribute(self.book.quoted(style))

    def _style_attribute(self, style: int) -> str:
        """The end of a cell's reference attribute and its style attribute, if any."""
        return f'" s="{style}"' if style else '"'

    def skip(self, rows: int = 1) -> None:
        """Leave rows empty."""
        self.rows += rows

    def merge(self, first_row: int, first_column: int, last_row: int, last_column: int) -> None:
        """Merge a range of already written cells (rows 1-based, columns 0-based)."""
        self._merged.append(cell_range(first_row, first_column, last_row, last_column))

    def autofilter(self, first_row: int, first_column: int, last_row: int,
                   last_column: int) -> None:
        """Filter buttons on the range's first row (rows 1-based, columns 0-based)."""
        self._autofilter = cell_range(first_row, first_column, last_row, last_column)

    def dropdown(self, first_row: int, first_column: int, last_row: int, last_column: int,
                 choices: Sequence[str], *, title: str = "", error: str = "") -> None:
        """A list to pick from in a range (rows 1-based, columns 0-based); blank is allowed."""
        self._validations.append(list_validation(
            cell_range(first_row, first_column, last_row, last_column), choices, title=title,
            error=error))

    def _flush(self) -> None:
        self._handle.write("".join(self._buffer).encode())
        self._buffer.clear()
        self._pending_rows = 0

    def _finish(self) -> None:
        page, tail = self.page, ["</sheetData>"]
        name = "'" + self.book.sheets[self.index].replace("'", "''") + "'"
        if self._autofilter:
            tail.append(f'<autoFilter ref="{self._autofilter}"/>')
            self.book._define("_xlnm._FilterDatabase", self.index,
                              f"{name}!{absolute(self._autofilter)}", hidden=True)
        if self._merged:
            tail.append(f'<mergeCells count="{len(self._merged)}">'
                        + "".join(f'<mergeCell ref="{ref}"/>' for ref in self._merged)
                        + "</mergeCells>")
        if self._validations:  # after mergeCells, before printOptions: the schema's order
            tail.append(f'<dataValidations count="{len(self._validations)}">'
                        + "".join(self._validations) + "</dataValidations>")
        if page.center_horizontally:
            tail.append('<printOptions horizontalCentered="1"/>')
        tail.append('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" '
                    'header="0.3" footer="0.3"/>')
        fit = "".join((
            f' fitToWidth="{page.fit_width}"' if page.fit_width is not None else "",
            f' fitToHeight="{page.fit_height}"' if page.fit_height is not None else ""))
        tail.append(f'<pageSetup paperSize="{page.paper}" '
                    f'orientation="{"landscape" if page.landscape else "portrait"}"{fit}/>')
        if page.footer:
            tail.append(f"<headerFooter><oddFooter>{xml_text(page.footer)}</oddFooter>"
                        "</headerFooter>")
        tail.append("</worksheet>")
        self._buffer.append("".join(tail))
        self._flush()
        if page.repeat_header_rows:
            self.book._define("_xlnm.Print_Titles", self.index,
                              f"{name}!$1:${page.repeat_header_rows}")
        if page.print_area and self.rows and self.columns:
            self.book._define("_xlnm.Print_Area", self.index,
                              f"{name}!{absolute(cell_range(1, 0, self.rows, self.columns - 1))}")

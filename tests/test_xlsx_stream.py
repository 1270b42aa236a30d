"""The streaming XLSX writer: what openpyxl (the decisions reader) reads back from its files."""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile
from datetime import date, datetime
from decimal import Decimal
from xml.etree import ElementTree

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.xlsx_stream import PageSetup, Workbook
from workflows.xlsx_xml import MAX_ROWS, MAX_TEXT, column_letter, excel_serial, xml_text

FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # by XML 1.0


def book_bytes(write, sheets=("清单",), **options) -> bytes:
    """A workbook written in memory by write(book)."""
    out = io.BytesIO()
    with Workbook(out, sheets, **options) as book:
        write(book)
    return out.getvalue()


def one_sheet(rows, styles=0, **sheet_options) -> bytes:
    def write(book):
        with book.sheet("清单", **sheet_options) as sheet:
            for row in rows:
                sheet.write_row(row, styles)
    return book_bytes(write)


def load(data: bytes, **options):
    return openpyxl.load_workbook(io.BytesIO(data), **options)


def test_values_come_back_with_their_types():
    moment = datetime(2026, 11, 23, 18, 30)
    data = one_sheet([("LP2026-000001", 42, 1234.5, Decimal("0.10"), date(2026, 11, 23), moment,
                       True, None, "末尾")])
    for options in ({}, {"read_only": True}):
        row = next(load(data, **options).worksheets[0].iter_rows(values_only=True))
        # Without a date style a date is its serial number, as in Excel.
        assert row == ("LP2026-000001", 42, 1234.5, 0.1, 46349, excel_serial(moment), True,
                       None, "末尾")


def test_styles_number_formats_and_sheet_settings_are_read_back():
    def write(book):
        header = book.style(bold=True, fill="D9E1F2", border="all", align="center",
                            valign="center", wrap=True)
        money, day = book.style(number_format="0.00"), book.style(number_format="yyyy-mm-dd")
        total = book.style(bold=True, border="top", number_format="0.00")
        with book.sheet("清单", widths=(15, 11, 12), freeze_rows=1,
                        page=PageSetup(landscape=True, fit_width=1, fit_height=0,
                                       repeat_header_rows=1, footer="&C第 &P 页")) as sheet:
            sheet.write_row(("理赔编号", "出险日期", "金额"), header)
            sheet.write_row(("LP1", date(2026, 11, 2), 8000.0), (0, day, money))
            sheet.write_row((None, None, 8000.0), (total, total, total))
            sheet.autofilter(1, 0, sheet.rows, 2)
        with book.sheet("封面", widths=(18, 20),
                        page=PageSetup(fit_width=1, fit_height=1, print_area=True,
                                       center_horizontally=True)) as cover:
            cover.write_row(("标题", None), book.style(bold=True, size=18), height=36)
            cover.merge(1, 0, 1, 1)
            cover.skip()
            cover.write_row(("经办人：", "____"))

    book = load(book_bytes(write, ("清单", "封面"), title="报送清单 2026-W48",
                           created=datetime(2026, 11, 23, 9, 0)))
    assert book.sheetnames == ["清单", "封面"]
    assert book.properties.title == "报送清单 2026-W48"
    sheet = book["清单"]
    head = sheet["A1"]
    assert head.font.b and head.fill.fgColor.rgb == "FFD9E1F2" and head.border.left.style == "thin"
    assert head.alignment.horizontal == "center" and head.alignment.wrap_text
    assert isinstance(sheet["B2"].value, datetime) and sheet["B2"].value.date() == date(2026, 11, 2)
    assert sheet["B2"].number_format == "yyyy-mm-dd" and sheet["C2"].number_format == "0.00"
    assert sheet["C3"].font.b and sheet["C3"].border.top.style == "thin"
    assert sheet["A3"].font.b and sheet["A3"].value is None  # a styled empty cell
    assert sheet.column_dimensions["A"].width == 15
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:C3"
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.paperSize == 9
    assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToHeight == 0
    assert sheet.oddFooter.center.text == "第 &P 页"
    cover = book["封面"]
    assert [str(r) for r in cover.merged_cells.ranges] == ["A1:B1"]
    assert cover.row_dimensions[1].height == 36 and cover["A1"].font.sz == 18
    assert cover["A3"].value == "经办人：" and cover.max_row == 3  # row 2 left empty
    assert cover.print_area == "'封面'!$A$1:$B$3"
    assert cover.print_options.horizontalCentered


def test_the_package_is_well_formed_with_the_content_types_first():
    data = one_sheet([("a", 1)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names[0] == "[Content_Types].xml"  # how file-type sniffers recognise an .xlsx
        for name in names:
            ElementTree.fromstring(archive.read(name))  # every part is well-formed XML


def test_text_that_looks_like_a_formula_stays_text_with_the_quote_prefix():
    risky = ["=HYPERLINK(\"http://x\",\"点我\")", "+SUM(1,2)", "-1", "@cmd", "\tx"]
    sheet = load(one_sheet([risky, ["安全", "x=1"]])).worksheets[0]
    for cell in sheet[1]:
        assert cell.data_type == "s" and cell.quotePrefix, cell.value
    assert [cell.value for cell in sheet[1]] == risky
    assert not any(cell.quotePrefix for cell in sheet[2])


def test_markup_and_characters_xml_forbids_are_handled():
    texts = ["<b>&amp;</b> \"引号\" 'x'", "控制\x00字符\x07\x1f", "  前后空格  ", "一\n二\r三",
             "😀 表情", "半个\ud800代理对"]
    row = next(load(one_sheet([texts])).worksheets[0].iter_rows(values_only=True))
    assert row == ("<b>&amp;</b> \"引号\" 'x'", "控制字符", "  前后空格  ", "一\n二\r三",
                   "😀 表情", "半个代理对")


def test_a_literal_excel_escape_is_escaped_itself():
    # Excel reads _x0041_ in a cell as "A"; _x005F_ before it keeps the text as typed.
    assert xml_text("_x0041_") == "_x005F_x0041_"
    assert xml_text("a_x00_b") == "a_x00_b"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=40).filter(lambda t: "_x" not in t), min_size=1, max_size=4))
def test_any_text_reads_back_without_the_forbidden_characters(texts):
    row = next(load(one_sheet([[*texts, "末"]])).worksheets[0].iter_rows(values_only=True))
    assert row == (*(FORBIDDEN.sub("", text) if text else None for text in texts), "末")


def test_values_excel_cannot_hold_are_refused():
    for number in (float("nan"), float("-inf"), Decimal("NaN")):
        with pytest.raises(ValueError, match="(?i)nan|inf"):
            one_sheet([(number,)])
    with pytest.raises(TypeError):
        one_sheet([(object(),)])


def test_a_str_subclass_is_text_and_neutralised_too():
    class Name(str):
        pass

    cell = load(one_sheet([(Name("=1+1"),)])).worksheets[0]["A1"]
    assert cell.value == "=1+1" and cell.data_type == "s" and cell.quotePrefix


def test_excel_limits_hold_text_cut_rows_refused():
    row = next(load(one_sheet([("长" * 40_000,)])).worksheets[0].iter_rows(values_only=True))
    assert row == ("长" * MAX_TEXT,)  # Excel refuses a file with a longer cell

    def too_many_rows(book):
        with book.sheet("清单") as sheet:
            sheet.skip(MAX_ROWS)
            sheet.write_row(("one too many",))

    with pytest.raises(ValueError, match="rows"):
        book_bytes(too_many_rows)


def test_sheets_are_written_in_the_declared_order_with_names_excel_accepts():
    with pytest.raises(ValueError):
        Workbook(io.BytesIO(), ["a/b"])
    with pytest.raises(ValueError):
        Workbook(io.BytesIO(), ["x" * 32])
    with pytest.raises(ValueError):
        Workbook(io.BytesIO(), ["清单", "清单"])
    book = Workbook(io.BytesIO(), ["一", "二"])
    with pytest.raises(ValueError), book.sheet("二"):
        pass
    book.abandon()
    # A sheet never written is there, empty.
    assert load(book_bytes(lambda book: None, ("一", "二"))).sheetnames == ["一", "二"]


def test_column_letters():
    assert [column_letter(n) for n in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


def test_memory_stays_flat_as_rows_grow(tmp_path):
    def peak(rows: int) -> int:
        tracemalloc.start()
        with Workbook(tmp_path / f"{rows}.xlsx", ["清单"]) as book, book.sheet("清单") as sheet:
            for number in range(rows):
                sheet.write_row((f"LP2026-{number:06d}", f"职工{number}", 8000.0,
                                 date(2026, 11, 2)))
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    small, large = peak(1_000), peak(12_000)
    assert large < small * 2 + 1_500_000, (small, large)

"""Uploaded workbooks (the city office's decisions sheet, a unit's roster), opened safely:
the zip's unpacked size is checked first, openpyxl reads in read-only mode, and whatever a
broken or hostile file raises is a 422 naming `file`, never a 500."""

from __future__ import annotations

import re
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar
from xml.etree.ElementTree import ParseError

import openpyxl
from openpyxl.utils import column_index_from_string
from openpyxl.utils.exceptions import InvalidFileException

from workflows.errors import FieldError, RuleFailed

MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # an upload may not unpack into gigabytes
# What openpyxl and zipfile raise on files that are not, or not quite, workbooks.
UNREADABLE = (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError,
              OSError, ParseError, EOFError, IndexError, AttributeError,
              zlib.error,  # a corrupt deflate stream
              RuntimeError)  # zipfile: encrypted, or a version or method it cannot read

T = TypeVar("T")


def refuse_file(code: str, message: str) -> RuleFailed:
    """A refusal of the whole file (field `file`)."""
    return RuleFailed(message, [FieldError("file", code, message)])


# A merged range in a sheet's XML: <mergeCell ref="D3:D5"/>.
_MERGE = re.compile(rb'<mergeCell\s+ref="([A-Z]{1,3})(\d+):([A-Z]{1,3})(\d+)"')


@dataclass(frozen=True)
class Merged:
    """A merged range of cells, 1-based and inclusive, as Excel numbers rows and columns."""

    first_row: int
    last_row: int
    first_col: int
    last_col: int


def merged_ranges(book: Any, sheet: Any, limit: int) -> list[Merged]:
    """The sheet's merged ranges: openpyxl's read-only mode reads cells, not merges, so they
    come from the sheet's XML. [] when the workbook does not say (or says it oddly); a sheet
    with more than `limit` is refused: a few bytes each, they could be millions."""
    try:
        xml = book._archive.read(sheet._worksheet_path)  # read-only mode keeps both
    except (AttributeError, KeyError, OSError, ValueError):
        return []
    found: list[Merged] = []
    for match in _MERGE.finditer(xml):
        if len(found) == limit:
            raise refuse_file("file_too_large", f"The sheet has more than {limit} merged ranges.")
        left, top, right, bottom = match.groups()
        found.append(Merged(int(top), int(bottom), column_index_from_string(left.decode()),
                            column_index_from_string(right.decode())))
    return found


def read_workbook(data: bytes, read: Callable[[Any], T]) -> T:
    """`read(book)` on the .xlsx in `data`; a file that cannot be read is refused."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise refuse_file("file_too_large", "The workbook unpacks to more than 64 MiB.")
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions other writers leave; the data reads.
            warnings.simplefilter("ignore", UserWarning)
            book = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
            try:
                return read(book)
            finally:
                book.close()
    except UNREADABLE:
        raise refuse_file("unreadable_file", "The file is not a readable .xlsx workbook.") \
            from None

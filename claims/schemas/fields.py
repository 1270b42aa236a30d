"""Fields every schema shares: money, ID numbers, bounded text, dates; each error has a code."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

import marshmallow as ma
from flask import has_app_context
from marshmallow import ValidationError

from claims.idcard import IdNumberError, holds_id_number, parse_id_number
from claims.money import MoneyError, format_fen, parse_yuan

TEXT_MAX = 200

# Error messages are constants, so the JSON error can carry a machine code for each.
_CODES: dict[str, str] = {
    "Missing data for required field.": "required",
    "Unknown field.": "unknown_field",
    "Field may not be null.": "null",
    "Not a valid string.": "invalid_type",
    "Not a valid integer.": "invalid_type",
    "Not a valid boolean.": "invalid_type",
    "Not a valid date.": "invalid_date",
    "Not a valid list.": "invalid_type",
    "Invalid input type.": "invalid_type",
    "Invalid value.": "invalid",
}


def coded(code: str, message: str) -> ValidationError:
    """A ValidationError whose message maps back to `code` in the JSON answer."""
    _CODES[message] = code
    return ValidationError(message)


def error_code_for(message: str) -> str:
    if message in _CODES:
        return _CODES[message]
    if message.startswith("Must be one of"):
        return "invalid_choice"
    if message.startswith(("Must be greater", "Must be less", "Must be at")):
        return "out_of_range"
    if message.startswith("Longer than maximum length"):
        return "too_long"
    if message.startswith("Shorter than minimum length"):
        return "too_short"
    return "invalid"


class Money(ma.fields.Field):
    """Yuan as a two-place string out, fen in storage; in: a string or number, never rounded."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return format_fen(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_yuan(value)
        except MoneyError as error:
            raise coded(error.code, error.message) from None


class Text(ma.fields.String):
    """Free text: at most 200 characters (SPEC §7)."""

    def __init__(self, *args: Any, max_length: int = TEXT_MAX, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = self.normalise(super()._deserialize(value, attr, data, **kwargs))
        if len(text) > self.max_length:
            raise coded("too_long", f"At most {self.max_length} characters.")
        if "\x00" in text:  # PostgreSQL text cannot hold it; no person types it
            raise coded("invalid", "Must not contain NUL characters.")
        if holds_id_number(text):
            # Free text goes to the unit union's notices, the status page and every claim view
            # unmasked; an ID number belongs in its own field, which is kept masked.
            raise coded("id_number_in_text", "Do not write an ID number here: it would be "
                                             "shown unmasked. Name the document instead.")
        return text

    def normalise(self, text: str) -> str:
        """Free text is kept verbatim (SPEC §5: a claim shows its text as logged)."""
        return text


# Han characters (the basic block, extension A, compatibility ideographs and the supplementary
# planes' extensions): a space between two of them is padding, never part of a name.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_PADDING = re.compile(f"(?<=[{_HAN}])\\s+(?=[{_HAN}])")
_SPACES = re.compile(r"\s+")
# The dot between the parts of a transcribed name (阿依古丽·买买提) as keyboards and rosters
# write it: middle dot, bullet, katakana and half-width katakana middle dot, hyphenation
# point, bullet and dot operators, full-width full stop; all mean the one middle dot.
NAME_DOT = "\u00b7"
_DOTS = "\u2022\u30fb\u2027\u2219\uff65\u22c5\uff0e"
_NAME_DOTS = re.compile(f"\\s*[{NAME_DOT}{_DOTS}]\\s*|(?<=[{_HAN}])\\s*\\.\\s*(?=[{_HAN}])")


def normal_name(text: str) -> str:
    """A name as one compares it: `张　三 ` -> `张三`; `Aynur  Tursun` -> `Aynur Tursun`;
    `阿依古丽・买买提` -> `阿依古丽·买买提`."""
    # Rosters pad two-character names with an ideographic space to line them up with
    # three-character ones; the worker then types 张三 at the status check. A transcribed
    # name's dot is typed however the phone offers it, an ASCII full stop between Han too.
    text = _NAME_DOTS.sub(NAME_DOT, text)
    return _SPACES.sub(" ", _PADDING.sub("", text)).strip()


class PersonName(Text):
    """A person's name: padding between Han characters dropped, other spaces single."""

    def normalise(self, text: str) -> str:
        return normal_name(text)


class Identifier(Text):
    """A number or reference that must be unique (receipt, remittance, claim, batch): the
    spaces around it are not part of it, so "RC-1 " is the receipt RC-1 already used."""

    def normalise(self, text: str) -> str:
        text = text.strip()
        # A code travels into file names, headers and spreadsheets: a line break or tab in
        # one is a paste gone wrong, and would break them.
        if any(unicodedata.category(c) == "Cc" for c in text):
            raise coded("invalid", "Must not contain control characters (line breaks, tabs).")
        return text


class UnitCode(Identifier):
    """A unit code, stored and compared upper-cased: a clerk typing u001 means U001."""

    def normalise(self, text: str) -> str:
        return super().normalise(text).upper()


def _today() -> date | None:
    """Today in the configured time zone, when a request or job is under way."""
    if not has_app_context():
        return None
    from claims.runtime import get_runtime

    return get_runtime().today()


class IdNumber(ma.fields.String):
    """An 18-character resident ID, check digit verified; upper-cased."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_id_number(text, today=_today()).number
        except IdNumberError as error:
            raise coded(error.code, error.message) from None


class StrictInteger(ma.fields.Integer):
    """An integer that refuses 1.5, "1" and true."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("strict", True)
        super().__init__(*args, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or isinstance(value, str):
            raise coded("invalid_type", "Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(ma.fields.Boolean):
    """true or false only, not "yes" or 1."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise coded("invalid_type", "Not a valid boolean.")
        return value


class Shaped(ma.fields.Nested):
    """Answers only: objects the view built already in the nested schema's shape (strings and
    nulls), copied key by key rather than dumped through the schema again; the schema still
    documents them in the OpenAPI document."""

    def _serialize(self, nested_obj: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if nested_obj is None:
            return None
        keys = tuple(self.schema.fields)
        if self.many:
            return [{key: item.get(key) for key in keys} for item in nested_obj]
        return {key: nested_obj.get(key) for key in keys}

"""Resident ID numbers (GB 11643): check digit, birth date, sex, masking."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")  # \d would also take full-width digits


class IdNumberError(ValueError):
    """An ID number that is not a valid 18-character resident ID; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IdNumber:
    number: str
    birth_date: date
    sex: str  # "M" or "F"

    @property
    def masked(self) -> str:
        return mask(self.number)


def check_digit(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalise_id_number(value: str) -> str:
    """The characters of an ID number as typed or pasted: ASCII, upper-case, nothing invisible."""
    # NFKC turns full-width digits and Ｘ (a Chinese input method's) into ASCII, so one person
    # keeps one number; pasting brings zero-width and direction marks (category Cf); people
    # type the number in groups, with ASCII or ideographic spaces (NFKC makes those ASCII).
    text = unicodedata.normalize("NFKC", value)
    return "".join(c for c in text
                   if not c.isspace() and unicodedata.category(c) != "Cf").upper()


def parse_id_number(value: str, *, today: date | None = None) -> IdNumber:
    """Validate an 18-character resident ID and derive birth date and sex from it."""
    if not isinstance(value, str):
        raise IdNumberError("invalid_id_number", "The ID number must be text.")
    number = normalise_id_number(value)
    if len(number) != 18:
        raise IdNumberError("invalid_id_number", "The ID number must have 18 characters.")
    if not _SHAPE.match(number):
        raise IdNumberError(
            "invalid_id_number", "The ID number must be 17 digits and a digit or X."
        )
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError(
            "invalid_birth_date", "The birth date in the ID number is not a date."
        ) from None
    if born.year < 1900 or (today is not None and born > today):
        raise IdNumberError("invalid_birth_date", "The birth date in the ID number is impossible.")
    if check_digit(number[:17]) != number[17]:
        raise IdNumberError("invalid_check_digit", "The ID number's check digit is wrong.")
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return IdNumber(number=number, birth_date=born, sex=sex)


def mask(number: str | None) -> str | None:
    """First 6 and last 4 characters around 8 asterisks; the only form shown in lists and logs."""
    if number is None:
        return None
    if len(number) < 10:
        return "*" * len(number)
    return f"{number[:6]}{'*' * 8}{number[-4:]}"


# An ID number as people write one inside other text: ASCII or full-width digits, in groups
# with spaces or hyphens (330183 19740119 9001). Text holding one is refused (free text is
# shown to unit unions and on the status page) and log lines mask it.
_DIGIT = "0-9\uff10-\uff19"
_SEPARATOR = "[ \u3000\uff0d-]?"
_WRITTEN = re.compile(f"(?<![{_DIGIT}])[1-9\uff11-\uff19](?:{_SEPARATOR}[{_DIGIT}]){{16}}"
                      f"{_SEPARATOR}[{_DIGIT}Xx\uff38\uff58](?![{_DIGIT}])")


def written_id_numbers(text: str) -> list[tuple[re.Match[str], str]]:
    """Every 18-character run in `text` shaped like an ID number, with its characters as
    normalise_id_number reads them; whether valid or not (logs mask them all)."""
    found = []
    for match in _WRITTEN.finditer(text):
        number = normalise_id_number(match.group()).replace("-", "")
        if _SHAPE.match(number):
            found.append((match, number))
    return found


def holds_id_number(text: str) -> bool:
    """Whether `text` holds a valid ID number (check digit and birth date), however written."""
    for _match, number in written_id_numbers(text):
        try:
            parse_id_number(number)
        except IdNumberError:
            continue
        return True
    return False


def make_id_number(area: str, born: date, sequence: int, sex: str) -> str:
    """Build a valid ID number (demo data and tests): sequence 0-99 plus the sex digit."""
    sex_digit = (sequence * 2 + (1 if sex == "M" else 0)) % 10
    if (sex_digit % 2 == 1) != (sex == "M"):
        sex_digit = (sex_digit + 1) % 10
    body = f"{area}{born:%Y%m%d}{sequence % 100:02d}{sex_digit}"
    return body + check_digit(body)


def age_on(born: date, day: date) -> int:
    """Whole years of age on `day`."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

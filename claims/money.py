"""Money: integer fen in storage, two-place decimal strings in JSON; the one converter."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

MAX_FEN = 99_999_999_99  # 99,999,999.99 yuan
# An amount as text: ASCII digits, an optional point with digits, an optional leading minus
# (refused as negative below). Decimal() alone would also take "1_000", full-width "１００",
# Arabic-Indic "٣.٥٠", exponents and "NaN": none of them is how an amount is written.
AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class MoneyError(ValueError):
    """An amount that cannot be taken as written; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_yuan(value: object) -> int:
    """Parse an amount in yuan as written ("1500.5", 1500, Decimal) into fen, never rounding."""
    if isinstance(value, bool) or value is None:
        raise MoneyError("invalid_amount", "Not an amount.")
    if isinstance(value, float):
        # JSON numbers reach us as Decimal (see claims.app); a float here lost its spelling.
        value = Decimal(repr(value))
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        if AMOUNT_TEXT.fullmatch(value) is None:
            raise MoneyError("invalid_amount",
                             "Not an amount: write digits 0-9 with at most one point, as 1500.00.")
        amount = Decimal(value)
    else:
        raise MoneyError("invalid_amount", "Not an amount.")
    if not amount.is_finite():
        raise MoneyError("invalid_amount", "The amount must be a finite number.")
    if amount < 0:
        raise MoneyError("negative_amount", "The amount must not be negative.")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -2:
        raise MoneyError("too_many_decimals", "At most two decimal places.")
    fen = int(amount * 100)
    if fen > MAX_FEN:
        raise MoneyError("amount_too_large", "The amount must not exceed 99999999.99.")
    return fen


def format_fen(fen: int | None, *, grouped: bool = False) -> str | None:
    """Fen as a two-place decimal string in yuan: 150000 -> "1500.00"; `grouped` for pages
    to read, never for what a program reads back: 30823767 -> "308,237.67"."""
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}" if grouped else f"{sign}{whole}.{cents:02d}"


def yuan_to_fen(value: str | int | Decimal) -> int:
    """Configuration amounts (trusted TOML) to fen; same rules as parse_yuan."""
    return parse_yuan(value if not isinstance(value, int) else Decimal(value))


def round_fen(amount: Decimal) -> int:
    """Round an exact fen amount half up to whole fen: the one rounding an estimate gets."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


__all__ = ["MAX_FEN", "MoneyError", "format_fen", "parse_yuan", "round_fen", "yuan_to_fen"]


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_BIG_UNITS = ("", "万", "亿")


def _four_digits(n: int) -> str:
    out, zero = "", False
    for position in range(3, -1, -1):
        digit = n // 10**position % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + _SMALL_UNITS[position]
    return out


def chinese_capital(fen: int) -> str:
    """An amount in Chinese capital numerals, as receipts write it: 125000 -> 壹仟贰佰伍拾元整."""
    if fen < 0:
        raise ValueError("negative amount")
    yuan, cents = divmod(fen, 100)
    words = ""
    groups: list[int] = []
    while yuan:
        groups.append(yuan % 10000)
        yuan //= 10000
    need_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            need_zero = bool(words)
            continue
        if words and (need_zero or group < 1000):
            words += "零"
        words += _four_digits(group) + _BIG_UNITS[index]
        need_zero = False
    words = (words or "零") + "元"
    jiao, fen_digit = divmod(cents, 10)
    if not cents:
        return words + "整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif fen_digit and words != "零元":
        words += "零"
    if fen_digit:
        words += _DIGITS[fen_digit] + "分"
    return words.removeprefix("零元") if words.startswith("零元") and len(words) > 2 else words

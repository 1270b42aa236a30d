"""Money: integer fen in storage, two-place decimal strings in JSON; the one converter."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_FEN = 99_999_999_99  # 99,999,999.99 yuan


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
        text = value.strip()
        if not text or text != value:
            raise MoneyError("invalid_amount", "Not an amount.")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise MoneyError("invalid_amount", "Not an amount.") from None
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


def format_fen(fen: int | None) -> str | None:
    """Fen as a two-place decimal string in yuan: 150000 -> "1500.00"."""
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan_to_fen(value: str | int | Decimal) -> int:
    """Configuration amounts (trusted TOML) to fen; same rules as parse_yuan."""
    return parse_yuan(value if not isinstance(value, int) else Decimal(value))


def round_fen(amount: Decimal) -> int:
    """Round an exact fen amount half up to whole fen: the one rounding an estimate gets."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


__all__ = ["MAX_FEN", "MoneyError", "format_fen", "parse_yuan", "round_fen", "yuan_to_fen"]

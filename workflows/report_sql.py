"""What the reports share: the year's window, dialect-neutral date arithmetic, percentiles.

SQLite has no time zones and no percentile function; PostgreSQL has both but spells date
arithmetic its own way. The reports are written once against these helpers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from claims.models import Claim, Enrolment

LOCAL_DATE_FUNCTION = "mutualaid_local_date"


@dataclass(frozen=True)
class Year:
    """A calendar year in the configured time zone, as dates and as UTC instants."""

    year: int
    tz: ZoneInfo

    @property
    def first(self) -> date:
        return date(self.year, 1, 1)

    @property
    def last(self) -> date:
        return date(self.year, 12, 31)

    @property
    def starts_at(self) -> datetime:
        return datetime(self.year, 1, 1, tzinfo=self.tz).astimezone(UTC)

    @property
    def ends_at(self) -> datetime:
        """The first instant of the next year (exclusive)."""
        return datetime(self.year + 1, 1, 1, tzinfo=self.tz).astimezone(UTC)

    def logged_in(self) -> Any:
        """Claims of the year: logged (in the county's calendar) during it."""
        return Claim.logged_on.between(self.first, self.last)  # type: ignore[attr-defined]

    def covered_in(self) -> Any:
        """Enrolments covering at least one day of the year."""
        return sa.and_(Enrolment.start_date <= self.last, Enrolment.end_date >= self.first)

    def term_year_begins_in(self, dialect: str) -> Any:
        """Enrolments with a term-year (the start date, or an anniversary of it before the end)
        beginning in the year: one fee a term-year, charged once, in the year it begins. The
        anniversary in this year is year*10000 + the start's month and day, compared with the
        end as yyyymmdd (29 February's falls after 28 February, as its term-year does)."""
        anniversary = self.year * 10000 + day_number(Enrolment.start_date, dialect) % 10000
        return sa.and_(Enrolment.start_date <= self.last,
                       anniversary <= day_number(Enrolment.end_date, dialect))


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def prepare(session: Session, tz: ZoneInfo) -> None:
    """Give SQLite the local-date function the turnaround report needs (PostgreSQL has its own)."""
    if dialect_of(session) != "sqlite":
        return

    def local_date(value: str | None) -> str | None:
        if value is None:
            return None
        stamp = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return stamp.astimezone(tz).date().isoformat()

    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    raw.create_function(LOCAL_DATE_FUNCTION, 1, local_date, deterministic=True)


def local_date(column: Any, dialect: str, tz: ZoneInfo) -> Any:
    """A UTC timestamp column as the date it was in the configured time zone."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(tz.key, column), sa.Date)
    return getattr(sa.func, LOCAL_DATE_FUNCTION)(column)


def day_number(column: Any, dialect: str) -> Any:
    """A date column as the integer yyyymmdd."""
    if dialect == "postgresql":
        return sa.cast(sa.func.to_char(column, "YYYYMMDD"), sa.Integer)
    return sa.cast(sa.func.strftime("%Y%m%d", column), sa.Integer)


def day_diff(later: Any, earlier: Any, dialect: str) -> Any:
    """Whole days between two dates (later - earlier)."""
    if dialect == "postgresql":
        return sa.type_coerce(later - earlier, sa.Integer)
    return sa.cast(sa.func.julianday(later) - sa.func.julianday(earlier), sa.Integer)


def empty_json_array(column: Any, key: str, dialect: str) -> Any:
    """True where the JSON object's `key` is an empty array."""
    if dialect == "postgresql":
        return sa.func.jsonb_array_length(column.op("->")(key)) == 0
    return sa.func.json_array_length(column, f"$.{key}") == 0


def as_date(value: Any) -> date:
    """SQLite answers dates computed in SQL as text."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def percentile(counts: Mapping[int, int], share: float) -> float | None:
    """The percentile of day-counts given as {days: how many}, interpolated linearly between
    the two nearest ranks (numpy's default; the median of 1, 2, 3, 4 is 2.5)."""
    total = sum(counts.values())
    if total == 0:
        return None
    position = (total - 1) * share
    below, above = math.floor(position), math.ceil(position)
    values: dict[int, float] = {}
    seen = 0
    for days in sorted(counts):
        for rank in (below, above):
            if seen <= rank < seen + counts[days]:
                values[rank] = days
        seen += counts[days]
    return round(values[below] + (values[above] - values[below]) * (position - below), 1)


def mean(counts: Mapping[int, int]) -> float | None:
    total = sum(counts.values())
    if total == 0:
        return None
    return round(sum(days * n for days, n in counts.items()) / total, 1)


def ratio(part: int, whole: int) -> float | None:
    """part / whole to four places (a rate, not money); None when there is no whole."""
    return round(part / whole, 4) if whole else None

"""What a roster import reads and reports: the rows as parsed at the edge
(claims/schemas/roster.py), and the report, or the refusal, workflows/roster.py answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from workflows.errors import FieldError, RuleFailed


@dataclass(frozen=True)
class RowProblem:
    """Why one row cannot be imported: its row number, the column at fault, a code, a reason."""

    row: int
    key: str  # the canonical field: name, id_number, phone, unit_code, product_code, ...
    code: str
    message: str


@dataclass(frozen=True)
class RosterRow:
    """One data row, its fields already parsed (None where the cell was empty or bad)."""

    number: int  # the spreadsheet row (or CSV line) as the clerk sees it
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    unit_code: str | None = None
    product_code: str | None = None  # a product code or its name, as written
    shares: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    present: frozenset[str] = frozenset()  # the keys whose cells were filled in
    problems: tuple[RowProblem, ...] = ()  # found while reading the row's fields
    warnings: tuple[str, ...] = ()  # worth a look but not a refusal (an ID ending in 000)


@dataclass(frozen=True)
class Roster:
    """A file's rows and the header each field was found under (errors name it)."""

    rows: list[RosterRow]
    labels: Mapping[str, str]
    source: str = ""  # the file name, for the import record

    def label(self, key: str) -> str:
        return self.labels.get(key, key)


@dataclass
class RosterReport:
    """What an import did (or, on a dry run or a refusal, would do)."""

    rows: int = 0
    members_created: int = 0
    members_updated: int = 0
    members_unchanged: int = 0
    enrolments_created: int = 0
    enrolments_unchanged: int = 0
    dry_run: bool = False
    applied: bool = False
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Unit staff's rows whose ID number another unit's member holds: counted, never named
    # (which rows would tell, for each ID number tried, whether it is registered).
    withheld_rows: set[int] = field(default_factory=set)

    @property
    def withheld(self) -> int:
        return len(self.withheld_rows)

    @property
    def invalid_rows(self) -> int:
        return len({p.row for p in self.problems} | self.withheld_rows)

    def errors(self, roster: Roster) -> list[dict[str, Any]]:
        """Each problem as the API's error item, named rows.<row>.<header>, plus its row; the
        withheld rows as one problem of the file."""
        named = [{"row": p.row, "field": f"rows.{p.row}.{roster.label(p.key)}", "code": p.code,
                  "message": p.message} for p in self.problems]
        if not self.withheld:
            return named
        return named + [{"row": None, "field": "file", "code": "other_unit_members",
                         "message": f"{self.withheld} row(s) name an ID number registered with "
                                    "another unit; the county office can move those members "
                                    "(which rows is not said)."}]

    def as_dict(self, roster: Roster) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "applied": self.applied, "rows": self.rows,
                "valid_rows": self.rows - self.invalid_rows, "invalid_rows": self.invalid_rows,
                "members_created": self.members_created,
                "members_updated": self.members_updated,
                "members_unchanged": self.members_unchanged,
                "enrolments_created": self.enrolments_created,
                "enrolments_unchanged": self.enrolments_unchanged,
                "other_unit_rows": self.withheld,
                "warnings": self.warnings, "errors": self.errors(roster)}


class RosterRefused(RuleFailed):
    """At least one row is invalid: nothing is applied; every problem is listed."""

    code = "roster_invalid"

    def __init__(self, report: RosterReport, roster: Roster) -> None:
        rows = report.invalid_rows
        super().__init__(
            f"{rows} of {report.rows} rows cannot be imported; nothing was applied.",
            [FieldError(e["field"], e["code"], e["message"]) for e in report.errors(roster)])
        self.report = report.as_dict(roster)

    def extra(self) -> dict[str, object]:
        return {"report": self.report}


def refuse_file(code: str, message: str) -> RuleFailed:
    """A whole-file problem (unreadable, no header, too many rows), named `file`."""
    return RuleFailed(message, [FieldError("file", code, message)])

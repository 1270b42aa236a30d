"""Holiday visits (逢年过节上门慰问, SPEC §1 step 7): before Spring Festival and Mid-Autumn, the
members to visit, by unit, with the contacts to arrange it.

Who is on the list: members with a claim whose incident lies in the year before the festival,
not withdrawn or rejected, that is either a serious illness (a product of kind `lump_sum` in
the catalogue: critical illness, female workers' special illness) or large (approved amount,
or else estimate, at or above the on-site threshold, 5,000 yuan by default). Festival dates
come from the lunar calendar (lunardate), never from a table kept by hand.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from io import BytesIO, StringIO
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from lunardate import LunarDate
from sqlmodel import Session

from claims.db import session_scope
from claims.idcard import mask
from claims.models import Claim, Member, Unit
from claims.money import format_fen
from claims.runtime import Runtime
from workflows.xlsx_stream import Workbook, csv_safe

# festival -> (Chinese name, lunar month, lunar day)
FESTIVALS: dict[str, tuple[str, int, int]] = {
    "spring": ("春节", 1, 1),
    "mid_autumn": ("中秋节", 8, 15),
}
PREPARE_DAYS_AHEAD = 14  # the job prepares the list two weeks before the festival
LOOKBACK_DAYS = 365  # "in the past year": incidents within a year before the festival
SERIOUS_KIND = "lump_sum"  # the catalogue's lump-sum products pay on a serious diagnosis
NOT_COUNTED_STATES = ("withdrawn", "rejected")
_deaths = sa.table("claim", sa.column("member_id"), sa.column("death"),
                   sa.column("state")).alias("deaths")
FIRST_YEAR, LAST_YEAR = 1901, 2099  # what the lunar calendar library covers for both festivals
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("unit_code", "单位代码"),
    ("unit_name", "单位名称"),
    ("union_contact", "工会联系人"),
    ("union_phone", "工会电话"),
    ("member_name", "职工姓名"),
    ("id_number_masked", "身份证号"),
    ("sex", "性别"),
    ("member_phone", "职工手机"),
    ("reasons", "慰问原因"),
    ("claim_nos", "理赔编号"),
    ("largest_amount", "最大金额（元）"),
    ("latest_incident", "最近出险日期"),
)


def festival_date(festival: str, year: int) -> date:
    """The Gregorian date of the festival in that (lunar) year: both fall in the same year."""
    _name, month, day = FESTIVALS[festival]
    return LunarDate(year, month, day).to_solar_date()


def next_festival(today: date) -> tuple[str, int, date]:
    """The first festival on or after today: (festival, year, date)."""
    upcoming = [(festival_date(f, y), f, y) for y in (today.year, today.year + 1)
                for f in FESTIVALS]
    day, festival, year = min(item for item in upcoming if item[0] >= today)
    return festival, year, day


def next_occurrence(festival: str, today: date) -> tuple[int, date]:
    """This year's festival if it has not passed, else next year's."""
    for year in (today.year, today.year + 1):
        day = festival_date(festival, year)
        if day >= today:
            return year, day
    raise AssertionError("a festival comes every year")


def chosen_festival(today: date, festival: str | None = None,
                    year: int | None = None) -> tuple[str, int, date]:
    """(festival, year, date) asked for: that festival in that year, or its next occurrence
    when no year is given, or the next festival of either kind when none is named."""
    if festival is None:
        return next_festival(today)
    if year is not None:
        return festival, year, festival_date(festival, year)
    next_year, day = next_occurrence(festival, today)
    return festival, next_year, day


@dataclass
class VisitRow:
    """One member to visit, with their unit's union contact and why."""

    unit_code: str
    unit_name: str
    union_contact: str | None
    union_phone: str | None
    member_id: int
    member_name: str
    id_number_masked: str
    sex: str
    member_phone: str | None
    reasons: list[str] = field(default_factory=list)
    claim_nos: list[str] = field(default_factory=list)
    largest_amount: int = 0  # fen
    latest_incident: date | None = None

    def cells(self) -> dict[str, Any]:
        """The row as the export writes it: text, amounts in yuan."""
        return {"unit_code": self.unit_code, "unit_name": self.unit_name,
                "union_contact": self.union_contact or "", "union_phone": self.union_phone or "",
                "member_name": self.member_name, "id_number_masked": self.id_number_masked,
                "sex": "女" if self.sex == "F" else "男", "member_phone": self.member_phone or "",
                "reasons": "、".join(self.reasons), "claim_nos": "、".join(self.claim_nos),
                "largest_amount": format_fen(self.largest_amount),
                "latest_incident": self.latest_incident.isoformat()
                if self.latest_incident else ""}


def visit_list(session: Session, runtime: Runtime, day: date, *,
               unit_id: int | None = None) -> list[VisitRow]:
    """Members to visit before the festival on `day`, by unit code then name."""
    threshold = runtime.settings.onsite_threshold_fen
    catalogue = runtime.catalogue
    serious = sorted(code for code, p in catalogue.products.items() if p.kind == SERIOUS_KIND)
    amount = sa.func.coalesce(Claim.approved_amount, Claim.estimate)
    # A member with a death claim (not withdrawn: one logged by mistake) is not visited.
    deceased = sa.exists().where(_deaths.c.member_id == Member.id, _deaths.c.death.is_(True),
                                 _deaths.c.state != "withdrawn")
    query = (
        sa.select(Claim.claim_no, Claim.product_code, Claim.incident_date, amount,
                  Member.id, Member.name, Member.id_number, Member.sex, Member.phone,
                  Unit.code, Unit.name, Unit.union_contact, Unit.union_phone)
        .join(Member, Member.id == Claim.member_id)
        .join(Unit, Unit.id == Member.unit_id)  # the unit the member is in now: who visits
        .where(Claim.incident_date > day - timedelta(days=LOOKBACK_DAYS),
               Claim.incident_date <= day,
               Claim.state.not_in(NOT_COUNTED_STATES),  # type: ignore[attr-defined]
               sa.or_(Claim.product_code.in_(serious),  # type: ignore[attr-defined]
                      amount >= threshold),
               ~deceased)
        .order_by(Unit.code, Member.name, Member.id, Claim.incident_date, Claim.claim_no)
    )
    if unit_id is not None:
        query = query.where(Member.unit_id == unit_id)
    large = f"大额理赔（{format_fen(threshold)}元及以上）"
    rows: dict[int, VisitRow] = {}
    for (claim_no, product_code, incident, claimed, member_id, name, id_number, sex, phone,
         unit_code, unit_name, contact, union_phone) in session.execute(query):
        row = rows.get(member_id)
        if row is None:
            row = rows[member_id] = VisitRow(
                unit_code=unit_code, unit_name=unit_name, union_contact=contact,
                union_phone=union_phone, member_id=member_id, member_name=name,
                id_number_masked=mask(id_number) or "", sex=sex, member_phone=phone)
        reasons = []
        if product_code in serious:
            product = catalogue.get(product_code)
            reasons.append(product.name if product else product_code)
        if claimed >= threshold:
            reasons.append(large)
        row.reasons.extend(r for r in reasons if r not in row.reasons)
        row.claim_nos.append(claim_no)
        row.largest_amount = max(row.largest_amount, int(claimed))
        row.latest_incident = max(filter(None, (row.latest_incident, incident)))
    return list(rows.values())


# --- export -----------------------------------------------------------------------------------


def write_xlsx(rows: Iterable[VisitRow], target: str | IO[bytes], title: str) -> None:
    """The list as one worksheet: a title line, the header, a row per member."""
    with Workbook(target, ["慰问名单"]) as book:
        bold = book.style(bold=True)
        widths = [16] * len(EXPORT_COLUMNS)
        with book.sheet("慰问名单", widths=widths, freeze_rows=2) as sheet:
            sheet.write_row([title], bold)
            sheet.write_row([header for _key, header in EXPORT_COLUMNS], bold)
            for row in rows:
                cells = row.cells()
                sheet.write_row([str(cells[key]) for key, _header in EXPORT_COLUMNS])


def xlsx_bytes(rows: Iterable[VisitRow], title: str) -> bytes:
    buffer = BytesIO()
    write_xlsx(rows, buffer, title)
    return buffer.getvalue()


def csv_text(rows: Iterable[VisitRow]) -> str:
    """CSV with a BOM, so Excel in Chinese opens it as UTF-8; no cell is read as a formula
    (names and phones come from unit rosters)."""
    buffer = StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for _key, header in EXPORT_COLUMNS])
    for row in rows:
        cells = row.cells()
        writer.writerow([csv_safe(value) if isinstance(value := cells[key], str) else value
                         for key, _header in EXPORT_COLUMNS])
    return "\ufeff" + buffer.getvalue()


def title_for(festival: str, year: int, day: date) -> str:
    return f"{year}年{FESTIVALS[festival][0]}（{day.isoformat()}）上门慰问名单"


def export_name(festival: str, year: int, extension: str) -> str:
    return f"visits-{year}-{festival}.{extension}"


# --- the scheduled job -----------------------------------------------------------------------


def prepare_visits(runtime: Runtime, today: date | None = None) -> dict[str, Any]:
    """Two weeks before a festival, write its list under instance/visits/, once per festival.
    Runs daily; within 14 days of the festival a missing file is written (a day the scheduler
    missed is caught up), an existing one is left alone."""
    today = today or runtime.today()
    festival, year, day = next_festival(today)
    days_ahead = (day - today).days
    summary: dict[str, Any] = {"festival": festival, "year": year, "date": day.isoformat(),
                               "days_ahead": days_ahead, "prepared": False}
    if days_ahead > PREPARE_DAYS_AHEAD:
        return summary
    folder = Path(runtime.settings.instance_path) / "visits"
    path = folder / export_name(festival, year, "xlsx")
    summary["file"] = f"visits/{path.name}"
    if path.exists():
        return summary | {"already_prepared": True}
    with session_scope(runtime.engine, write=False) as session:
        rows = visit_list(session, runtime, day)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".visits-", suffix=".xlsx")
    os.close(handle)
    try:
        write_xlsx(rows, temporary, title_for(festival, year, day))
        os.replace(temporary, path)  # a crash mid-write never leaves a half file to skip
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return summary | {"prepared": True, "members": len(rows),
                      "units": len({r.unit_code for r in rows})}

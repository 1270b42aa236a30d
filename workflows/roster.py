"""Roster import (名册导入): a unit's member list, checked whole, applied in bulk or not at all.

The file is read at the edge (claims/schemas/roster.py: columns by header, each row's fields
through the same schema as POST /members); here every row is checked against the register
(units, the catalogue's enrolment rules, existing enrolments) and, only when no row fails,
written in bulk in the caller's one transaction. Members are not audited one by one in this
service (POST /members writes no audit row either), so an applied import leaves one
JobRun `roster_import` with its counts and who ran it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from claims.auth import Actor
from claims.idcard import parse_id_number
from claims.models import Enrolment, JobRun, Member, Unit
from claims.registry import enrolment_warnings
from claims.rules import enrolment_problems
from claims.runtime import Runtime
from config.catalogue import Catalogue, Product
from workflows.errors import Conflict, FieldError
from workflows.jobs import runner_name
from workflows.roster_rows import (
    Roster,
    RosterRefused,
    RosterReport,
    RosterRow,
    RowProblem,
    refuse_file,
)

log = logging.getLogger("mutualaid.roster")

IMPORT_JOB = "roster_import"  # the JobRun name an applied import is recorded under
CHUNK = 1000  # rows per IN (...) lookup and per bulk statement
ENROLMENT_KEYS = ("product_code", "shares", "start_date", "end_date")
Progress = Callable[[int], None]
T = TypeVar("T")


# --- the plan: what each valid row does ------------------------------------------------------


@dataclass
class _Plan:
    new_members: list[dict[str, Any]] = field(default_factory=list)
    member_updates: list[dict[str, Any]] = field(default_factory=list)
    # (the row's ID number, product code, shares, start, end)
    new_enrolments: list[tuple[str, str, int, date, date]] = field(default_factory=list)
    touched: set[tuple[int, str]] = field(default_factory=set)  # (unit_id, product) enrolled


@dataclass(frozen=True)
class _Existing:
    id: int
    unit_id: int
    name: str
    phone: str | None


def _chunks(items: list[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _existing_members(session: Session, id_numbers: list[str], *,
                      lock: bool) -> dict[str, _Existing]:
    table = Member.__table__  # type: ignore[attr-defined]
    found: dict[str, _Existing] = {}
    for chunk in _chunks(id_numbers):
        query = sa.select(table.c.id, table.c.unit_id, table.c.name, table.c.phone,
                          table.c.id_number).where(table.c.id_number.in_(chunk))
        if lock:  # an enrolment or claim elsewhere waits until the import commits
            query = query.with_for_update()
        for row in session.execute(query):
            found[row.id_number] = _Existing(row.id, row.unit_id, row.name, row.phone)
    return found


def _existing_enrolments(session: Session, member_ids: list[int]
                         ) -> dict[tuple[int, str], list[tuple[int, date, date]]]:
    table = Enrolment.__table__  # type: ignore[attr-defined]
    found: dict[tuple[int, str], list[tuple[int, date, date]]] = {}
    for chunk in _chunks(member_ids):
        query = sa.select(table.c.member_id, table.c.product_code, table.c.shares,
                          table.c.start_date, table.c.end_date
                          ).where(table.c.member_id.in_(chunk))
        for row in session.execute(query):
            found.setdefault((row.member_id, row.product_code), []).append(
                (row.shares, row.start_date, row.end_date))
    return found


def _product_named(catalogue: Catalogue, written: str) -> Product | None:
    """A product by its code or by its name (a unit's sheet often says 住院医疗互助保障)."""
    product = catalogue.get(written) or catalogue.get(written.lower())
    if product is not None:
        return product
    return next((p for p in catalogue.products.values() if p.name == written), None)


class _Checker:
    """Checks rows against the register and the catalogue, and plans the valid ones."""

    def __init__(self, session: Session, runtime: Runtime, actor: Actor, roster: Roster,
                 *, lock: bool) -> None:
        self.catalogue = runtime.catalogue
        self.actor = actor
        self.units = {code: unit_id for unit_id, code in
                      session.execute(sa.select(Unit.id, Unit.code))}
        numbers = sorted({r.id_number for r in roster.rows if r.id_number})
        self.existing = _existing_members(session, numbers, lock=lock)
        self.enrolments = _existing_enrolments(session, [m.id for m in self.existing.values()])
        self.first_row: dict[str, int] = {}
        self.report = RosterReport(rows=len(roster.rows))
        self.plan = _Plan()
        self.now = datetime.now(UTC)

    def check(self, row: RosterRow) -> None:
        problems = list(row.problems)
        problems.extend(self._duplicate(row))
        unit_id, unit_problems = self._unit(row)
        problems.extend(unit_problems)
        existing = self.existing.get(row.id_number or "")
        withheld = existing is not None and self.actor.is_unit_staff and \
            existing.unit_id != self.actor.unit_id
        # Another unit's member is checked as a new one would be (no overlap with their
        # enrolments, no row of its own among the problems): the answer must not tell.
        enrolment, enrolment_problems_ = self._enrolment(row, None if withheld else existing)
        problems.extend(enrolment_problems_)
        if withheld:
            self.report.withheld_rows.add(row.number)
        if problems or withheld:
            self.report.problems.extend(problems)
            return
        assert row.id_number is not None and row.name is not None and unit_id is not None
        self._plan_member(row, existing, unit_id)
        if enrolment is None:
            return
        product, shares, start, end = enrolment
        if existing is not None and self._same_enrolment(existing.id, product.code, shares,
                                                         start, end):
            self.report.enrolments_unchanged += 1
            return
        self.plan.new_enrolments.append((row.id_number, product.code, shares, start, end))
        self.plan.touched.add((unit_id, product.code))
        self.report.enrolments_created += 1

    def _duplicate(self, row: RosterRow) -> list[RowProblem]:
        if row.id_number is None:
            return []
        first = self.first_row.setdefault(row.id_number, row.number)
        if first == row.number:
            return []
        return [RowProblem(row.number, "id_number", "duplicate_in_file",
                           f"This ID number is also on row {first}.")]

    def _unit(self, row: RosterRow) -> tuple[int | None, list[RowProblem]]:
        if row.unit_code is None:
            return None, []  # the field check has said so already
        unit_id = self.units.get(row.unit_code)
        if unit_id is None:
            return None, [RowProblem(row.number, "unit_code", "unknown_unit",
                                     "No unit has this code.")]
        if self.actor.is_unit_staff and unit_id != self.actor.unit_id:
            return None, [RowProblem(row.number, "unit_code", "other_unit",
                                     "You may import members of your own unit only.")]
        return unit_id, []

    def _enrolment(self, row: RosterRow, existing: _Existing | None
                   ) -> tuple[tuple[Product, int, date, date] | None, list[RowProblem]]:
        """The row's enrolment, checked by the catalogue's rules (claims.rules), if it has one."""
        given = row.present & set(ENROLMENT_KEYS)
        if not given:
            return None, []
        if "product_code" not in given:
            return None, [RowProblem(row.number, "product_code", "required",
                                     "Name the product to enrol in, or leave the enrolment "
                                     "columns empty.")]
        problems = [RowProblem(row.number, key, "required", "Missing data for required field.")
                    for key in ("start_date", "end_date") if key not in given]
        product = _product_named(self.catalogue, row.product_code or "")
        if product is None:
            problems.append(RowProblem(row.number, "product_code", "unknown_product",
                                       "No product has this code or name."))
        shares = row.shares if "shares" in given else 1  # one share unless the sheet says
        if problems or any(p.key in ENROLMENT_KEYS or p.key == "id_number"
                           for p in row.problems):
            return None, problems
        assert product is not None and shares is not None and row.id_number is not None
        assert row.start_date is not None and row.end_date is not None
        parsed = parse_id_number(row.id_number)
        broken = enrolment_problems(product, birth_date=parsed.birth_date, sex=parsed.sex,
                                    start_date=row.start_date, end_date=row.end_date,
                                    shares=shares)
        problems = [RowProblem(row.number, p.field or "product_code", p.code, p.message)
                    for p in broken]
        if not problems and existing is not None:
            problems = self._overlap(row, existing.id, product.code, shares)
        if problems:
            return None, problems
        return (product, shares, row.start_date, row.end_date), []

    def _overlap(self, row: RosterRow, member_id: int, product_code: str,
                 shares: int) -> list[RowProblem]:
        assert row.start_date is not None and row.end_date is not None
        for held in self.enrolments.get((member_id, product_code), []):
            if held == (shares, row.start_date, row.end_date):
                continue  # the same enrolment again: a re-imported roster changes nothing
            _shares, start, end = held
            if start <= row.end_date and end >= row.start_date:
                return [RowProblem(row.number, "start_date", "overlapping_enrolment",
                                   f"Overlaps the enrolment {start} to {end}.")]
        return []

    def _same_enrolment(self, member_id: int, product_code: str, shares: int, start: date,
                        end: date) -> bool:
        return (shares, start, end) in self.enrolments.get((member_id, product_code), [])

    def _plan_member(self, row: RosterRow, existing: _Existing | None, unit_id: int) -> None:
        assert row.id_number is not None and row.name is not None
        if existing is None:
            parsed = parse_id_number(row.id_number)
            self.plan.new_members.append({
                "unit_id": unit_id, "name": row.name, "id_number": parsed.number,
                "birth_date": parsed.birth_date, "sex": parsed.sex, "phone": row.phone,
                "created_at": self.now})
            self.report.members_created += 1
            return
        phone = row.phone if row.phone is not None else existing.phone  # a blank keeps it
        if (existing.name, existing.phone, existing.unit_id) == (row.name, phone, unit_id):
            self.report.members_unchanged += 1
            return
        self.plan.member_updates.append({"member_id": existing.id, "new_name": row.name,
                                         "new_phone": phone, "new_unit_id": unit_id})
        self.report.members_updated += 1


# --- import ---------------------------------------------------------------------------------


def import_roster(session: Session, runtime: Runtime, actor: Actor, roster: Roster, *,
                  dry_run: bool, progress: Progress | None = None) -> RosterReport:
    """Check every row; refuse the whole file if any fails (RosterRefused), report only on a
    dry run, else write it all set-based in the session's transaction (the caller commits)."""
    if not roster.rows:
        raise refuse_file("empty_file", "The file has no member rows.")
    checker = _Checker(session, runtime, actor, roster, lock=not dry_run)
    for done, row in enumerate(roster.rows, start=1):
        checker.check(row)
        if progress is not None and done % CHUNK == 0:
            progress(CHUNK)
    if progress is not None:
        progress(len(roster.rows) % CHUNK)
    report = checker.report
    report.dry_run = dry_run
    report.warnings = [warning for row in roster.rows for warning in row.warnings]
    if report.problems or report.withheld:
        if dry_run:
            return report
        raise RosterRefused(report, roster)
    if dry_run:
        return report
    try:
        with session.begin_nested():
            _write(session, checker.plan, progress)
    except IntegrityError:
        # Someone registered one of these ID numbers meanwhile: nothing of ours is applied.
        raise Conflict("The register changed while the roster was imported; import it again.",
                       [FieldError("file", "concurrent_change",
                                   "A member in the file was registered meanwhile.")],
                       code="concurrent_change") from None
    report.applied = True
    report.warnings += _warnings(session, runtime, checker.plan.touched)
    _record(session, actor, roster, report)
    return report


def _write(session: Session, plan: _Plan, progress: Progress | None) -> None:
    """Bulk statements: one INSERT per chunk of new members (ids returned), one executemany
    UPDATE for changed members, one INSERT per chunk of enrolments."""
    members = Member.__table__  # type: ignore[attr-defined]
    enrolments = Enrolment.__table__  # type: ignore[attr-defined]
    ids: dict[str, int] = {}
    insert = sa.insert(members).returning(members.c.id, members.c.id_number,
                                          sort_by_parameter_order=True)
    for chunk in _chunks(plan.new_members):
        for member_id, id_number in session.execute(insert, chunk):
            ids[id_number] = member_id
        _advance(progress, len(chunk))
    if plan.member_updates:
        update = (sa.update(members).where(members.c.id == sa.bindparam("member_id"))
                  .values(name=sa.bindparam("new_name"), phone=sa.bindparam("new_phone"),
                          unit_id=sa.bindparam("new_unit_id")))
        session.connection().execute(update, plan.member_updates)
        _advance(progress, len(plan.member_updates))
    if plan.new_enrolments:
        known = _member_ids(session, [e[0] for e in plan.new_enrolments if e[0] not in ids])
        ids |= known
        now = datetime.now(UTC)
        rows = [{"member_id": ids[number], "product_code": code, "shares": shares,
                 "start_date": start, "end_date": end, "created_at": now}
                for number, code, shares, start, end in plan.new_enrolments]
        for chunk in _chunks(rows):
            session.execute(sa.insert(enrolments), chunk)
    session.flush()


def _advance(progress: Progress | None, n: int) -> None:
    if progress is not None and n:
        progress(n)


def _member_ids(session: Session, id_numbers: Iterable[str]) -> dict[str, int]:
    numbers = sorted(set(id_numbers))
    found: dict[str, int] = {}
    for chunk in _chunks(numbers):
        query = sa.select(Member.id_number, Member.id).where(
            Member.id_number.in_(chunk))  # type: ignore[attr-defined]
        found |= {number: member_id for number, member_id in session.execute(query)}
    return found


def _warnings(session: Session, runtime: Runtime, touched: set[tuple[int, str]]) -> list[str]:
    """The catalogue's enrolment-share warnings for each unit and product the file enrolled."""
    today = runtime.today()
    found: list[str] = []
    for unit_id, code in sorted(touched):
        product = runtime.catalogue.get(code)
        if product is None:
            continue
        unit_code = session.scalar(sa.select(Unit.code).where(Unit.id == unit_id))
        found.extend(f"{unit_code}: {w}"
                     for w in enrolment_warnings(session, product, unit_id, today))
    return found


def _record(session: Session, actor: Actor, roster: Roster, report: RosterReport) -> None:
    """The import's audit record: a finished JobRun with the counts (never an ID number)."""
    summary = {key: value for key, value in report.as_dict(roster).items()
               if key not in ("errors", "dry_run", "applied")}
    now = datetime.now(UTC)
    session.add(JobRun(job=IMPORT_JOB, trigger="manual", runner=runner_name(), started_at=now,
                       finished_at=now, outcome="ok",
                       summary={"actor": actor.username, "source": roster.source[:100],
                                **summary}))
    session.flush()
    log.info("roster imported actor=%s rows=%d members_created=%d members_updated=%d "
             "enrolments_created=%d", actor.username, report.rows, report.members_created,
             report.members_updated, report.enrolments_created)

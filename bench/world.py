"""A province-sized world for the load benchmark: units, members, enrolments, claims in every
state and their audit events, written in bulk (COPY on PostgreSQL, executemany in big
transactions on SQLite). One member per two claims, one unit per 2,000 claims (at least 65).
The inserts fire the claim tally's triggers; the tally is compacted once after the fill.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from claims.db import make_engine, session_scope
from claims.idcard import make_id_number
from workflows.tally import compact_claim_tally

PER_YEAR = 200_000  # claim numbers used per year: LP2026-000001 ...
BATCH_SIZE = 1_000  # claims per weekly batch
# The state of claim i is STATE_CYCLE[i // 7 % 20]: most claims are done, some under way, and
# (the 7) a unit's claims are in every state, as in life, not all in one.
STATE_CYCLE = (["collected"] * 9 + ["rejected", "withdrawn", "notified", "funds_received",
                                    "approved", "submitted", "batched", "ready",
                                    "pending_materials", "logged", "onsite_scheduled"])
# The event that brought a claim into its state (its second audit row; `logged` has one).
LAST_EVENT = {"collected": ("notified", "collect"), "rejected": ("submitted", "reject"),
              "withdrawn": ("logged", "withdraw"), "notified": ("funds_received", "notify"),
              "funds_received": ("approved", "receive_funds"), "approved": ("submitted", "approve"),
              "submitted": ("batched", "deliver"), "batched": ("ready", "seal"),
              "ready": ("logged", "verify"), "pending_materials": ("logged", "request_materials"),
              "onsite_scheduled": ("notified", "schedule_onsite")}
IN_BATCH = {"batched", "submitted", "approved", "rejected", "funds_received", "notified",
            "onsite_scheduled", "collected"}
DECIDED = {"approved", "funds_received", "notified", "onsite_scheduled", "collected"}
DOCUMENTS = json.dumps([{"code": code, "status": "received", "reason": None} for code in
                        ("claim_form", "id_card", "invoice", "settlement_sheet",
                         "discharge_summary")])


@dataclass(frozen=True)
class World:
    """What was written, and what the load generator needs to ask about it."""

    claims: int
    members: int
    units: int
    seconds: float

    def member_id_number(self, i: int) -> str:
        return member_id_number(i)

    def claim_no(self, i: int, today: date) -> str:
        return claim_no(i, self.claims, today)


def member_id_number(i: int) -> str:
    """Member i's ID number, unique for every i (area, birth date 1966-1985, sequence)."""
    born = date(1966, 1, 1) + timedelta(days=i // 100 % 7300)
    return make_id_number(f"{420102 + i // 730_000:06d}", born, i % 100, "MF"[i % 2])


def claim_no(i: int, n: int, today: date) -> str:
    """Claim i's number: full years of PER_YEAR claims, then this year's (the newest) ones."""
    this_year = (n - 1) % PER_YEAR + 1
    first_year = today.year - (n - this_year) // PER_YEAR
    return f"LP{first_year + i // PER_YEAR}-{i % PER_YEAR + 1:06d}"


def _units(count: int, now: str) -> Iterator[tuple[Any, ...]]:
    for u in range(1, count + 1):
        yield (u, f"U{u:05d}", f"单位{u}", f"片区{u % 10}", "工会主席", "0710-1234567",
               None, 400, now)


def _members(count: int, units: int, now: str) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        id_number = member_id_number(i)
        born = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        yield (i + 1, i % units + 1, f"职工{i}", id_number, born, "MF"[i % 2], None, now)


def _enrolments(count: int, start: date, end: date, now: str) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        yield (i + 1, i + 1, "inpatient", 1, start.isoformat(), end.isoformat(), now)


def _claims(n: int, members: int, units: int, today: date,
            now: str) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        state = STATE_CYCLE[i // 7 % len(STATE_CYCLE)]
        number = claim_no(i, n, today)
        year = int(number[2:6])
        incident = min(date(year, 1, 1) + timedelta(days=(i % PER_YEAR) * 300 // PER_YEAR),
                       today - timedelta(days=30))
        logged = (incident + timedelta(days=20)).isoformat()
        member = i % members + 1
        decided = 125_000 if state in DECIDED else None
        yield (i + 1, number, member, (member - 1) % units + 1, "inpatient", member, "illness",
               incident.isoformat(), incident.isoformat(),
               (incident + timedelta(days=7)).isoformat(), "县人民医院", "肺炎", 800_000,
               400_000, 300_000, False, DOCUMENTS, 125_000, decided,
               decided if state == "collected" else None, False, state,
               1 if state == "logged" else 2,
               i // BATCH_SIZE + 1 if state in IN_BATCH else None,
               f"R{i + 1}" if state == "collected" else None, logged, now, now)


def _events(n: int, now: str) -> Iterator[tuple[Any, ...]]:
    log_payload = json.dumps({"estimate": "1250.00", "missing_documents": []})
    event_id = 0
    for i in range(n):
        state = STATE_CYCLE[i // 7 % len(STATE_CYCLE)]
        event_id += 1
        yield (event_id, i + 1, "log", None, "logged", 1, "bench", now, log_payload)
        if state in LAST_EVENT:
            before, event = LAST_EVENT[state]
            event_id += 1
            yield (event_id, i + 1, event, before, state, 2, "bench", now, "{}")


def _batches(n: int, now: str) -> Iterator[tuple[Any, ...]]:
    for b in range((n + BATCH_SIZE - 1) // BATCH_SIZE):
        yield (b + 1, f"B{b + 1:06d}", f"W{b % 53:02d}", now, now, BATCH_SIZE, 0, "folder",
               "sent", 0)


COLUMNS = {
    "unit": "id, code, name, area, union_contact, union_phone, union_email, employee_count, "
            "created_at",
    "member": "id, unit_id, name, id_number, birth_date, sex, phone, created_at",
    "enrolment": "id, member_id, product_code, shares, start_date, end_date, created_at",
    "batch": "id, batch_no, week, sealed_at, delivered_at, claim_count, total_claimed, "
             "transmission, transmission_state, transmission_attempts",
    "claim": "id, claim_no, member_id, unit_id, product_code, enrolment_id, cause, "
             "incident_date, admission_date, discharge_date, hospital, diagnosis, "
             "total_expense, insurance_paid, self_paid, death, documents, estimate, "
             "approved_amount, paid_amount, above_estimate, state, version, batch_id, "
             "receipt_no, logged_on, logged_at, updated_at",
    "claim_event": "id, claim_id, event, from_state, to_state, version, actor, at, payload",
}


def fill(url: str, n: int, today: date) -> World:
    """Write a world of n claims into the migrated, empty database at `url`."""
    started = time.perf_counter()
    members, units = max(n // 2, 200), max(65, n // 2_000)
    postgres = url.startswith("postgresql")
    stamp = datetime.now(UTC).replace(microsecond=0)
    now = stamp.isoformat(sep=" ") if postgres else stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    first_year = int(claim_no(0, n, today)[2:6])
    tables: list[tuple[str, Callable[[], Iterable[tuple[Any, ...]]]]] = [
        ("unit", lambda: _units(units, now)),
        ("member", lambda: _members(members, units, now)),
        ("enrolment", lambda: _enrolments(members, date(first_year - 1, 1, 1),
                                          today + timedelta(days=365), now)),
        ("batch", lambda: _batches(n, now)),
        ("claim", lambda: _claims(n, members, units, today, now)),
        ("claim_event", lambda: _events(n, now)),
    ]
    counters = [(year, PER_YEAR if year < today.year else (n - 1) % PER_YEAR + 1)
                for year in range(first_year, today.year + 1)]
    if postgres:
        _fill_postgres(url, tables, counters)
    else:
        _fill_sqlite(url, tables, counters)
    return World(claims=n, members=members, units=units,
                 seconds=time.perf_counter() - started)


def _compact_tally(url: str) -> None:
    """Fold the deltas the fill's inserts left in the claim tally (the triggers saw every
    claim), as the compact_claim_counts job would within the minute: the lists then sum one
    row per unit and state, as on a live system."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            compact_claim_tally(session)
    finally:
        engine.dispose()


def _fill_postgres(url: str, tables: list[tuple[str, Callable[[], Iterable[tuple[Any, ...]]]]],
                   counters: list[tuple[int, int]]) -> None:
    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, rows in tables:
            with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows():
                    copy.write_row(row)
            # Rows came with their ids: move each id sequence past them.
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")
        cursor.executemany('INSERT INTO claim_counter (year, "last") VALUES (%s, %s)', counters)
        raw.commit()
        _compact_tally(url)
        driver = raw.driver_connection
        driver.autocommit = True  # type: ignore[union-attr]
        driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]  # autovacuum's job, now
    finally:
        raw.close()
        engine.dispose()


def _fill_sqlite(url: str, tables: list[tuple[str, Callable[[], Iterable[tuple[Any, ...]]]]],
                 counters: list[tuple[int, int]]) -> None:
    connection = sqlite3.connect(sa.engine.make_url(url).database or "", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # a scratch load: nothing to lose
        connection.execute("BEGIN")
        for table, rows in tables:
            marks = ", ".join("?" * len(COLUMNS[table].split(",")))
            connection.executemany(
                f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", rows())
        connection.executemany('INSERT INTO claim_counter (year, "last") VALUES (?, ?)', counters)
        connection.execute("COMMIT")
        _compact_tally(url)
        connection.execute("ANALYZE")  # the planner's statistics (PRAGMA optimize does this)
    finally:
        connection.close()

"""`python -m bench roster`: import a 10,000-row XLSX roster (each row enrolled in a product)
into a county of 65 units that already has 2,000 of those members, the way
POST /api/v1/members/import does it: read the file, check every row, write in bulk, commit.

Prints the phases, then as its last line one JSON object {"rows", "seconds", "peak_mb"}
(SQLite; the phases on PostgreSQL too when MUTUALAID_BENCH_POSTGRES_URL names a server to
make a scratch database on).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import xlsxwriter

from bench.batch import machine_note, peak_memory_mb, reset_peak_memory
from bench.scratch import scratch_database
from claims.auth import Actor
from claims.db import make_engine, session_scope
from claims.idcard import make_id_number, parse_id_number
from claims.models import Member, Unit
from claims.runtime import Runtime
from claims.schemas.roster import read_roster
from config.catalogue import load_catalogue
from config.settings import Settings
from migrations import upgrade
from workflows.roster import import_roster

ROWS, UNITS, EXISTING = 10_000, 65, 2_000
TARGET_SECONDS = 10.0  # "10,000 rows import in seconds"


def id_numbers(n: int) -> list[str]:
    """n distinct valid ID numbers, born 1970-1999 (all of age for the in-patient product)."""
    numbers = []
    for i in range(n):
        born = date(1970 + i % 30, 1 + i % 12, 1 + i % 28)
        numbers.append(make_id_number(f"{330100 + i // 100:06d}", born, i % 100, "MF"[i % 2]))
    return numbers


def roster_workbook(numbers: list[str]) -> bytes:
    """The roster as a unit's clerk would send it: title, Chinese headers, one row each."""
    buffer = BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("名册")
    sheet.write_row(0, 0, ["2027年度参保名册"])
    sheet.write_row(1, 0, ["姓名", "身份证号", "手机", "单位代码", "险种", "份数", "起保日期",
                           "止保日期"])
    for i, number in enumerate(numbers):
        sheet.write_row(i + 2, 0, [f"职工{i}", number, f"138{i:08d}", f"U{i % UNITS + 1:03d}",
                                   "inpatient", 1 + i % 3, "2027-01-01", "2027-12-31"])
    book.close()
    return buffer.getvalue()


def seed_county(engine: sa.Engine, numbers: list[str]) -> None:
    """65 units and the first EXISTING members already registered (set-based, untimed)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(sa.insert(Unit.__table__), [  # type: ignore[attr-defined]
            {"code": f"U{u:03d}", "name": f"单位{u}", "employee_count": 200, "created_at": now}
            for u in range(1, UNITS + 1)])
        units = {code: unit_id for code, unit_id in
                 connection.execute(sa.select(Unit.code, Unit.id))}
        members = []
        for i, number in enumerate(numbers[:EXISTING]):
            parsed = parse_id_number(number)
            members.append({"unit_id": units[f"U{(i + 1) % UNITS + 1:03d}"], "name": f"旧名{i}",
                            "id_number": number, "birth_date": parsed.birth_date,
                            "sex": parsed.sex, "phone": None, "created_at": now})
        connection.execute(sa.insert(Member.__table__), members)  # type: ignore[attr-defined]


def measure(kind: str, rows: int) -> dict[str, Any]:
    numbers = id_numbers(rows)
    workbook = roster_workbook(numbers)
    with tempfile.TemporaryDirectory(prefix="bench-roster-") as tmp, \
            scratch_database(kind, Path(tmp), "roster") as url:
        upgrade(url)
        settings = Settings(instance_path=Path(tmp), database_url=url, secret_key="bench")
        runtime = Runtime(settings=settings, catalogue=load_catalogue(), engine=make_engine(url))
        seed_county(runtime.engine, numbers)
        actor = Actor(username="bench", role="admin")
        reset_peak_memory()
        started = time.perf_counter()
        roster = read_roster(workbook, "bench.xlsx")
        read_s = time.perf_counter() - started
        with session_scope(runtime.engine) as session:
            report = import_roster(session, runtime, actor, roster, dry_run=False)
        seconds = time.perf_counter() - started
        peak_mb = peak_memory_mb()
        assert report.applied and not report.problems, report.problems[:3]
        assert (report.members_created, report.members_updated) == (rows - EXISTING, EXISTING)
        assert report.enrolments_created == rows
        runtime.engine.dispose()
    return {"db": kind, "rows": rows, "file_kb": len(workbook) // 1024,
            "read_s": round(read_s, 3), "import_s": round(seconds - read_s, 3),
            "seconds": round(seconds, 3), "peak_mb": round(peak_mb, 1)}


def main(argv: list[str]) -> int:
    """Import the roster on each database, print the phases, then the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench roster")
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args(argv)
    print(machine_note())
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("MUTUALAID_BENCH_POSTGRES_URL")
                          else [])
    runs = [measure(kind, args.rows) for kind in kinds]
    for run in runs:
        print(f"{run['db']}: {run['rows']:,} rows ({run['file_kb']:,} KiB XLSX; "
              f"{run['rows'] - EXISTING:,} new members, {EXISTING:,} updated, {run['rows']:,} "
              f"enrolments): read+parse {run['read_s']:.2f}s, check+write+commit "
              f"{run['import_s']:.2f}s, total {run['seconds']:.2f}s "
              f"(< {TARGET_SECONDS:.0f}s: {'met' if run['seconds'] < TARGET_SECONDS else 'MISSED'})"
              f", peak {run['peak_mb']:.0f} MiB")
    first = runs[0]
    print(json.dumps({"rows": first["rows"], "seconds": first["seconds"],
                      "peak_mb": first["peak_mb"]}))
    return 0

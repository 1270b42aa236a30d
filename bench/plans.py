"""The query plans behind each endpoint: call it once in-process, capture the SQL it runs, and
EXPLAIN every statement (PostgreSQL: EXPLAIN ANALYZE in a rolled-back transaction; SQLite:
EXPLAIN QUERY PLAN, and the SELECT timed). Flags full scans of the big tables and sorts.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from bench.world import member_id_number

if TYPE_CHECKING:
    from bench.load import Target

BIG_TABLES = ("claim", "claim_event", "member", "enrolment")
SHOW_MS = 1.0  # the summary shows statements slower than this, or flagged
# More list filters than the load drives, so each has its plan checked.
EXTRA_CALLS = [
    ("claims_list", "GET", "/api/v1/claims?page_size=20&unit_code=U00007", None),
    ("claims_list", "GET", "/api/v1/claims?page_size=20&product_code=inpatient", None),
    ("claims_list", "GET", "/api/v1/claims?page_size=20&batch_no=B000001", None),
    ("claims_list", "GET", "/api/v1/claims?page_size=20&state=submitted&unit_code=U00007", None),
    ("claims_list", "GET", "/api/v1/claims?page=400&page_size=20&state=submitted", None),
    ("status", "POST", "/api/v1/status",
     json.dumps({"id_number": member_id_number(0), "name": "职工0"}, ensure_ascii=False)),
]


@dataclass(frozen=True)
class Report:
    summary: str
    full: str
    app_ms: dict[tuple[str, str], float]  # (endpoint, query) -> ms per request, in-process


REPEAT = 40  # in-process requests timed per endpoint (after the EXPLAINs: caches warm)


def _warnings(plan: str, postgres: bool) -> list[str]:
    found = []
    for table in BIG_TABLES:
        if postgres and re.search(rf"Seq Scan on {table}\b", plan):
            found.append(f"seq scan {table}")
        if not postgres and re.search(rf"\bSCAN {table}\b(?! USING)", plan):
            found.append(f"full scan {table}")
    if not postgres and "TEMP B-TREE" in plan:
        found.append("temp b-tree")
    if postgres and re.search(r"->\s+Sort\b|^Sort\b", plan, re.M):
        found.append("sort")
    return found


def _explain_postgres(connection: Any, statement: str, parameters: Any) -> tuple[str, float]:
    import psycopg

    cursor = connection.cursor()
    try:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    except psycopg.errors.IntegrityError:  # an INSERT replayed: its unique key is taken now
        connection.rollback()
        cursor.execute("EXPLAIN " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.rollback()  # EXPLAIN ANALYZE ran any INSERT/UPDATE: undo it
    match = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return plan, float(match.group(1)) if match else 0.0


def _explain_sqlite(connection: Any, statement: str, parameters: Any) -> tuple[str, float]:
    cursor = connection.cursor()
    cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
    plan = "\n".join(f"{row[0]:>3} {row[1]:>3} {row[3]}" for row in cursor.fetchall())
    elapsed = 0.0
    if statement.lstrip().upper().startswith("SELECT"):
        started = time.perf_counter()
        cursor.execute(statement, parameters).fetchall()
        elapsed = (time.perf_counter() - started) * 1000
    return plan, elapsed


def explain_endpoints(url: str, folder: Path, token: str, targets: list[Target]) -> Report:
    """Call each target's first request (and EXTRA_CALLS) once; EXPLAIN the SQL each ran."""
    from claims.app import create_app

    app = create_app({"database_url": url, "instance_path": folder, "secret_key": "bench"})
    engine: sa.Engine = app.extensions["mutualaid"].engine
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "WITH")):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    calls = [(t.endpoint + (f" ?{t.query}" if t.query else ""), t.method, *t.requests[0],
              t.auth) for t in targets if t.endpoint != "healthz"]
    calls += [(name + (" ?" + path.split("?", 1)[1] if "?" in path else " by id_number+name"),
               method, path, body, name != "status") for name, method, path, body in EXTRA_CALLS]
    client = app.test_client()
    by_call: list[tuple[str, int, list[tuple[str, Any]]]] = []
    app_ms = {}
    logging.disable(logging.INFO)  # each request's access log line aside
    try:
        for label, method, path, body, auth in calls:
            captured.clear()
            headers = {"Authorization": f"Bearer {token}"} if auth else {}
            answer = client.open(path, method=method, data=body, headers=headers,
                                 content_type="application/json")
            by_call.append((label, answer.status_code, list(captured)))
        event.remove(engine, "before_cursor_execute", capture)
        for target in targets:
            headers = {"Authorization": f"Bearer {token}"} if target.auth else {}
            started = time.perf_counter()
            for i in range(REPEAT):
                path, body = target.requests[(i + 1) % len(target.requests)]
                client.open(path, method=target.method, data=body, headers=headers,
                            content_type="application/json")
            app_ms[(target.endpoint, target.query)] = (
                (time.perf_counter() - started) * 1000 / REPEAT)
    finally:
        logging.disable(logging.NOTSET)

    postgres = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    if postgres:  # make_engine's driver is in autocommit: EXPLAIN ANALYZE must roll back
        raw.driver_connection.autocommit = False  # type: ignore[union-attr]
    summary = [f"query plans ({'EXPLAIN ANALYZE' if postgres else 'EXPLAIN QUERY PLAN'}; "
               f"statements over {SHOW_MS:g} ms or flagged):"]
    full = []
    try:
        for label, status, statements in by_call:
            summary.append(f"  {label} -> {status}")
            for statement, parameters in statements:
                explain = _explain_postgres if postgres else _explain_sqlite
                plan, ms = explain(raw.driver_connection, statement, parameters)
                flags = _warnings(plan, postgres)
                short = " ".join(statement.split())[:90]
                if ms >= SHOW_MS or flags:  # the rest is in the full report
                    summary.append(f"    {ms:8.2f} ms  {short}"
                                   + (f"   [{', '.join(flags)}]" if flags else ""))
                full.append(f"== {label}\n{statement}\n-- {parameters}\n{plan}\n")
    finally:
        raw.close()
        engine.dispose()
    return Report("\n".join(summary), "\n".join(full), app_ms)

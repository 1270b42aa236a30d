"""`python -m bench reconcile`: a year of 100,000 claims through approval, remittance and
collection (52 weekly batches, one remittance each, an audit trail), built set-based, with a
known number of discrepancies of every kind injected; then reconcile it and count.

Last line: one JSON object {"claims", "seconds", "peak_mb", "injected", "found"} (SQLite;
MUTUALAID_BENCH_POSTGRES_URL adds a "postgresql" object measured the same way). Target:
under 3 s on SQLite on the 2-core machine, and found == injected.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.batch import machine_note, peak_memory_mb, reset_peak_memory
from bench.scratch import scratch_database
from claims.db import make_engine, session_scope
from claims.idcard import make_id_number
from claims.models import (
    Batch,
    Claim,
    ClaimEvent,
    JSONType,
    Member,
    Remittance,
    RemittanceItem,
    Unit,
    UTCDateTime,
)
from claims.runtime import Runtime
from config.catalogue import load_catalogue
from config.settings import PROJECT_ROOT, Settings
from migrations import upgrade
from workflows.reconcile import KINDS, reconcile

CLAIMS, UNITS, MEMBERS, WEEKS = 100_000, 65, 2_000, 52
PER_KIND = 5  # discrepancies injected of each kind
TARGET_SECONDS = 3.0
ESTIMATE, APPROVED = 125_000, 120_000  # fen

_c, _e = Claim.__table__, ClaimEvent.__table__  # type: ignore[attr-defined]
_b, _u, _m = Batch.__table__, Unit.__table__, Member.__table__  # type: ignore[attr-defined]
_r, _ri = Remittance.__table__, RemittanceItem.__table__  # type: ignore[attr-defined]

# Claims by index i: the first PER_KIND of each claim-level kind are the injected ones.
CLAIM_KINDS = ("approved_not_remitted", "remitted_differs", "paid_differs",
               "remitted_not_approved", "uncollected")


def _range(kind: str) -> tuple[int, int]:
    start = CLAIM_KINDS.index(kind) * PER_KIND
    return start, start + PER_KIND


def build_year(engine: sa.Engine, n: int, today: date) -> int:
    """The county's year, inserted set-based; returns the number of discrepancies injected."""
    now = datetime.now(UTC)
    first_day = today - timedelta(days=420)  # the last week ends 8 weeks ago: all money is old
    with engine.begin() as connection:
        connection.execute(sa.insert(_u), [
            {"code": f"B{u:03d}", "name": f"单位{u}", "employee_count": 40, "created_at": now}
            for u in range(UNITS)])
        unit_ids = connection.execute(sa.select(_u.c.id).order_by(_u.c.id)).scalars().all()
        born = date(1980, 5, 5)
        connection.execute(sa.insert(_m), [
            {"unit_id": unit_ids[i % UNITS], "name": f"职工{i}", "birth_date": born, "sex": "F",
             "id_number": make_id_number(f"{510100 + i // 100:06d}", born, i % 100, "F"),
             "created_at": now} for i in range(MEMBERS)])
        first_member = connection.execute(sa.select(sa.func.min(_m.c.id))).scalar_one()
        connection.execute(sa.insert(_b), [
            {"batch_no": f"B-{w:02d}", "week": f"B-{w:02d}", "sealed_at": now,
             "delivered_at": now, "claim_count": 0, "total_claimed": 0, "transmission": "folder",
             "transmission_state": "sent", "transmission_attempts": 1} for w in range(WEEKS)])
        first_batch = connection.execute(sa.select(sa.func.min(_b.c.id))).scalar_one()
        connection.execute(sa.insert(_r), [
            {"reference": f"CITY-{uuid.uuid4().hex[:8]}-{w:02d}",
             "received_on": first_day + timedelta(days=7 * w + 21), "total_amount": 0,
             "recorded_by": "bench", "recorded_at": now} for w in range(WEEKS)])
        first_remittance = connection.execute(sa.select(sa.func.min(_r.c.id))).scalar_one()
        _insert_claims(connection, n, first_day, first_member, first_batch, unit_ids[0], now)
        first_claim = connection.execute(sa.select(sa.func.min(_c.c.id))).scalar_one()
        i = _c.c.id - first_claim
        _insert_items(connection, i, first_batch, first_remittance)
        _insert_events(connection, now)
        # The books as they should be: totals from the rows themselves ...
        connection.execute(sa.update(_b).values(
            claim_count=sa.select(sa.func.count()).where(_c.c.batch_id == _b.c.id)
            .scalar_subquery(),
            total_claimed=sa.select(sa.func.coalesce(sa.func.sum(_c.c.estimate), 0))
            .where(_c.c.batch_id == _b.c.id).scalar_subquery()))
        connection.execute(sa.update(_r).values(
            total_amount=sa.select(sa.func.coalesce(sa.func.sum(_ri.c.amount), 0))
            .where(_ri.c.remittance_id == _r.c.id).scalar_subquery()))
        # ... then the batch and remittance totals that do not add up.
        connection.execute(sa.update(_b).where(_b.c.id < first_batch + PER_KIND)
                           .values(total_claimed=_b.c.total_claimed + 1))
        connection.execute(sa.update(_r).where(_r.c.id >= first_remittance + WEEKS - PER_KIND)
                           .values(total_amount=_r.c.total_amount + 1))
    return PER_KIND * len(KINDS)


def _insert_claims(connection: sa.Connection, n: int, first_day: date, first_member: int,
                   first_batch: int, first_unit: int, now: datetime) -> None:
    seq = sa.select(sa.literal(0).label("i")).cte("seq", recursive=True)
    seq = seq.union_all(sa.select(seq.c.i + 1).where(seq.c.i < n - 1))
    i = seq.c.i

    def among(kind: str) -> Any:
        start, end = _range(kind)
        return sa.and_(i >= start, i < end)

    rejected = sa.or_(among("remitted_not_approved"),
                      sa.and_(i >= len(CLAIM_KINDS) * PER_KIND, i % 20 == 19))
    returned = sa.and_(i >= len(CLAIM_KINDS) * PER_KIND, i % 100 == 50)
    state = sa.case((among("approved_not_remitted"), "approved"),
                    (among("uncollected"), "notified"), (rejected, "rejected"),
                    (returned, "pending_materials"), else_="collected")
    approved = sa.case((rejected | returned, sa.null()), else_=APPROVED)
    paid = sa.case((among("approved_not_remitted") | among("uncollected") | rejected | returned,
                    sa.null()), (among("paid_differs"), APPROVED - 1), else_=APPROVED)
    week = i % WEEKS
    # SQLite and PostgreSQL both add whole days to a date this way.
    if connection.dialect.name == "sqlite":
        logged = sa.func.date(sa.literal(first_day.isoformat()), sa.literal("+")
                              .op("||")(sa.cast(week * 7, sa.String)).op("||")(" days"))
        approved_on = sa.func.date(logged, "+14 days")
        incident = sa.func.date(logged, "-20 days")
    else:
        logged = sa.literal(first_day, sa.Date) + week * 7
        approved_on = logged + 14
        incident = logged - 20
    member = first_member + i % MEMBERS
    values = {
        "claim_no": sa.literal("LPB-") + sa.cast(i + 10_000_000, sa.String),
        "member_id": member,
        "unit_id": first_unit + (i % MEMBERS) % UNITS,
        "product_code": sa.literal("inpatient"), "cause": sa.literal("illness"),
        "incident_date": incident, "admission_date": incident, "discharge_date": incident,
        "total_expense": sa.literal(800_000), "insurance_paid": sa.literal(400_000),
        "self_paid": sa.literal(300_000), "death": sa.literal(False),
        "documents": sa.literal([], JSONType), "estimate": sa.literal(ESTIMATE),
        "approved_amount": approved, "approved_on": sa.case((approved.is_(None), sa.null()),
                                                            else_=approved_on),
        "paid_amount": paid, "above_estimate": sa.literal(False), "state": state,
        "version": sa.literal(8),
        "batch_id": sa.case((returned, sa.null()), else_=first_batch + week),
        "receipt_no": sa.case((paid.is_(None), sa.null()),
                              else_=sa.literal("R-") + sa.cast(i, sa.String)),
        "logged_on": logged, "logged_at": sa.literal(now, UTCDateTime()),
        "updated_at": sa.literal(now, UTCDateTime()),
    }
    connection.execute(sa.insert(_c).from_select(
        list(values), sa.select(*(v.label(k) for k, v in values.items()))))


def _insert_items(connection: sa.Connection, i: Any, first_batch: int,
                  first_remittance: int) -> None:
    """One item per claim that money came for: collected and notified claims, and the
    rejected ones of the injected kind."""
    start, end = _range("remitted_not_approved")
    not_approved = sa.and_(i >= start, i < end)
    start, end = _range("remitted_differs")
    differs = sa.and_(i >= start, i < end)
    amount = sa.case((not_approved, 50_000), (differs, _c.c.approved_amount + 100),
                     else_=_c.c.approved_amount)
    connection.execute(sa.insert(_ri).from_select(
        ["remittance_id", "claim_id", "amount"],
        sa.select(first_remittance + (_c.c.batch_id - first_batch), _c.c.id, amount)
        .where(sa.or_(_c.c.state.in_(("collected", "notified")), not_approved))))


def _insert_events(connection: sa.Connection, now: datetime) -> None:
    """An audit trail as long as a real one (log, seal, approve or reject, collect), and the
    return events that count per batch."""
    columns = ["claim_id", "event", "from_state", "to_state", "version", "actor", "at",
               "payload"]
    stamp = (sa.literal("bench"), sa.literal(now, UTCDateTime()))
    for event, source, target, where in (
            ("log", None, "logged", sa.true()),
            ("seal", "ready", "batched", _c.c.batch_id.is_not(None)),
            ("approve", "submitted", "approved", _c.c.approved_amount.is_not(None)),
            ("collect", "notified", "collected", _c.c.state == "collected")):
        connection.execute(sa.insert(_e).from_select(columns, sa.select(
            _c.c.id, sa.literal(event), sa.literal(source), sa.literal(target),
            sa.literal(2), *stamp, sa.literal({}, JSONType)).where(where)))
    connection.execute(sa.insert(_e).from_select(columns, sa.select(
        _c.c.id, sa.literal("return"), sa.literal("submitted"), sa.literal("pending_materials"),
        sa.literal(5), *stamp, sa.literal({"batch_no": "B-00", "reason": "缺少出院小结原件",
                                           "reason_code": "missing_discharge_summary"},
                                          JSONType),
    ).where(_c.c.state == "pending_materials")))


def measure(n: int, kind: str) -> dict[str, Any]:
    """Build the year on a fresh database, then reconcile it (timed) and check the count."""
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp, \
            scratch_database(kind, Path(tmp), "reconcile") as url:
        upgrade(url)
        settings = Settings(instance_path=Path(tmp), database_url=url, secret_key="bench")
        runtime = Runtime(settings=settings, catalogue=load_catalogue(), engine=make_engine(url))
        started = time.perf_counter()
        injected = build_year(runtime.engine, n, runtime.today())
        build_s = time.perf_counter() - started
        if kind == "postgresql":
            with runtime.engine.connect() as connection:
                connection.execute(sa.text("ANALYZE"))
        reset_peak_memory()
        started, cpu = time.perf_counter(), time.process_time()
        with session_scope(runtime.engine, write=False) as session:
            result = reconcile(session, runtime)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        peak_mb = peak_memory_mb()
        runtime.engine.dispose()
    found = len(result["discrepancies"])
    return {"claims": n, "seconds": round(seconds, 3), "peak_mb": round(peak_mb, 1),
            "injected": injected, "found": found, "by_kind": result["discrepancy_counts"],
            "cpu_s": round(cpu_s, 3), "build_s": round(build_s, 1),
            "approved": result["totals"]["approved"], "paid": result["totals"]["paid"]}


def _run_child(n: int, kind: str) -> dict[str, Any]:
    answer = subprocess.run(
        [sys.executable, "-m", "bench", "reconcile", "--one", str(n), "--db", kind],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise SystemExit(f"bench reconcile n={n} db={kind} failed:\n{answer.stderr}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def main(argv: list[str]) -> int:
    """Measure in a child process per database (its own peak memory), print, JSON last."""
    parser = argparse.ArgumentParser(prog="python -m bench reconcile")
    parser.add_argument("--claims", type=int, default=CLAIMS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", default="sqlite", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.db)))
        return 0
    print(machine_note())
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("MUTUALAID_BENCH_POSTGRES_URL")
                          else [])
    runs = {kind: _run_child(args.claims, kind) for kind in kinds}
    for kind, run in runs.items():
        verdict = "met" if run["seconds"] < TARGET_SECONDS else "MISSED"
        print(f"{kind}: {run['claims']:,} claims (built in {run['build_s']}s), reconciled in "
              f"{run['seconds']:.3f}s (cpu {run['cpu_s']:.3f}s, < {TARGET_SECONDS}s: {verdict}); "
              f"peak {run['peak_mb']} MiB; injected {run['injected']}, found {run['found']} "
              f"{run['by_kind']}; approved {run['approved']}, paid {run['paid']} (fen)")
    sqlite = runs["sqlite"]
    summary: dict[str, Any] = {key: sqlite[key] for key in
                               ("claims", "seconds", "peak_mb", "injected", "found")}
    if "postgresql" in runs:
        summary["postgresql"] = {key: runs["postgresql"][key] for key in
                                 ("claims", "seconds", "peak_mb", "injected", "found")}
    print(json.dumps(summary))
    return 0 if all(r["found"] == r["injected"] for r in runs.values()) else 1

"""`python -m bench batch`: seal N ready claims and write the manifest, beside the raw SQL doing
the same seal and a bare XlsxWriter loop over the same rows, for N = 1,000, 10,000, 100,000.
A second manifest baseline, a bare loop of our own XLSX writer (workflows/xlsx_stream.py) over
the same rows, shows what the manifest adds to writing the sheet (the CSV, masking, totals).
CPU times (time.process_time) are printed too: other work on the machine moves them less.
`--repeat R` runs each size R times; the JSON line then carries each size's median run.

Each N runs in a child process on fresh databases, so its peak memory is its own. Prints a
table, then as its last line one JSON object {"runs": [{"n", "seal_s", "raw_seal_s",
"manifest_s", "raw_manifest_s", "peak_mb"}, ...]} (SQLite; "postgresql_runs" too when
MUTUALAID_BENCH_POSTGRES_URL names a PostgreSQL server to make scratch databases on).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import xlsxwriter

from claims.auth import system_actor
from claims.db import make_engine, session_scope
from claims.idcard import make_id_number
from claims.models import Batch, Claim, JSONType, Member, Unit, UTCDateTime
from claims.runtime import Runtime
from config.catalogue import Catalogue, load_catalogue
from config.settings import PROJECT_ROOT, Settings
from migrations import upgrade
from workflows.batch import iso_week, seal_weekly_batch
from workflows.manifest import manifest_query, write_manifest
from workflows.xlsx_stream import Workbook

SIZES = (1_000, 10_000, 100_000)
TARGET_SECONDS, SEAL_RATIO, MANIFEST_RATIO = 5.0, 3.0, 1.3
KEYS = ("n", "seal_s", "raw_seal_s", "manifest_s", "raw_manifest_s", "peak_mb")


def make_ready_claims(engine: sa.Engine, catalogue: Catalogue, n: int, *, members: int = 200,
                      today: date | None = None, prefix: str = "LPX-",
                      estimate: int = 125_000) -> int:
    """N `ready` in-patient claims of `members` new members, inserted set-based (no rows in
    Python); returns the unit's id. For benchmarks and crash tests, not for the demo."""
    today = today or date.today()
    incident = today - timedelta(days=20)
    product = catalogue.get("inpatient")
    assert product is not None
    documents = [{"code": code, "status": "received", "reason": None}
                 for code in product.required_documents]
    now = datetime.now(UTC)
    claim, member_table = Claim.__table__, Member.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        unit_id = connection.execute(sa.insert(Unit.__table__).values(  # type: ignore[attr-defined]
            code=f"{prefix}{uuid.uuid4().hex[:12]}", name="批量测试单位", employee_count=members,
            created_at=now).returning(Unit.__table__.c.id)).scalar_one()  # type: ignore
        born = date(1979, 3, 8)  # tests' members are born elsewhere: no ID number clashes
        known = connection.execute(sa.select(sa.func.count()).select_from(member_table)).scalar()
        ids = connection.execute(sa.insert(member_table).returning(member_table.c.id), [
            {"unit_id": unit_id, "name": f"职工{i}", "birth_date": born, "sex": "M",
             "id_number": make_id_number(f"{420100 + i // 100:06d}", born, i % 100, "M"),
             "created_at": now} for i in range(known or 0, (known or 0) + members)]
        ).scalars().all()
        first = min(ids)
        assert max(ids) - first + 1 == members, "member ids are not contiguous"
        seq = sa.select(sa.literal(0).label("i")).cte("seq", recursive=True)
        seq = seq.union_all(sa.select(seq.c.i + 1).where(seq.c.i < n - 1))
        values = {
            "claim_no": sa.literal(prefix) + sa.cast(seq.c.i + 10_000_000, sa.String),
            "member_id": first + seq.c.i % members, "unit_id": sa.literal(unit_id),
            "product_code": sa.literal("inpatient"), "cause": sa.literal("illness"),
            "incident_date": sa.literal(incident, sa.Date),
            "admission_date": sa.literal(incident, sa.Date),
            "discharge_date": sa.literal(incident + timedelta(days=7), sa.Date),
            "hospital": sa.literal("县人民医院"), "diagnosis": sa.literal("肺炎"),
            "total_expense": sa.literal(800_000), "insurance_paid": sa.literal(400_000),
            "self_paid": sa.literal(300_000), "death": sa.literal(False),
            "documents": sa.literal(documents, JSONType), "estimate": sa.literal(estimate),
            "above_estimate": sa.literal(False), "state": sa.literal("ready"),
            "version": sa.literal(2), "logged_on": sa.literal(today, sa.Date),
            "logged_at": sa.literal(now, UTCDateTime()),
            "updated_at": sa.literal(now, UTCDateTime()),
        }
        connection.execute(sa.insert(claim).from_select(
            list(values), sa.select(*(v.label(k) for k, v in values.items()))))
    return int(unit_id)


def raw_seal(engine: sa.Engine, week: str) -> float:
    """The same seal in bare SQL: a batch row, one UPDATE, one INSERT ... SELECT; seconds."""
    now = datetime.now(UTC).replace(tzinfo=None)
    connection = engine.raw_connection()
    postgres = engine.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    json_cast = "::jsonb" if postgres else ""
    started = time.perf_counter()
    try:
        cursor = connection.cursor()
        # make_engine leaves both drivers in autocommit and begins transactions itself.
        cursor.execute("BEGIN" if postgres else "BEGIN IMMEDIATE")
        cursor.execute(
            "INSERT INTO batch (batch_no, week, sealed_at, claim_count, total_claimed, "
            "transmission, transmission_state, transmission_attempts) VALUES "
            f"({mark}, {mark}, {mark}, 0, 0, 'folder', 'pending', 0)", (week, week, now))
        cursor.execute(f"SELECT id FROM batch WHERE batch_no = {mark}", (week,))
        batch_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE claim SET state = 'batched', version = version + 1, "
            f"updated_at = {mark}, batch_id = {mark} WHERE state = 'ready'", (now, batch_id))
        cursor.execute(
            "INSERT INTO claim_event (claim_id, event, from_state, to_state, version, actor, "
            f"at, payload) SELECT id, 'seal', 'ready', 'batched', version, {mark}, {mark}, "
            f"{mark}{json_cast} FROM claim WHERE batch_id = {mark}",
            ("job:bench", now, json.dumps({"batch_no": week}), batch_id))
        connection.commit()
    finally:
        connection.close()
    return time.perf_counter() - started


def raw_manifest(engine: sa.Engine, batch_id: int, path: Path) -> float:
    """A bare XlsxWriter constant_memory loop over the manifest query's rows; seconds."""
    started = time.perf_counter()
    with engine.connect() as connection:
        query = manifest_query(batch_id).execution_options(yield_per=2000)
        workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        sheet = workbook.add_worksheet()
        with connection.execute(query) as rows:
            for number, row in enumerate(rows):
                sheet.write_row(number, 0, row)
        workbook.close()
    return time.perf_counter() - started


def raw_stream(engine: sa.Engine, batch_id: int, path: Path) -> float:
    """A bare loop of our streaming writer over the manifest query's rows; seconds."""
    started = time.perf_counter()
    with (engine.connect() as connection, Workbook(path, ("bare",)) as book,
          book.sheet("bare") as sheet):
        query = manifest_query(batch_id).execution_options(yield_per=2000)
        with connection.execute(query) as rows:
            for row in rows:
                sheet.write_row(row)
    return time.perf_counter() - started


@contextmanager
def _databases(kind: str, folder: Path) -> Iterator[tuple[str, str]]:
    """Two empty, migrated databases (ours, raw): SQLite files, or PostgreSQL scratch ones."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'ours.db'}", f"sqlite:///{folder / 'raw.db'}"
        return
    base = sa.engine.make_url(os.environ["MUTUALAID_BENCH_POSTGRES_URL"])
    names = [f"bench_batch_{os.getpid()}_{side}" for side in ("ours", "raw")]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{names[0]}"'))
    try:
        yield tuple(base.set(database=name).render_as_string(hide_password=False)  # type: ignore
                    for name in names)
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _copy_database(kind: str, ours: str, raw: str) -> None:
    if kind == "sqlite":
        shutil.copyfile(sa.engine.make_url(ours).database or "",
                        sa.engine.make_url(raw).database or "")
        return
    url = sa.engine.make_url(ours)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(
            f'CREATE DATABASE "{sa.engine.make_url(raw).database}" TEMPLATE "{url.database}"'))
    admin.dispose()


def measure(n: int, kind: str) -> dict[str, Any]:
    """One size on fresh databases: ours and the raw baselines, in this process."""
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        with _databases(kind, folder) as (ours, raw):
            upgrade(ours)
            settings = Settings(instance_path=folder, database_url=ours, secret_key="bench")
            runtime = Runtime(settings=settings, catalogue=load_catalogue(),
                              engine=make_engine(ours))
            # 1,250 yuan each (the in-patient product's): 125 million yuan at 100,000 claims
            # fits the money columns, 64-bit since migration 0003.
            make_ready_claims(runtime.engine, runtime.catalogue, n, today=runtime.today())
            runtime.engine.dispose()
            _copy_database(kind, ours, raw)

            # The raw baseline holds its connection before its clock starts: so do we. The
            # scheduler's engine is warm and its ORM mappers configured (its first query, at
            # start, does that once per process); neither is sealing.
            with runtime.engine.connect():
                pass
            sa.orm.configure_mappers()
            reset_peak_memory()
            started, cpu = time.perf_counter(), time.process_time()
            with session_scope(runtime.engine) as session:
                result = seal_weekly_batch(session, runtime, system_actor("bench"))
                assert result.batch is not None and result.sealed == n
                batch_id = result.batch.id
            seal_s, seal_cpu = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            with session_scope(runtime.engine) as session:
                batch = session.get(Batch, batch_id)
                assert batch is not None
                write_manifest(session, runtime, batch)
            manifest_s, manifest_cpu = time.perf_counter() - started, time.process_time() - cpu
            peak_mb = peak_memory_mb()
            assert batch_id is not None
            cpu = time.process_time()
            raw_manifest_s = raw_manifest(runtime.engine, batch_id, folder / "bare.xlsx")
            raw_manifest_cpu = time.process_time() - cpu
            cpu = time.process_time()
            raw_stream_s = raw_stream(runtime.engine, batch_id, folder / "bare-stream.xlsx")
            raw_stream_cpu = time.process_time() - cpu
            runtime.engine.dispose()

            raw_engine = make_engine(raw)
            raw_seal_s = raw_seal(raw_engine, iso_week(runtime.today()))
            raw_engine.dispose()
    return {"n": n, "seal_s": round(seal_s, 3), "raw_seal_s": round(raw_seal_s, 3),
            "manifest_s": round(manifest_s, 3), "raw_manifest_s": round(raw_manifest_s, 3),
            "peak_mb": round(peak_mb, 1), "seal_cpu_s": round(seal_cpu, 3),
            "manifest_cpu_s": round(manifest_cpu, 3),
            "raw_manifest_cpu_s": round(raw_manifest_cpu, 3),
            "raw_stream_s": round(raw_stream_s, 3), "raw_stream_cpu_s": round(raw_stream_cpu, 3),
            "load": round(os.getloadavg()[0], 1)}


def reset_peak_memory() -> None:
    """Start counting peak memory now (Linux: VmHWM is reset by writing 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak counts from the process start


def peak_memory_mb() -> float:
    """Peak resident memory since reset_peak_memory(), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(n: int, kind: str) -> dict[str, Any]:
    answer = subprocess.run(
        [sys.executable, "-m", "bench", "batch", "--one", str(n), "--db", kind],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise SystemExit(f"bench batch n={n} db={kind} failed:\n{answer.stderr}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def print_table(kind: str, runs: list[dict[str, Any]]) -> None:
    """The runs as a table with the ratios and the targets."""
    print(f"\n{kind}: seal N ready claims (+ audit events) and write the manifest "
          "(XLSX, CSV, cover); bare_xlsx: XlsxWriter loop, bare_strm: our writer's loop")
    print(f"{'n':>8} {'seal_s':>7} {'raw_seal':>8} {'ratio':>5} {'manif_s':>7} "
          f"{'bare_xlsx':>9} {'ratio':>5} {'bare_strm':>9} {'ratio':>5} {'total_s':>7} "
          f"{'us/claim':>8} {'peak_mb':>7} {'cpu:seal':>8} {'manif':>6} {'bare':>6} {'strm':>6} "
          f"{'load':>5}")
    for run in runs:
        total = run["seal_s"] + run["manifest_s"]
        print(f"{run['n']:>8,} {run['seal_s']:>7.3f} {run['raw_seal_s']:>8.3f} "
              f"{run['seal_s'] / max(run['raw_seal_s'], 1e-9):>5.2f} {run['manifest_s']:>7.3f} "
              f"{run['raw_manifest_s']:>9.3f} "
              f"{run['manifest_s'] / max(run['raw_manifest_s'], 1e-9):>5.2f} "
              f"{run['raw_stream_s']:>9.3f} "
              f"{run['manifest_s'] / max(run['raw_stream_s'], 1e-9):>5.2f} {total:>7.3f} "
              f"{1e6 * total / run['n']:>8.1f} {run['peak_mb']:>7.1f} "
              f"{run['seal_cpu_s']:>8.2f} {run['manifest_cpu_s']:>6.2f} "
              f"{run['raw_manifest_cpu_s']:>6.2f} {run['raw_stream_cpu_s']:>6.2f} "
              f"{run.get('load', 0):>5.1f}")
    largest = median_runs(runs)[-1]
    total = largest["seal_s"] + largest["manifest_s"]
    print(f"targets at n={largest['n']:,}: total {total:.2f}s (< {TARGET_SECONDS}s: "
          f"{'met' if total < TARGET_SECONDS else 'MISSED'}); seal "
          f"{largest['seal_s'] / largest['raw_seal_s']:.2f}x raw (< {SEAL_RATIO}x); manifest "
          f"{largest['manifest_s'] / largest['raw_manifest_s']:.2f}x bare (< {MANIFEST_RATIO}x)")
    sizes = sorted({run["n"] for run in runs})
    if len(sizes) > 1:
        # Linear: the time per claim stays put as N grows (CPU time: less noisy than the clock).
        per_claim = {n: min(r["seal_cpu_s"] + r["manifest_cpu_s"] for r in runs if r["n"] == n)
                     / n * 1e6 for n in sizes}
        print("growth: CPU us per claim "
              + ", ".join(f"{per_claim[n]:.1f} at {n:,}" for n in sizes)
              + f"; {sizes[-1]:,} vs {sizes[-2]:,}: "
              f"{per_claim[sizes[-1]] / per_claim[sizes[-2]]:.2f}x")


def median_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per size: the one with the median total time (whole runs, not mixed fields)."""
    chosen = []
    for n in sorted({run["n"] for run in runs}):
        same = sorted((r for r in runs if r["n"] == n), key=lambda r: r["seal_s"] + r["manifest_s"])
        chosen.append(same[(len(same) - 1) // 2])
    return chosen


def machine_note() -> str:
    """How busy and how fast this machine is now: timings elsewhere read differently."""
    started = time.perf_counter()
    total = 0
    for step in range(10_000_000):
        total += step
    loop = time.perf_counter() - started
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"machine: {os.cpu_count()} CPUs, load average {load}; "
            f"a 10M-step Python loop took {loop:.2f}s")


def main(argv: list[str]) -> int:
    """Run every size in a child process, print the table, then the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench batch")
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", default="sqlite", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each size")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.db)))
        return 0
    sizes = [int(n) for n in args.sizes.split(",")]
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("MUTUALAID_BENCH_POSTGRES_URL")
                          else [])
    print(machine_note())
    results = {kind: [_run_child(n, kind) for n in sizes for _ in range(args.repeat)]
               for kind in kinds}
    for kind, runs in results.items():
        print_table(kind, runs)
    summary: dict[str, Any] = {"runs": [{k: run[k] for k in KEYS}
                                        for run in median_runs(results["sqlite"])]}
    if "postgresql" in results:
        summary["postgresql_runs"] = median_runs(results["postgresql"])
    print(json.dumps(summary))
    return 0

"""The claim tally (migrations 0006 and 0007, workflows/tally.py): the claims list's
X-Pagination total and /metrics' claims by state stay exact whatever moves the claims, before
and after the compact_claim_counts job folds the tally."""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DATABASES, POSTGRES_URL
from test_observability import scrape

from bench.batch import make_ready_claims
from bench.scratch import scratch_postgres
from claims.db import make_engine, session_scope
from config.catalogue import load_catalogue
from migrations import alembic_config, upgrade
from workflows.lifecycle import STATES
from workflows.tally import compact_claim_tally, count_claims

CLAIMS = "/api/v1/claims"
PRODUCTS = ("inpatient", "critical_illness", "no_such_product")
COMPACT = "/api/v1/jobs/compact_claim_counts/runs"


# --- helpers --------------------------------------------------------------------------------


def engine_of(app) -> sa.Engine:
    return app.extensions["mutualaid"].engine


Group = tuple[int, str, str]  # (unit_id, state, product_code)


def tally_rows(engine: sa.Engine) -> list[tuple[int, Group, int]]:
    """Every row of the tally: (id, (unit_id, state, product_code), n)."""
    with engine.connect() as connection:
        return [(row[0], (row[1], row[2], row[3]), row[4]) for row in connection.execute(
            sa.text("SELECT id, unit_id, state, product_code, n FROM claim_tally ORDER BY id"))]


def tallied(engine: sa.Engine) -> dict[Group, int]:
    """The tally's sum per (unit, state, product), the zero sums left out."""
    sums: Counter[Group] = Counter()
    for _id, group, n in tally_rows(engine):
        sums[group] += n
    return {group: n for group, n in sums.items() if n}


def counted(engine: sa.Engine) -> dict[Group, int]:
    """The claims themselves, counted per (unit, state, product)."""
    with engine.connect() as connection:
        return {(unit_id, state, product): n for unit_id, state, product, n in
                connection.execute(sa.text(
                    "SELECT unit_id, state, product_code, count(*) FROM claim "
                    "GROUP BY unit_id, state, product_code"))}


def total_and_listed(api, **query: Any) -> tuple[int, list[str]]:
    """X-Pagination's total, and the claim numbers really listed, walking every page."""
    numbers: list[str] = []
    page, total = 1, None
    while True:
        answer = api.get(CLAIMS, query_string={**query, "page": page, "page_size": 3})
        assert answer.status_code == 200, answer.json
        pagination = json.loads(answer.headers["X-Pagination"])
        total = pagination["total"] if total is None else total
        assert pagination["total"] == total  # the same on every page
        numbers += [claim["claim_no"] for claim in answer.json]
        if page >= pagination.get("total_pages", 0):
            return total, numbers
        page += 1


def assert_totals_are_the_claims_listed(county, world: dict[str, Any]) -> None:
    clerk, staff = county.clerk, world["staff"]
    units = [world["own"]["code"], world["other"]["code"], "NO-SUCH-UNIT"]
    queries: list[dict[str, str]] = [{}]
    queries += [{"state": state} for state in STATES]
    queries += [{"unit_code": code} for code in units]
    queries += [{"state": state, "unit_code": code} for state in STATES for code in units[:2]]
    queries += [{"product_code": product} | query for product in PRODUCTS
                for query in ({}, {"state": "logged"}, {"state": "submitted"},
                              {"unit_code": units[0]}, {"state": "logged", "unit_code": units[1]})]
    everything = total_and_listed(clerk)[1]
    assert len(everything) == world["claims"]
    for query in queries:
        total, numbers = total_and_listed(clerk, **query)
        assert total == len(numbers), query
    for query in [{}, {"state": "logged"}, {"state": "submitted"},
                  {"unit_code": units[0]}, {"unit_code": units[1]},
                  {"product_code": "critical_illness"}, {"product_code": "inpatient",
                                                         "state": "logged"}]:
        total, numbers = total_and_listed(staff, **query)
        assert total == len(numbers), query
    assert total_and_listed(staff)[0] == world["own_claims"]
    assert total_and_listed(staff, unit_code=units[1]) == (0, [])


@pytest.fixture
def busy_county(county) -> dict[str, Any]:
    """Two units' claims moved through every stage the clerk drives: verify, withdraw, ask
    for materials, the weekly batch, deliver, and claims logged after the batch."""
    own, other = county.unit(), county.unit()
    staff = county.unit_staff(own["code"])
    members = {}
    for unit in (own, other):
        members[unit["code"]] = county.member(unit["code"])
        county.enrol(members[unit["code"]])
    days = iter(range(20, 40))

    def log(unit: dict[str, Any], by=None) -> str:
        # A day of its own per claim: the same member's claims are no duplicates of each other.
        incident = county.today - timedelta(days=next(days))
        return county.claim(members[unit["code"]], by=by, incident_date=incident.isoformat(),
                            admission_date=incident.isoformat(),
                            discharge_date=(incident + timedelta(days=7)).isoformat())[
            "claim_no"]

    numbers = [log(own, by=staff) for _ in range(4)] + [log(other) for _ in range(4)]
    for claim_no in numbers[1:4] + numbers[5:8]:
        verified = county.fire(claim_no, "verify")
        assert verified.status_code == 200, verified.json
    assert county.fire(numbers[3], "withdraw", reason="重复登记").status_code == 200
    assert county.fire(numbers[0], "request_materials", documents=["invoice"],
                       reason="发票不清").status_code == 200
    batch = county.clerk.post("/api/v1/batches", {})
    assert batch.status_code == 201 and batch.json["claim_count"] == 5, batch.json
    delivered = county.clerk.post(f"/api/v1/batches/{batch.json['batch_no']}/events",
                                  {"event": "deliver"})
    assert delivered.status_code == 200, delivered.json
    assert county.fire(log(other), "verify").status_code == 200
    log(own, by=staff)
    for unit in (own, other):  # a second product: its claims are logged
        county.enrol(members[unit["code"]], "critical_illness")
        county.claim(members[unit["code"]], "critical_illness")
    return {"staff": staff, "own": own, "other": other, "claims": 12, "own_claims": 6}


def run_compaction(county) -> dict[str, Any]:
    answer = county.clerk.post(COMPACT, {})
    assert answer.status_code == 200, answer.json
    assert answer.json["outcome"] == "ok", answer.json
    return answer.json["summary"]


# --- the list's totals ----------------------------------------------------------------------


def test_list_totals_equal_the_claims_listed_before_and_after_compaction(county, busy_county):
    assert_totals_are_the_claims_listed(county, busy_county)
    summary = run_compaction(county)
    assert summary["rows_after"] < summary["rows_before"]
    assert_totals_are_the_claims_listed(county, busy_county)


def test_list_totals_by_product_are_the_product_claims_listed(county, busy_county):
    assert total_and_listed(county.clerk, product_code="critical_illness")[0] == 2
    assert total_and_listed(county.clerk, product_code="inpatient")[0] == 10
    assert total_and_listed(county.clerk, product_code="inpatient", state="submitted")[0] == 5
    assert total_and_listed(busy_county["staff"], product_code="critical_illness")[0] == 1
    assert total_and_listed(county.clerk, product_code="accident") == (0, [])


def test_list_totals_by_batch_or_member_still_count_the_claims(county, busy_county):
    batch_no = county.clerk.get("/api/v1/batches").json[0]["batch_no"]
    assert total_and_listed(county.clerk, batch_no=batch_no)[0] == 5


# --- the compaction -------------------------------------------------------------------------


def test_compaction_leaves_one_row_per_group_and_a_second_run_changes_nothing(
        app, county, busy_county):
    engine = engine_of(app)
    before = tallied(engine)
    assert before == counted(engine)
    assert len(tally_rows(engine)) > len(before)  # deltas waiting to be folded
    summary = run_compaction(county)
    rows = tally_rows(engine)
    assert summary == {"rows_before": summary["rows_before"], "rows_after": len(rows)}
    assert sorted(group for _id, group, _n in rows) == sorted(before)
    assert {group: n for _id, group, n in rows} == counted(engine)
    again = run_compaction(county)
    assert again == {"rows_before": len(rows), "rows_after": len(rows)}
    assert tally_rows(engine) == rows


def test_compaction_drops_units_and_states_left_with_no_claims(app, county):
    claim_no = county.claim()["claim_no"]
    assert county.fire(claim_no, "withdraw", reason="放弃").status_code == 200
    engine = engine_of(app)
    with session_scope(engine) as session:
        compact_claim_tally(session)
    assert [(group[1:], n) for _id, group, n in tally_rows(engine)] == [
        (("withdrawn", "inpatient"), 1)]


def test_compactions_running_at_once_beside_claim_changes_keep_the_count_exact(app):
    runtime = app.extensions["mutualaid"]
    engine = runtime.engine
    make_ready_claims(engine, runtime.catalogue, 300, members=30, today=runtime.today())
    errors: list[BaseException] = []

    def compact_repeatedly() -> None:
        try:
            for _ in range(8):
                with session_scope(engine) as session:
                    compact_claim_tally(session)
        except BaseException as error:  # reported by the test below
            errors.append(error)

    workers = [threading.Thread(target=compact_repeatedly) for _ in range(2)]
    for worker in workers:
        worker.start()
    for step in range(12):
        with session_scope(engine) as session:
            session.execute(sa.text("UPDATE claim SET state = :state WHERE id % 5 = :r"),
                            {"state": ["batched", "ready", "submitted"][step % 3],
                             "r": step % 5})
    for worker in workers:
        worker.join()
    assert errors == []
    assert tallied(engine) == counted(engine)


# --- any change, in any order ---------------------------------------------------------------


def _random_change(connection: sa.Connection, rng: random.Random, units: list[int]) -> None:
    """One set-based change of the claims, as bulk SQL would make it."""
    state, other = rng.sample(sorted(STATES), 2)
    r, k = rng.randrange(7), rng.choice([2, 3, 7])
    match rng.randrange(7):
        case 0:  # many claims into one state
            connection.execute(sa.text("UPDATE claim SET state = :s WHERE id % :k = :r"),
                               {"s": state, "k": k, "r": r % k})
        case 1:  # two states swapped: old and new rows cancel out per group
            connection.execute(sa.text(
                "UPDATE claim SET state = CASE WHEN state = :a THEN :b ELSE :a END "
                "WHERE state IN (:a, :b)"), {"a": state, "b": other})
        case 2:  # claims moved to another unit
            connection.execute(sa.text("UPDATE claim SET unit_id = :u WHERE id % :k = :r"),
                               {"u": rng.choice(units), "k": k, "r": r % k})
        case 3:  # no state moves: the version only
            connection.execute(sa.text("UPDATE claim SET version = version + 1 "
                                       "WHERE id % :k = :r"), {"k": k, "r": r % k})
        case 4:  # claims moved to another product (the app never does; bulk SQL might)
            connection.execute(sa.text("UPDATE claim SET product_code = :p WHERE id % :k = :r"),
                               {"p": rng.choice(["inpatient", "critical_illness"]), "k": k,
                                "r": r % k})
        case 5:  # some claims deleted
            connection.execute(sa.text("DELETE FROM claim WHERE id IN "
                                       "(SELECT id FROM claim ORDER BY id DESC LIMIT :n)"),
                               {"n": rng.randrange(1, 6)})
        case _:  # nothing matches
            connection.execute(sa.text("UPDATE claim SET state = :s WHERE id < 0"),
                               {"s": state})


def test_the_tally_equals_the_claims_counted_after_any_sequence_of_changes(app):
    runtime = app.extensions["mutualaid"]
    engine = runtime.engine
    units = [make_ready_claims(engine, runtime.catalogue, 60, members=10, prefix=f"T{i}-",
                               today=runtime.today()) for i in range(3)]
    rng = random.Random(20261126)
    for step in range(60):
        with engine.begin() as connection:
            _random_change(connection, rng, units)
        if rng.random() < 0.2:
            with session_scope(engine) as session:
                compact_claim_tally(session)
        assert tallied(engine) == counted(engine), f"step {step}"
    with session_scope(engine, write=False) as session:
        assert count_claims(session) == sum(counted(engine).values())
        assert count_claims(session, state="ready", unit_id=units[0]) == sum(
            n for (unit_id, state, _product), n in counted(engine).items()
            if (unit_id, state) == (units[0], "ready"))
        assert count_claims(session, product_code="critical_illness", state="ready") == sum(
            n for (_unit, state, product), n in counted(engine).items()
            if (state, product) == ("ready", "critical_illness"))


def test_a_rolled_back_change_leaves_the_tally_as_it_was(app, county):
    county.ready_claims(2)
    engine = engine_of(app)
    before = tally_rows(engine)
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(sa.text("UPDATE claim SET state = 'batched'"))
        transaction.rollback()
    assert tally_rows(engine) == before


# --- /metrics --------------------------------------------------------------------------------


def test_metrics_count_claims_by_state_right_after_changes(app, county, client, busy_county):
    listed = county.clerk.get(CLAIMS, query_string={"page_size": 100}).json
    expected = Counter(claim["state"] for claim in listed)
    samples = scrape(client)
    assert {state: samples[f'mutualaid_claims{{state="{state}"}}'] for state in STATES} == {
        state: expected[state] for state in STATES}
    assert expected["submitted"] == 5 and expected["ready"] == 1
    withdrawn = county.claim()["claim_no"]
    assert county.fire(withdrawn, "withdraw", reason="放弃").status_code == 200
    after = scrape(client)
    assert after['mutualaid_claims{state="withdrawn"}'] == expected["withdrawn"] + 1
    run_compaction(county)
    assert scrape(client)['mutualaid_claims{state="withdrawn"}'] == expected["withdrawn"] + 1


# --- the migration --------------------------------------------------------------------------


def database_at(kind: str, tmp_path: Path, revision: str) -> Iterator[str]:
    """A database of its own (SQLite or PostgreSQL) upgraded to `revision` only."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'before.db'}"
        upgrade(url, revision)
        yield url
        return
    assert POSTGRES_URL
    name = f"{sa.engine.make_url(POSTGRES_URL).database}_{revision[:4]}_{os.getpid()}"
    with scratch_postgres(POSTGRES_URL, name) as url:
        upgrade(url, revision)
        yield url


@pytest.fixture(params=DATABASES)
def database_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the revision before the tally."""
    yield from database_at(request.param, tmp_path, "0005_load_indexes")


def test_the_migration_counts_the_claims_already_there_and_downgrades_cleanly(
        database_at_0005: str):
    from alembic import command

    engine = make_engine(database_at_0005)
    try:
        unit = make_ready_claims(engine, load_catalogue(), 25, members=5)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE claim SET state = 'logged' WHERE id % 5 = 0"))
        upgrade(database_at_0005)
        assert tallied(engine) == counted(engine) == {(unit, "ready", "inpatient"): 20,
                                                      (unit, "logged", "inpatient"): 5}
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE claim SET state = 'withdrawn' WHERE id % 5 = 1"))
        assert tallied(engine) == counted(engine)
        command.downgrade(alembic_config(database_at_0005), "0005_load_indexes")
        with engine.begin() as connection:  # no trigger left writing into a missing table
            connection.execute(sa.text("UPDATE claim SET state = 'ready'"))
            connection.execute(sa.text("DELETE FROM claim WHERE id % 2 = 0"))
            assert "claim_tally" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture(params=DATABASES)
def database_at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with the tally by unit and state only."""
    yield from database_at(request.param, tmp_path, "0006_claim_tally")


def test_the_product_migration_counts_each_product_and_downgrades_to_unit_and_state(
        database_at_0006: str):
    from alembic import command

    engine = make_engine(database_at_0006)
    by_unit_and_state = ("SELECT unit_id, state, sum(n) FROM claim_tally "
                         "GROUP BY unit_id, state HAVING sum(n) <> 0")
    try:
        unit = make_ready_claims(engine, load_catalogue(), 30, members=5)
        with engine.begin() as connection:  # deltas by unit and state, not yet folded
            connection.execute(sa.text(
                "UPDATE claim SET product_code = 'critical_illness' WHERE id % 3 = 0"))
            connection.execute(sa.text("UPDATE claim SET state = 'logged' WHERE id % 5 = 0"))
        upgrade(database_at_0006)
        assert tallied(engine) == counted(engine)
        assert {unit_id for unit_id, _state, _product in tallied(engine)} == {unit}
        assert sum(n for (_u, _s, product), n in tallied(engine).items()
                   if product == "critical_illness") == 10
        with engine.begin() as connection:  # the new triggers follow a product's claims
            connection.execute(sa.text("UPDATE claim SET product_code = 'inpatient' "
                                       "WHERE id % 2 = 0"))
            connection.execute(sa.text("DELETE FROM claim WHERE id % 7 = 0"))
        assert tallied(engine) == counted(engine)
        command.downgrade(alembic_config(database_at_0006), "0006_claim_tally")
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE claim SET state = 'withdrawn' WHERE id % 4 = 0"))
            columns = {c["name"] for c in sa.inspect(connection).get_columns("claim_tally")}
            assert "product_code" not in columns
            assert {(u, s): n for u, s, n in connection.execute(sa.text(
                by_unit_and_state))} == {(u, s): n for u, s, n in connection.execute(sa.text(
                    "SELECT unit_id, state, count(*) FROM claim GROUP BY unit_id, state"))}
    finally:
        engine.dispose()

"""The claim tally (migrations 0006 and 0007): its table, indexes and triggers on `claim`,
for a given grouping.

A migration names the columns the tally keeps claims by (0006: unit and state; 0007: unit,
state and product); the table and the SQL follow from them, so both migrations and their
downgrades build the tally from one place. Never change what a grouping produces: an
applied migration must keep meaning what it did.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

NAMES = ("claim_tally_insert", "claim_tally_update", "claim_tally_delete")


def create_tally(columns: Sequence[str]) -> None:
    """claim_tally grouped by `columns`, its indexes and triggers, the claims there counted."""
    product = [sa.Column("product_code", sqlmodel.sql.sqltypes.AutoString(length=40),
                         nullable=False)] if "product_code" in columns else []
    op.create_table(
        "claim_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        *product,
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_claim_tally_state", "claim_tally", ["state"])
    op.create_index("ix_claim_tally_unit_state", "claim_tally", ["unit_id", "state"])
    if product:
        op.create_index("ix_claim_tally_product_state", "claim_tally",
                        ["product_code", "state"])
    create_triggers(columns)
    count_existing_claims(columns)


def drop_tally() -> None:
    """The triggers, then the table with its indexes."""
    drop_triggers()
    op.drop_table("claim_tally")


def _postgres(columns: Sequence[str]) -> dict[str, tuple[str, str]]:
    """name: (event and transition tables, the deltas the statement's rows make)."""
    by = ", ".join(columns)
    return {
        "claim_tally_insert": (
            "AFTER INSERT ON claim REFERENCING NEW TABLE AS new_rows",
            f"SELECT {by}, count(*) FROM new_rows GROUP BY {by}"),
        # A column list (UPDATE OF) is not allowed with transition tables: every UPDATE of
        # claims fires it, and writes nothing when no claim moved.
        "claim_tally_update": (
            "AFTER UPDATE ON claim REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
            f"SELECT {by}, sum(n) FROM ("
            f" SELECT {by}, -count(*) AS n FROM old_rows GROUP BY {by}"
            " UNION ALL"
            f" SELECT {by}, count(*) AS n FROM new_rows GROUP BY {by}"
            f") AS moved GROUP BY {by} HAVING sum(n) <> 0"),
        "claim_tally_delete": (
            "AFTER DELETE ON claim REFERENCING OLD TABLE AS old_rows",
            f"SELECT {by}, -count(*) FROM old_rows GROUP BY {by}"),
    }


def _sqlite(columns: Sequence[str]) -> dict[str, tuple[str, str]]:
    """name: (event, the row's +1 / -1 inserts)."""
    by = ", ".join(columns)

    def row(side: str, n: int) -> str:
        values = ", ".join(f"{side}.{column}" for column in columns)
        return f"INSERT INTO claim_tally ({by}, n) VALUES ({values}, {n});"

    moved = " OR ".join(f"old.{column} IS NOT new.{column}" for column in columns)
    return {
        "claim_tally_insert": ("AFTER INSERT ON claim", row("new", 1)),
        "claim_tally_update": (f"AFTER UPDATE OF {by} ON claim WHEN {moved}",
                               f"{row('old', -1)} {row('new', 1)}"),
        "claim_tally_delete": ("AFTER DELETE ON claim", row("old", -1)),
    }


def create_triggers(columns: Sequence[str]) -> None:
    """The triggers keeping claim_tally by `columns`: per statement on PostgreSQL (one row per
    group a statement touched), per row on SQLite."""
    if op.get_bind().dialect.name == "postgresql":
        for name, (when, deltas) in _postgres(columns).items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n  INSERT INTO claim_tally ({', '.join(columns)}, n) {deltas};\n"
                "  RETURN NULL;\nEND\n$$")
            op.execute(f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {name}()")
    else:
        for name, (when, body) in _sqlite(columns).items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def drop_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON claim" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def count_existing_claims(columns: Sequence[str]) -> None:
    """The claims already there, counted once; the triggers see every change after this."""
    by = ", ".join(columns)
    op.execute(f"INSERT INTO claim_tally ({by}, n) SELECT {by}, count(*) FROM claim "
               f"GROUP BY {by}")

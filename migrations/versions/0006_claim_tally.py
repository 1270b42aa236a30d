"""claim_tally: claims counted by unit and state, kept by triggers on `claim`

Revision ID: 0006_claim_tally
Revises: 0005_load_indexes
Create Date: 2026-11-26 10:00:00

`GET /api/v1/claims` answers an exact total in X-Pagination; counting a million claims took
7 ms on SQLite and 30-65 ms on PostgreSQL per page (docs/performance.md). The tally holds
deltas (unit_id, state, n) that triggers insert whenever claims are inserted, deleted or
change state or unit; the lists filtered only by state and unit (and /metrics) sum them.
The `compact_claim_counts` job folds the deltas into one row per unit and state.

- PostgreSQL: statement-level triggers with transition tables, each inserting the grouped
  deltas of the whole statement, so the weekly batch's one UPDATE of 100,000 claims writes
  a row per unit, not 200,000. (A column list, UPDATE OF, is not allowed with transition
  tables: every UPDATE of claims fires it, and writes nothing when no state moved.)
- SQLite: row-level triggers, +1 / -1 per claim.
Existing claims are counted once, grouped, in the same transaction.

On SQLite, a later migration altering `claim` through batch_alter_table (which copies the
table and drops the old one) drops these triggers with it: it must create them again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_claim_tally"
down_revision: str | None = "0005_load_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSTGRES_TRIGGERS = {
    # name: (event and transition tables, the deltas the statement's rows make)
    "claim_tally_insert": (
        "AFTER INSERT ON claim REFERENCING NEW TABLE AS new_rows",
        "SELECT unit_id, state, count(*) FROM new_rows GROUP BY unit_id, state"),
    "claim_tally_update": (
        "AFTER UPDATE ON claim REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT unit_id, state, sum(n) FROM ("
        " SELECT unit_id, state, -count(*) AS n FROM old_rows GROUP BY unit_id, state"
        " UNION ALL"
        " SELECT unit_id, state, count(*) AS n FROM new_rows GROUP BY unit_id, state"
        ") AS moved GROUP BY unit_id, state HAVING sum(n) <> 0"),
    "claim_tally_delete": (
        "AFTER DELETE ON claim REFERENCING OLD TABLE AS old_rows",
        "SELECT unit_id, state, -count(*) FROM old_rows GROUP BY unit_id, state"),
}

_SQLITE_TRIGGERS = {
    "claim_tally_insert": (
        "AFTER INSERT ON claim",
        "INSERT INTO claim_tally (unit_id, state, n) VALUES (new.unit_id, new.state, 1);"),
    "claim_tally_update": (
        "AFTER UPDATE OF state, unit_id ON claim "
        "WHEN old.state IS NOT new.state OR old.unit_id IS NOT new.unit_id",
        "INSERT INTO claim_tally (unit_id, state, n) VALUES (old.unit_id, old.state, -1);"
        " INSERT INTO claim_tally (unit_id, state, n) VALUES (new.unit_id, new.state, 1);"),
    "claim_tally_delete": (
        "AFTER DELETE ON claim",
        "INSERT INTO claim_tally (unit_id, state, n) VALUES (old.unit_id, old.state, -1);"),
}


def upgrade() -> None:
    op.create_table(
        "claim_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_claim_tally_state", "claim_tally", ["state"])
    op.create_index("ix_claim_tally_unit_state", "claim_tally", ["unit_id", "state"])
    if op.get_bind().dialect.name == "postgresql":
        for name, (when, deltas) in _POSTGRES_TRIGGERS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n  INSERT INTO claim_tally (unit_id, state, n) {deltas};\n"
                "  RETURN NULL;\nEND\n$$")
            op.execute(f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {name}()")
    else:
        for name, (when, body) in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    # The claims already there, counted once; the triggers see every change after this.
    op.execute("INSERT INTO claim_tally (unit_id, state, n) "
               "SELECT unit_id, state, count(*) FROM claim GROUP BY unit_id, state")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in _POSTGRES_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON claim" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_claim_tally_unit_state", table_name="claim_tally")
    op.drop_index("ix_claim_tally_state", table_name="claim_tally")
    op.drop_table("claim_tally")

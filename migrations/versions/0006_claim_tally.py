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

from migrations.claim_tally import create_tally, drop_tally

revision: str = "0006_claim_tally"
down_revision: str | None = "0005_load_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The grouping this revision created its triggers for (migrations/claim_tally.py).
COLUMNS = ("unit_id", "state")


def upgrade() -> None:
    create_tally(COLUMNS)


def downgrade() -> None:
    drop_tally()

"""claim_tally keeps claims by product too: the list's total by product_code without counting

Revision ID: 0007_claim_tally_product
Revises: 0006_claim_tally
Create Date: 2026-11-26 12:00:00

`GET /api/v1/claims?product_code=` counted its index range of the claim table for
X-Pagination's total: 134 ms on PostgreSQL with a million claims of one product
(docs/performance.md). The tally now holds (unit_id, state, product_code, n), so that total
is a sum of tally rows like the others. The tally is derived data: it is dropped and built
again from the claims, in this migration's transaction, with triggers grouping by product.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from migrations.tally_triggers import count_existing_claims, create_triggers, drop_triggers

revision: str = "0007_claim_tally_product"
down_revision: str | None = "0006_claim_tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("unit_id", "state", "product_code")
BEFORE = ("unit_id", "state")  # 0006's grouping, for the downgrade


def _build_tally(columns: Sequence[str]) -> None:
    """A new claim_tally grouped by `columns`, its triggers, and the claims there counted."""
    drop_triggers()
    op.drop_table("claim_tally")  # its indexes with it
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


def upgrade() -> None:
    _build_tally(COLUMNS)


def downgrade() -> None:
    _build_tally(BEFORE)

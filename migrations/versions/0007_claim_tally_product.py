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

from migrations.claim_tally import create_tally, drop_tally

revision: str = "0007_claim_tally_product"
down_revision: str | None = "0006_claim_tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("unit_id", "state", "product_code")
BEFORE = ("unit_id", "state")  # 0006's grouping, for the downgrade


def upgrade() -> None:
    drop_tally()
    create_tally(COLUMNS)


def downgrade() -> None:
    drop_tally()
    create_tally(BEFORE)

"""indexes for a million claims: the list by product and by batch newest first, the status
check by a beneficiary's ID number

Revision ID: 0005_load_indexes
Revises: 0004_reason_codes
Create Date: 2026-11-25 15:10:00

Found with `python -m bench load` (EXPLAIN of every endpoint's queries at 1,000,000 claims,
docs/performance.md):
- claim (product_code, id) replaces claim (product_code): `?product_code=` newest first reads
  one index range in order, and its count is an index-only scan;
- claim (batch_id, id) replaces claim (batch_id): `?batch_no=` newest first without a sort;
- claim (unit_id, state, id): a unit's claims in one state (unit staff filtering by state),
  listed newest first and counted from one index range;
- claim (beneficiary_id_number), partial (only death claims have one): the status check by
  ID number and name finds the claims naming the asker as beneficiary without a scan.
Building them on a million claims takes seconds and blocks writes to `claim` meanwhile.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_load_indexes"
down_revision: str | None = "0004_reason_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_BENEFICIARY = sa.text("beneficiary_id_number IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_claim_product_id", "claim", ["product_code", "id"])
    op.drop_index("ix_claim_product_code", table_name="claim")
    op.create_index("ix_claim_batch", "claim", ["batch_id", "id"])
    op.drop_index("ix_claim_batch_id", table_name="claim")
    op.create_index("ix_claim_unit_state", "claim", ["unit_id", "state", "id"])
    op.create_index("ix_claim_beneficiary", "claim", ["beneficiary_id_number"],
                    postgresql_where=_HAS_BENEFICIARY, sqlite_where=_HAS_BENEFICIARY)


def downgrade() -> None:
    op.drop_index("ix_claim_beneficiary", table_name="claim")
    op.drop_index("ix_claim_unit_state", table_name="claim")
    op.create_index("ix_claim_batch_id", "claim", ["batch_id"])
    op.drop_index("ix_claim_batch", table_name="claim")
    op.create_index("ix_claim_product_code", "claim", ["product_code"])
    op.drop_index("ix_claim_product_id", table_name="claim")

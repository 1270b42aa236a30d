"""coded reasons on claims and audit events; the day a claim was approved

Revision ID: 0004_reason_codes
Revises: 0003
Create Date: 2026-11-25 15:00:00

- claim.last_reason_code: the code (config/reasons.toml) of the claim's last reason;
- claim_event.reason_code: the code of a reject / return / request_materials event, so the
  reasons report counts them with one GROUP BY;
- claim.approved_on: the day (configured time zone) the city office's approval was recorded,
  so reconciliation finds "approved, no money after N days" without reading the audit trail.
  Existing approved claims take the date of their `approve` event (UTC date).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004_reason_codes"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claim") as batch_op:
        batch_op.add_column(sa.Column("last_reason_code",
                                      sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column("approved_on", sa.Date(), nullable=True))
    with op.batch_alter_table("claim_event") as batch_op:
        batch_op.add_column(sa.Column("reason_code",
                                      sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    day = "date(max(e.at))" if op.get_bind().dialect.name == "sqlite" else "max(e.at)::date"
    op.execute(
        "UPDATE claim SET approved_on = (SELECT " + day + " FROM claim_event e "
        "WHERE e.claim_id = claim.id AND e.event = 'approve') "
        "WHERE approved_amount IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("claim_event") as batch_op:
        batch_op.drop_column("reason_code")
    with op.batch_alter_table("claim") as batch_op:
        batch_op.drop_column("approved_on")
        batch_op.drop_column("last_reason_code")

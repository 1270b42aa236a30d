"""money columns as 64-bit integers (99,999,999.99 yuan is past a 32-bit integer of fen)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = {
    "claim": ("total_expense", "insurance_paid", "self_paid", "estimate", "approved_amount",
              "paid_amount"),
    "batch": ("total_claimed",),
    "remittance": ("total_amount",),
    "remittance_item": ("amount",),
}
NULLABLE = {"approved_amount", "paid_amount"}


def _retype(old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    for table, columns in MONEY.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=old, type_=new,
                                      existing_nullable=column in NULLABLE)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())

"""The digest of the manifest a batch's database wrote

Revision ID: 0011_manifest_digest
Revises: 0010_disability_assessed_on
Create Date: 2026-11-26 09:50:00

A manifest on disk is served only when it is the one this database wrote: after a restore
from backup, or with a manifest folder another database also writes, the file under a batch
number can hold other claims. Batches written before keep none (null: the file is trusted).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_manifest_digest"
down_revision: str | None = "0010_disability_assessed_on"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("batch", sa.Column("manifest_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch") as batch:
        batch.drop_column("manifest_digest")

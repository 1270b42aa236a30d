"""A claim's disability assessment date

Revision ID: 0010_disability_assessed_on
Revises: 0009_person_names
Create Date: 2026-11-26 07:20:00

SPEC §2 pays a disability grade assessed within 180 days of the accident (the accident
product's `disability_assessment_days`): the claim keeps the date on the assessment, so the
estimate and the clerk can tell. Claims logged before have none (null: not checked).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_disability_assessed_on"
down_revision: str | None = "0009_person_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("claim", sa.Column("disability_assessed_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("claim") as batch:
        batch.drop_column("disability_assessed_on")

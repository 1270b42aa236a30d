"""Unit codes upper-cased: the API now takes u001 and 'U001 ' as the unit U001

Revision ID: 0008_unit_codes_upper
Revises: 0007_claim_tally_product
Create Date: 2026-11-26 04:10:00

From this release a unit code is trimmed and upper-cased wherever it is typed (the API, the
console, the roster), and looked up so: a unit registered earlier as `u001` would no longer
be found. Each such code becomes upper case, unless the upper-case code is already another
unit's (t01 beside T01: two units a clerk told apart by case alone): those are left as
they are, for a clerk to rename, and the migration logs them.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("alembic.runtime.migration")

revision: str = "0008_unit_codes_upper"
down_revision: str | None = "0007_claim_tally_product"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Codes that differ from their upper case and share it with no other unit's code.
ALONE = ("code <> UPPER(code) AND (SELECT COUNT(*) FROM unit AS other "
         "WHERE UPPER(other.code) = UPPER(unit.code)) = 1")


def upgrade() -> None:
    connection = op.get_bind()
    clashes = connection.execute(sa.text(
        "SELECT code FROM unit WHERE code <> UPPER(code) AND NOT (" + ALONE + ")")).scalars()
    for code in clashes:
        log.warning("unit code %r left as it is: another unit's code differs only in case",
                    code)
    connection.execute(sa.text("UPDATE unit SET code = UPPER(code) WHERE " + ALONE))


def downgrade() -> None:
    """Nothing to undo: upper-case codes were valid before too."""

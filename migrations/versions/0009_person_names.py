"""Names compared without padding: 张　三 is 张三

Revision ID: 0009_person_names
Revises: 0008_unit_codes_upper
Create Date: 2026-11-26 07:10:00

From this release a person's name (a member, a death claim's beneficiary, a proxy) is kept
without the spaces a roster puts between Han characters to line names up (张　三), and
without doubled or surrounding spaces; the status check compares what a worker types the
same way. Names stored earlier with such spaces are rewritten so, or the worker typing 张三
would never find their claim. Only rows whose name holds a space are read.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_person_names"
down_revision: str | None = "0008_unit_codes_upper"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): every column holding a person's name as typed.
NAMES = (("member", "name"), ("claim", "beneficiary_name"), ("claim", "proxy_name"))
# Any whitespace a name could hold: ASCII spaces and tabs, the ideographic and no-break spaces.
SPACES = (" ", "\t", "\u3000", "\u00a0")


# claims.schemas.fields.normal_name as of this release, kept here so the migration stays what
# it was when later releases change the field.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_PADDING = re.compile(f"(?<=[{_HAN}])\\s+(?=[{_HAN}])")


def normal_name(text: str) -> str:
    return re.sub(r"\s+", " ", _PADDING.sub("", text)).strip()


def upgrade() -> None:
    connection = op.get_bind()
    for table, column in NAMES:
        names = sa.table(table, sa.column("id"), sa.column(column))
        named = names.c[column]
        rows = connection.execute(sa.select(names.c.id, named).where(
            sa.or_(*(named.contains(space) for space in SPACES))))
        changed = [{"row_id": row_id, "name": normal_name(name)} for row_id, name in rows
                   if normal_name(name) != name]
        if changed:
            connection.execute(sa.update(names).where(names.c.id == sa.bindparam("row_id"))
                               .values({column: sa.bindparam("name")}), changed)


def downgrade() -> None:
    """Nothing to undo: the names as rewritten were valid before too."""

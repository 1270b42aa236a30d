"""Names compared with one middle dot: 阿依古丽・买买提 is 阿依古丽·买买提

Revision ID: 0012_name_dots
Revises: 0011_manifest_digest
Create Date: 2026-11-26 12:30:00

From this release the dot between the parts of a transcribed name is kept as the one middle
dot (U+00B7), whichever a keyboard or roster gave (bullet, katakana middle dot, full-width
full stop, ...; an ASCII full stop between Han characters), without spaces around it; the
status check compares what a worker types the same way. Names stored earlier with another
dot are rewritten so, or the worker typing · would never find their claim. Only rows whose
name holds a dot are read.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_name_dots"
down_revision: str | None = "0011_manifest_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = (("member", "name"), ("claim", "beneficiary_name"), ("claim", "proxy_name"))
# claims.schemas.fields.normal_name as of this release, kept here so the migration stays what
# it was when later releases change the field.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_PADDING = re.compile(f"(?<=[{_HAN}])\\s+(?=[{_HAN}])")
_DOTS = "\u00b7\u2022\u30fb\u2027\u2219\uff65\u22c5\uff0e"
_NAME_DOTS = re.compile(f"\\s*[{_DOTS}]\\s*|(?<=[{_HAN}])\\s*\\.\\s*(?=[{_HAN}])")


def normal_name(text: str) -> str:
    text = _NAME_DOTS.sub("\u00b7", text)
    return re.sub(r"\s+", " ", _PADDING.sub("", text)).strip()


def upgrade() -> None:
    connection = op.get_bind()
    for table, column in NAMES:
        names = sa.table(table, sa.column("id"), sa.column(column))
        named = names.c[column]
        rows = connection.execute(sa.select(names.c.id, named).where(
            sa.or_(*(named.contains(dot) for dot in (*_DOTS, ".")))))
        changed = [{"row_id": row_id, "name": normal_name(name)} for row_id, name in rows
                   if normal_name(name) != name]
        if changed:
            connection.execute(sa.update(names).where(names.c.id == sa.bindparam("row_id"))
                               .values({column: sa.bindparam("name")}), changed)


def downgrade() -> None:
    """Nothing to undo: the names as rewritten were valid before too."""

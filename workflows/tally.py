"""The claim tally (claim_tally): exact claim counts by unit, state and product without
counting claims.

Triggers on `claim` (migrations 0006, 0007) insert a delta row for every change of a claim's
state, unit or product; a count is the sum of the matching deltas, and the
`compact_claim_counts` job folds them into one row per unit, state and product so that sum
stays short.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from claims.models import ClaimTally

_TALLY = ClaimTally.__table__  # type: ignore[attr-defined]
# What a row stands for: the claims of one unit in one state of one product.
_GROUP = (_TALLY.c.unit_id, _TALLY.c.state, _TALLY.c.product_code)

# One statement: under READ COMMITTED the DELETE takes only the rows of its snapshot, so a
# delta a concurrent claim change inserts meanwhile stays for the next run; a second
# compaction at the same time waits on the first's rows, finds them gone and skips them.
_COMPACT_POSTGRES = sa.text(
    "WITH gone AS (DELETE FROM claim_tally RETURNING unit_id, state, product_code, n) "
    "INSERT INTO claim_tally (unit_id, state, product_code, n) "
    "SELECT unit_id, state, product_code, sum(n) FROM gone "
    "GROUP BY unit_id, state, product_code HAVING sum(n) <> 0")


def count_claims(session: Session, *, state: str | None = None, unit_id: int | None = None,
                 product_code: str | None = None) -> int:
    """The exact number of claims in `state`, `unit_id` and `product_code` (each may be
    None: any)."""
    query = sa.select(sa.func.coalesce(sa.func.sum(_TALLY.c.n), 0))
    if state is not None:
        query = query.where(_TALLY.c.state == state)
    if unit_id is not None:
        query = query.where(_TALLY.c.unit_id == unit_id)
    if product_code is not None:
        query = query.where(_TALLY.c.product_code == product_code)
    return int(session.execute(query).scalar_one())


def claims_by_state(reads: Session | sa.Connection, *, unit_id: int | None = None
                    ) -> dict[str, int]:
    """The exact number of claims in each state (of one unit, if given); states with none
    may be missing."""
    query = sa.select(_TALLY.c.state, sa.func.sum(_TALLY.c.n)).group_by(_TALLY.c.state)
    if unit_id is not None:
        query = query.where(_TALLY.c.unit_id == unit_id)
    return {state: int(n) for state, n in reads.execute(query)}


def _row_count(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.count()).select_from(_TALLY)).scalar_one())


def _foldable(session: Session) -> bool:
    """Whether some group has several rows or a zero sum: work for the compaction."""
    groups = (sa.select(_TALLY.c.unit_id).group_by(*_GROUP)
              .having(sa.or_(sa.func.count() > 1, sa.func.sum(_TALLY.c.n) == 0)).limit(1))
    return session.execute(groups).first() is not None


def compact_claim_tally(session: Session) -> dict[str, int]:
    """Fold the tally's deltas into one row per unit, state and product, dropping zero sums."""
    before = _row_count(session)
    # An already compact tally is left as it is: a second run rewrites nothing.
    if not _foldable(session):
        return {"rows_before": before, "rows_after": before}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_COMPACT_POSTGRES)
    else:
        # SQLite has one writer at a time (the session began with BEGIN IMMEDIATE): the rows
        # up to today's last id are all there is, and nobody adds one until we commit.
        last = session.execute(sa.select(sa.func.max(_TALLY.c.id))).scalar_one()
        folded = sa.select(*_GROUP, sa.func.sum(_TALLY.c.n)).where(
            _TALLY.c.id <= last).group_by(*_GROUP).having(sa.func.sum(_TALLY.c.n) != 0)
        session.execute(sa.insert(_TALLY).from_select(
            [column.name for column in _GROUP] + ["n"], folded))
        session.execute(sa.delete(_TALLY).where(_TALLY.c.id <= last))
    return {"rows_before": before, "rows_after": _row_count(session)}

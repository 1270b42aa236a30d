"""Turnaround (办理时效): days from logging to the batch, from the batch to the city office's
decision, and from the money's arrival to its collection; median and 90th percentile, by the
ISO week in which each stage ended.

Days are calendar days in the configured time zone between the two audit events (ClaimEvent.at).
The database answers grouped counts (end day, days taken, how many); the percentiles are
computed here, since SQLite has no percentile function.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from claims.models import Claim, ClaimEvent
from workflows.report_sql import (
    Year,
    as_date,
    day_diff,
    dialect_of,
    local_date,
    percentile,
    prepare,
)


@dataclass(frozen=True)
class Stage:
    name: str
    label: str
    starts: tuple[str, ...]  # the latest of these events before the end starts the stage
    ends: tuple[str, ...]
    first_only: bool = False  # only the claim's first end event (a returned claim is resealed)


STAGES = (
    Stage("logging_to_batch", "登记到装批", ("log",), ("seal",), first_only=True),
    Stage("batch_to_decision", "装批到市总审核", ("seal",), ("approve", "reject", "return")),
    Stage("funds_to_collection", "到账到领取", ("receive_funds",), ("collect",)),
)


def _stage_counts(session: Session, stage: Stage, year: Year, unit_id: int | None,
                  ) -> list[tuple[Any, int, int]]:
    """(end day, days taken, how many) for the stage's ends in the year."""
    dialect, tz = dialect_of(session), year.tz
    end, start, earlier = aliased(ClaimEvent), aliased(ClaimEvent), aliased(ClaimEvent)
    started_at = (select(sa.func.max(start.at))
                  .where(start.claim_id == end.claim_id, start.id < end.id,
                         start.event.in_(stage.starts))  # type: ignore[attr-defined]
                  .correlate(end).scalar_subquery())
    conditions = [end.event.in_(stage.ends), end.at >= year.starts_at,  # type: ignore
                  end.at < year.ends_at]
    if stage.first_only:
        conditions.append(~sa.exists().where(earlier.claim_id == end.claim_id,
                                             earlier.id < end.id,
                                             earlier.event.in_(stage.ends)))  # type: ignore
    if unit_id is not None:
        conditions.append(sa.exists().where(Claim.id == end.claim_id, Claim.unit_id == unit_id))
    pairs = (select(end.at.label("ended_at"), started_at.label("started_at"))
             .where(*conditions).subquery())
    ended_on = local_date(pairs.c.ended_at, dialect, tz)
    days = day_diff(ended_on, local_date(pairs.c.started_at, dialect, tz), dialect)
    grouped = (select(ended_on.label("ended_on"), days.label("days"), sa.func.count())
               .where(pairs.c.started_at.is_not(None))
               .group_by(ended_on, days))
    return [(row[0], int(row[1]), int(row[2])) for row in session.execute(grouped)]


def _figures(counts: dict[int, int]) -> dict[str, Any]:
    return {"count": sum(counts.values()), "median_days": percentile(counts, 0.5),
            "p90_days": percentile(counts, 0.9)}


def turnaround(session: Session, year: Year, unit_id: int | None = None) -> dict[str, Any]:
    """Each stage's median and 90th percentile for the year and for each ISO week in it."""
    prepare(session, year.tz)
    stages: list[dict[str, Any]] = []
    for stage in STAGES:
        year_counts: dict[int, int] = defaultdict(int)
        weekly: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for ended_on, days, count in _stage_counts(session, stage, year, unit_id):
            iso_year, week, _ = as_date(ended_on).isocalendar()
            weekly[f"{iso_year}-W{week:02d}"][days] += count
            year_counts[days] += count
        stages.append({"stage": stage.name, "label": stage.label, **_figures(year_counts),
                       "weeks": [{"week": week, **_figures(weekly[week])}
                                 for week in sorted(weekly)]})
    return {"year": year.year, "stages": stages}

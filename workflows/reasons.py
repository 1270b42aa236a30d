"""Coded reasons on events (config/reasons.toml), and the report counting them.

Reject, return and request_materials take a `reason_code` beside the free-text `reason`:
a known code of a kind the event accepts, whose label stands in for a missing reason; free
text alone is kept under `other`. The claim keeps its last code, the audit event its own,
so the report is one GROUP BY over the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session

from claims.models import Claim, ClaimEvent, Unit
from claims.runtime import Runtime
from config.reasons import EVENT_KINDS, OTHER, ReasonTable, reason_table
from workflows.errors import FieldError, RuleFailed

if TYPE_CHECKING:
    from workflows.lifecycle import EventSpec
    from workflows.transitions import Firing

CODED_EVENTS = tuple(EVENT_KINDS)  # reject, return, request_materials


def reasons_of(runtime: Runtime) -> ReasonTable:
    """The reason table this runtime's settings name (reread when the file changes)."""
    return reason_table(runtime.settings.reasons_file)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_reason_code(table: ReasonTable, event: str, code: str,
                      field: str = "reason_code") -> str:
    """The code's label if `event` accepts it; else a 422 naming `field`."""
    reason = table.get(code)
    if reason is None:
        message = f"'{code}' is not a reason code (config/reasons.toml)."
        raise RuleFailed(message, [FieldError(field, "unknown_reason_code", message)])
    if reason.kind not in EVENT_KINDS.get(event, ()):
        message = (f"'{code}' ({reason.label}) is a {reason.kind} reason; {event} takes "
                   f"{', '.join(EVENT_KINDS.get(event, ()))} reasons.")
        raise RuleFailed(message, [FieldError(field, "wrong_reason_kind", message)])
    return reason.label


def with_reason_code(runtime: Runtime, spec: EventSpec, fields: dict[str, Any]) -> dict[str, Any]:
    """The event's fields with the reason code settled: checked, label as the reason when none
    was written, `other` for free text alone. Events without codes are left as they are."""
    if "reason_code" not in spec.optional:
        return fields
    code, reason = fields.get("reason_code"), fields.get("reason")
    if not _blank(code):
        label = check_reason_code(reasons_of(runtime), spec.name, str(code).strip())
        fields = {**fields, "reason_code": str(code).strip()}
        if _blank(reason):
            fields["reason"] = label
    elif not _blank(reason):
        fields = {**fields, "reason_code": OTHER}
    else:
        fields = {**fields, "reason_code": None}
    return fields


def record_reason_code(firing: Firing) -> None:
    """The claim keeps the code of its last reason; the audit payload names code and label."""
    spec, claim = firing.spec, firing.claim
    if "reason_code" in spec.optional:
        code = firing.fields.get("reason_code")
        claim.last_reason_code = code
        if code is not None:
            firing.payload = {**firing.payload, "reason_code": code,
                              "reason_label": reasons_of(firing.runtime).label_of(code)}
    elif "reason" in spec.required + spec.optional:
        claim.last_reason_code = None  # approve, withdraw: their reason is not coded


# --- the report ------------------------------------------------------------------------------


def _year_bounds(year: int, runtime: Runtime) -> tuple[datetime, datetime]:
    """The calendar year in the configured time zone, as UTC instants [start, end)."""
    tz = runtime.settings.tz
    start = datetime.combine(date(year, 1, 1), time(), tz)
    end = datetime.combine(date(year + 1, 1, 1), time(), tz)
    return start, end


def reason_counts(session: Session, runtime: Runtime, *, year: int,
                  unit_id: int | None = None, product_code: str | None = None
                  ) -> dict[str, Any]:
    """Reasons given in the year (configured time zone), counted per unit and per product."""
    start, end = _year_bounds(year, runtime)
    filters = [ClaimEvent.event.in_(CODED_EVENTS),  # type: ignore[attr-defined]
               ClaimEvent.reason_code.is_not(None),  # type: ignore[union-attr]
               ClaimEvent.at >= start, ClaimEvent.at < end]
    if unit_id is not None:
        filters.append(Claim.unit_id == unit_id)
    if product_code is not None:
        filters.append(Claim.product_code == product_code)
    query = (sa.select(Unit.code, Unit.name, Claim.product_code, ClaimEvent.reason_code,
                       sa.func.count())
             .select_from(ClaimEvent)
             .join(Claim, Claim.id == ClaimEvent.claim_id)
             .join(Unit, Unit.id == Claim.unit_id)
             .where(*filters)
             .group_by(Unit.code, Unit.name, Claim.product_code, ClaimEvent.reason_code))
    rows = session.execute(query).all()
    table, catalogue = reasons_of(runtime), runtime.catalogue

    def reason(code: str, count: int) -> dict[str, Any]:
        known = table.get(code)
        return {"code": code, "label": table.label_of(code),
                "kind": known.kind if known else None, "count": count}

    def grouped(keyed: Mapping[tuple[str, ...], dict[str, int]],
                names: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for key in sorted(keyed):
            counts = keyed[key]
            out.append({**dict(zip(names, key, strict=True)),
                        "total": sum(counts.values()),
                        "reasons": [reason(c, n) for c, n in
                                    sorted(counts.items(), key=lambda item: (-item[1], item[0]))]})
        return out

    by_unit: dict[tuple[str, ...], dict[str, int]] = {}
    by_product: dict[tuple[str, ...], dict[str, int]] = {}
    totals: dict[str, int] = {}
    for unit_code, unit_name, product, code, count in rows:
        for keyed, key in ((by_unit, (unit_code, unit_name)),
                           (by_product, (product, _product_name(catalogue, product)))):
            counts = keyed.setdefault(key, {})
            counts[code] = counts.get(code, 0) + int(count)
        totals[code] = totals.get(code, 0) + int(count)
    return {
        "year": year,
        "total": sum(totals.values()),
        "reasons": [reason(c, n) for c, n in
                    sorted(totals.items(), key=lambda item: (-item[1], item[0]))],
        "by_unit": grouped(by_unit, ("unit_code", "unit_name")),
        "by_product": grouped(by_product, ("product_code", "product_name")),
    }


def _product_name(catalogue: Any, code: str) -> str:
    product = catalogue.get(code)
    return product.name if product else code

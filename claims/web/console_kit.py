"""What the console's areas share: the county-staff check, paging a select(), error lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

import marshmallow as ma
import sqlalchemy as sa
from flask import abort, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from claims.api.base import flatten_messages, rows_of_page
from claims.idcard import mask
from claims.runtime import get_runtime, get_session
from claims.web.console import console
from claims.web.forms import Errors, chinese
from workflows.errors import DomainError, FieldError

F = TypeVar("F", bound=Callable[..., Any])
PAGE_SIZE = 20


def staff_only(view: F) -> F:
    """Batches, money and registering are county work (admin, clerk): unit staff get 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.actor.is_unit_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Paged:
    """One page of a query's rows, with what the pager needs."""

    rows: list[Any]
    total: int
    page: int
    pages: int
    filters: dict[str, str]

    def link(self, page: int) -> str:
        return "?" + urlencode({**self.filters, "page": page})


def paged(query: sa.Select[Any], filters: dict[str, str] | None = None,
          page_size: int = PAGE_SIZE, *, total: int | None = None,
          keyed: tuple[Any, sa.Select[Any]] | None = None) -> Paged:
    """Count (unless the total is known), then fetch the asked page (clamped to the pages
    there are); `keyed`, (key column, the rows' keys in order), counts and offsets over the
    keys alone (claims.api.base.rows_of_page)."""
    db = get_session()
    if total is None:
        counted = keyed[1] if keyed else query
        total = int(db.scalar(sa.select(sa.func.count()).select_from(
            counted.order_by(None).subquery())) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    first = (page - 1) * page_size
    on_page = (rows_of_page(query, *keyed, first, page_size) if keyed
               else query.offset(first).limit(page_size))
    rows = list(db.execute(on_page).all())
    return Paged(rows, total, page, pages, {k: v for k, v in (filters or {}).items() if v})


# Codes that mean something else in a list of rows than on a claim (verify's duplicate_claim).
ROW_MESSAGES: dict[str, Any] = {"duplicate_claim": _l("同一理赔在表中出现了两次"),
                                # a row's only list is the city office's 审核结果
                                "invalid_choice": _l("审核结果应为：核准、不予赔付或退回")}


def row_message(code: str, message: str) -> Any:
    """The message beside a row of a sheet or of the remittance form."""
    return ROW_MESSAGES.get(code) or chinese(code, message)


def row_errors(error: DomainError) -> Errors:
    """A refusal listing rows (decisions, remittance items), by field, in Chinese."""
    errors: Errors = {}
    for failure in error.errors or [FieldError(None, error.code, error.message)]:
        errors.setdefault(failure.field or "_form", []).append(
            row_message(failure.code, failure.message))
    return errors


def schema_field_errors(error: ma.ValidationError) -> Errors:
    """marshmallow's nested messages by dotted field (items.0.amount), in Chinese where known."""
    errors: Errors = {}
    for item in flatten_messages(error.messages):
        errors.setdefault(item["field"] or "_form", []).append(
            chinese(item["code"], item["message"], item["field"]))
    return errors



@console.app_template_filter("local")
def local_time(stamp: datetime | None) -> str:
    """A stored UTC stamp on the county's clock."""
    return stamp.astimezone(get_runtime().settings.tz).strftime("%Y-%m-%d %H:%M") if stamp else ""




# The scheduled work that fires events itself (claims.auth.system_actor: "job:<name>"), as the
# audit trail names it to a clerk.
SYSTEM_ACTORS: dict[str, Any] = {
    "weekly_batch": _l("每周批次"), "transmission": _l("清单传送"),
    "dispatch_notifications": _l("发送通知"),
}


@console.app_template_filter("actor")
def actor_name(actor: str) -> str:
    """Who fired an audit event: the staff user's name, or the system's job in words."""
    if actor.startswith("job:"):
        job = actor.removeprefix("job:")
        return str(_("系统（%(job)s）", job=SYSTEM_ACTORS.get(job, job)))
    return actor


@console.app_template_filter("masked")
def masked(id_number: str | None) -> str:
    """An ID number as pages may show it: first 6 and last 4 around 8 `*`."""
    return mask(id_number) or ""


@console.errorhandler(403)
def _forbidden(_error: Exception) -> tuple[str, int]:
    return render_template("console/error.html", title=_("无权操作"),
                           message=_("此页面供县总工会工作人员使用。")), 403

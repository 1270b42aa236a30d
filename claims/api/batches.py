"""Weekly batches to the city office: list, show, run now, manifest download, deliver.

A batch mixes every unit's claims, so batch calls are for county staff (admin, clerk);
unit staff see their own claims' batch number and state through /claims.
"""

from __future__ import annotations

from typing import Any

from flask import Response, send_file
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import STAFF_ONLY, current_actor
from claims.models import Batch
from claims.runtime import get_runtime, get_session
from claims.schemas.batches import (
    BatchEventInSchema,
    BatchQuerySchema,
    BatchRunInSchema,
    BatchSchema,
    ManifestQuerySchema,
)
from workflows.batch import (
    DELIVER,
    deliver_batch,
    lock_batches,
    manifest_to_download,
    run_weekly_batch,
    totals_by_state,
)
from workflows.errors import FieldError, RuleFailed
from workflows.transmission import XLSX_TYPE

blp = Blueprint("batches", __name__, url_prefix="/api/v1/batches",
                description="Weekly batches to the city office")

# Text types without a charset: werkzeug appends "; charset=utf-8" to every text/* mimetype.
MANIFEST_TYPES = {"xlsx": XLSX_TYPE, "csv": "text/csv", "cover": "text/html"}
_BATCH_FIELDS = ("batch_no", "week", "claim_count", "total_claimed", "sealed_at", "delivered_at",
                 "manifest_written_at", "transmission", "transmission_state",
                 "transmission_attempts", "transmission_error", "transmission_next_try_at",
                 "transmitted_at", "overdue_flagged_at")


def batch_view(batch: Batch, by_state: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """The batch as the API shows it; totals by claim state when given (the show page)."""
    view: dict[str, Any] = {name: getattr(batch, name) for name in _BATCH_FIELDS}
    link = f"/api/v1/batches/{batch.batch_no}/manifest?format="
    view["manifest"] = {kind: link + kind for kind in ("xlsx", "csv", "cover")}
    if by_state is not None:
        view["totals_by_state"] = by_state
    return view


def load_batch(batch_no: str) -> Batch:
    batch = get_session().exec(select(Batch).where(Batch.batch_no == batch_no)).first()
    if batch is None:
        abort(404, message="No such batch.")
    return batch


class BatchPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        return [batch_view(batch) for batch in super().items]


@blp.route("")
class BatchesView(MethodView):
    @STAFF_ONLY
    @blp.arguments(BatchQuerySchema, location="query")
    @blp.response(200, BatchSchema(many=True))
    @blp.paginate(BatchPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """List batches, newest first, by week or whether delivered."""
        query = select(Batch)
        if "week" in filters:
            query = query.where(Batch.week == filters["week"])
        if "delivered" in filters:
            delivered = Batch.delivered_at.is_not(None)  # type: ignore[union-attr]
            query = query.where(delivered if filters["delivered"] else ~delivered)
        return Listing(get_session(), query.order_by(Batch.id.desc()))  # type: ignore[union-attr]

    @STAFF_ONLY
    @blp.arguments(BatchRunInSchema)
    @blp.response(201, BatchSchema)
    @blp.alt_response(200, schema=BatchSchema,
                      description='Nothing was ready: {"batch_no": null, "claim_count": 0, ...}')
    def post(self, _body: dict[str, Any]) -> Any:
        """Run the weekly batch now: seal the ready claims, write the manifest, transmit it."""
        # The run commits step by step in its own transactions: end the request's first
        # (on SQLite it would otherwise hold the write lock the run needs).
        get_session().commit()
        summary = run_weekly_batch(get_runtime(), current_actor())
        if summary["batch_no"] is None:
            return {"batch_no": None, "claim_count": 0, "total_claimed": 0}, 200
        batch = load_batch(summary["batch_no"])
        assert batch.id is not None
        view = batch_view(batch, totals_by_state(get_session(), batch.id))
        return view | {"sealed": summary["sealed"]}, 201


@blp.route("/<string:batch_no>")
class BatchView(MethodView):
    @STAFF_ONLY
    @blp.response(200, BatchSchema)
    def get(self, batch_no: str) -> Any:
        """One batch with its transmission and its claims' totals by state."""
        batch = load_batch(batch_no)
        assert batch.id is not None
        return batch_view(batch, totals_by_state(get_session(), batch.id))


@blp.route("/<string:batch_no>/manifest")
class ManifestView(MethodView):
    @STAFF_ONLY
    @blp.arguments(ManifestQuerySchema, location="query")
    @blp.response(200, description="The manifest: XLSX, CSV (UTF-8 with BOM) or the "
                                   "printable HTML cover sheet")
    def get(self, query: dict[str, Any], batch_no: str) -> Response:
        """Download the batch's manifest (报送清单), written first if it is missing."""
        files = manifest_to_download(get_runtime(), load_batch(batch_no))
        kind = query["format"]
        path = {"xlsx": files.xlsx, "csv": files.csv, "cover": files.cover}[kind]
        response = send_file(path, mimetype=MANIFEST_TYPES[kind], as_attachment=kind != "cover",
                             download_name=path.name, max_age=0)
        response.headers["Cache-Control"] = "no-store"  # names every claimant of the batch
        return response


@blp.route("/<string:batch_no>/events")
class BatchEventsView(MethodView):
    @STAFF_ONLY
    @blp.arguments(BatchEventInSchema)
    @blp.response(200, BatchSchema)
    @blp.alt_response(409, description="The batch was delivered already")
    @blp.alt_response(422, description="Not a batch event (batches take `deliver`)")
    def post(self, fields: dict[str, Any], batch_no: str) -> Any:
        """Record a batch event: `deliver` moves the batch and every claim in it to submitted."""
        if fields["event"] != DELIVER.name:
            message = f"'{fields['event']}' is not a batch event; batches take 'deliver'."
            raise RuleFailed(message, [FieldError("event", "unknown_event", message)])
        session = get_session()
        lock_batches(session)  # never while a run seals into it (a sending holds no lock)
        batch = load_batch(batch_no)
        deliver_batch(session, batch, current_actor())
        session.commit()
        assert batch.id is not None
        return batch_view(batch, totals_by_state(session, batch.id))

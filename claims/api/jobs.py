"""Scheduled jobs and their runs: list the jobs, run one now, read the JobRun records."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from flask_smorest import Page, abort
from sqlmodel import select

from claims.api.base import Blueprint, Listing, SelectPage
from claims.api.security import STAFF_ONLY
from claims.models import JobRun
from claims.runtime import get_runtime, get_session
from claims.schemas.common import InputSchema, QuerySchema
from claims.schemas.fields import Text
from workflows.jobs import JOBS, job_overview, run_job

blp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs",
                description="Scheduled jobs and their runs")


OUTCOMES = ("running", "ok", "failed", "abandoned")
TRIGGERS = ("schedule", "manual")


class JobRunSchema(ma.Schema):
    id = ma.fields.Integer()
    job = ma.fields.String()
    trigger = ma.fields.String(metadata={"enum": list(TRIGGERS)})
    scheduled_for = ma.fields.AwareDateTime(allow_none=True)
    started_at = ma.fields.AwareDateTime()
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    outcome = ma.fields.String(metadata={
        "enum": list(OUTCOMES), "description": "abandoned: the process running it stopped, a "
                                               "later start found it unfinished"})
    summary = ma.fields.Dict()


class JobScheduleSchema(ma.Schema):
    cron = ma.fields.Dict(metadata={"description": "APScheduler cron fields"})
    timezone = ma.fields.String()
    next_run_at = ma.fields.AwareDateTime(allow_none=True)


class JobSchema(ma.Schema):
    name = ma.fields.String()
    description = ma.fields.String()
    schedule = ma.fields.Nested(JobScheduleSchema, allow_none=True)
    enabled = ma.fields.Boolean()
    last_run = ma.fields.Nested(JobRunSchema, allow_none=True)


class JobRunInSchema(InputSchema):
    """No fields yet: a run takes no parameters (unknown fields answer 422)."""


class JobRunQuerySchema(QuerySchema):
    job = Text()
    outcome = ma.fields.String(validate=ma.validate.OneOf(OUTCOMES))
    trigger = ma.fields.String(validate=ma.validate.OneOf(TRIGGERS))


@blp.route("")
class JobsView(MethodView):
    @STAFF_ONLY
    @blp.arguments(QuerySchema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate(Page)  # a handful, paginated like every list (§7)
    def get(self, _filters: dict[str, Any]) -> Any:
        """Every job: its schedule, whether it is enabled, its last run."""
        return job_overview(get_session(), current_app.extensions["mutualaid.schedules"])


@blp.route("/runs")
class JobRunsView(MethodView):
    @STAFF_ONLY
    @blp.arguments(JobRunQuerySchema, location="query")
    @blp.response(200, JobRunSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, filters: dict[str, Any]) -> Any:
        """The runs of every job, newest first; filter by job, outcome or trigger."""
        query = select(JobRun)
        for name in ("job", "outcome", "trigger"):
            if name in filters:
                query = query.where(getattr(JobRun, name) == filters[name])
        return Listing(get_session(), query.order_by(JobRun.id.desc()))  # type: ignore[union-attr]


@blp.route("/runs/<int:run_id>")
class JobRunView(MethodView):
    @STAFF_ONLY
    @blp.response(200, JobRunSchema)
    @blp.alt_response(404, description="No such job run")
    def get(self, run_id: int) -> Any:
        """One run of a job."""
        run = get_session().get(JobRun, run_id)
        if run is None:
            abort(404, message="No such job run.")
        return run


@blp.route("/<string:job>/runs")
class JobRunNowView(MethodView):
    @STAFF_ONLY
    @blp.arguments(JobRunInSchema)
    @blp.response(200, JobRunSchema)
    @blp.alt_response(404, description="No such job")
    def post(self, _body: dict[str, Any], job: str) -> Any:
        """Run a job now (as the scheduler would); the JobRun says how it went."""
        if job not in JOBS:
            abort(404, message=f"No job named {job}.")
        # The job commits in its own transactions: end the request's (on SQLite it would
        # hold the write lock the job's first transaction waits for).
        get_session().commit()
        return run_job(get_runtime(), job, trigger="manual")

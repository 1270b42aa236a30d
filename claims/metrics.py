"""Prometheus /metrics: requests and their latency counted in each process, the claims,
job runs and outbox counted in the database at each scrape.

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (docs/operations.md): each
worker then writes its counters to files there and a scrape of any worker adds them up.
The database figures are read once per scrape, so they are never added up across workers.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import flask
import sqlalchemy as sa
from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from claims.logs import path_template
from claims.models import JobRun, Notification
from claims.runtime import Runtime

if TYPE_CHECKING:
    from workflows.jobs import Schedule

# Module-level: one set per process, however many apps the process builds (tests build many).
REQUESTS = Counter("mutualaid_http_requests", "HTTP requests answered, by URL rule and status",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("mutualaid_http_request_duration_seconds",
                    "Time to answer an HTTP request, by URL rule", ["method", "endpoint"],
                    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10))
OUTBOX_STATES = ("pending", "failed")
# JobRun.outcome: "running" until the run ends as one of these (workflows/jobs.py).
RUNNING = "running"
FINISHED_OUTCOMES = ("ok", "failed", "abandoned")


class DatabaseCollector:
    """Claims by state (from the claim tally), job runs by outcome, the outbox backlog: one
    GROUP BY each."""

    def __init__(self, runtime: Runtime, schedules: Mapping[str, Schedule] | None = None) -> None:
        self.runtime = runtime
        self.schedules = schedules or {}

    def collect(self) -> Iterator[Metric]:
        from workflows.jobs import JOBS
        from workflows.lifecycle import STATES
        from workflows.tally import claims_by_state

        with self.runtime.engine.connect() as connection:
            # The tally's few rows (workflows/tally.py), not a GROUP BY over every claim.
            by_state = claims_by_state(connection)
            runs = connection.execute(
                sa.select(JobRun.job, JobRun.outcome, sa.func.count(),
                          sa.func.max(JobRun.finished_at))
                .group_by(JobRun.job, JobRun.outcome)).all()
            outbox = dict(connection.execute(
                sa.select(Notification.state, sa.func.count())
                .where(Notification.state.in_(OUTBOX_STATES))  # type: ignore[attr-defined]
                .group_by(Notification.state)).all())
        claims = GaugeMetricFamily("mutualaid_claims", "Claims in each state", labels=["state"])
        for state in STATES:
            claims.add_metric([state], by_state.get(state, 0))
        yield claims
        yield from self._job_metrics(runs, known=JOBS)
        backlog = GaugeMetricFamily("mutualaid_outbox_messages",
                                    "Notifications not sent yet (pending) or given up (failed)",
                                    labels=["state"])
        for state in OUTBOX_STATES:
            backlog.add_metric([state], outbox.get(state, 0))
        yield backlog

    def _job_metrics(self, runs: Sequence[sa.Row[Any]],
                     known: Iterable[str]) -> Iterator[Metric]:
        """Every known job (enabled or not) has a series in each family, zero until it has
        figures, so an alert on an absent success fires and rate() sees the first run."""
        # A running run is a gauge, not a counter's outcome: it moves to ok, failed or
        # abandoned, and a counter series must never go down or vanish.
        finished: dict[tuple[str, str], int] = {}
        running: dict[str, int] = {}
        last_ok: dict[str, float] = {}
        for job, outcome, count, finished_at in runs:
            if outcome == RUNNING:
                running[job] = count
                continue
            finished[job, outcome] = count
            if outcome == "ok" and finished_at is not None:
                last_ok[job] = _timestamp(finished_at)
        # Jobs on record but no longer registered (renamed, removed) keep their series.
        jobs = sorted(set(known) | {job for job, *_ in runs})
        outcomes = sorted(set(FINISHED_OUTCOMES) | {outcome for _, outcome in finished})
        counted = CounterMetricFamily("mutualaid_job_runs", "Finished job runs on record, by "
                                      "outcome (ok, failed, abandoned)", labels=["job", "outcome"])
        failures = CounterMetricFamily("mutualaid_job_failures", "Job runs that failed",
                                       labels=["job"])
        last = GaugeMetricFamily("mutualaid_job_last_success_timestamp_seconds",
                                 "When the job last finished without error, 0 if it never did",
                                 labels=["job"])
        in_progress = GaugeMetricFamily("mutualaid_jobs_running", "Job runs started and not "
                                        "finished yet", labels=["job"])
        enabled = GaugeMetricFamily("mutualaid_job_enabled", "1 if the schedules file runs the "
                                    "job, 0 if it is disabled or has no schedule", labels=["job"])
        for job in jobs:
            for outcome in outcomes:
                counted.add_metric([job, outcome], finished.get((job, outcome), 0))
            failures.add_metric([job], finished.get((job, "failed"), 0))
            last.add_metric([job], last_ok.get(job, 0))
            in_progress.add_metric([job], running.get(job, 0))
            schedule = self.schedules.get(job)
            enabled.add_metric([job], int(schedule is not None and schedule.enabled))
        yield from (counted, failures, last, in_progress, enabled)


def _timestamp(value: object) -> float:
    if isinstance(value, str):  # SQLite's max() hands back the stored text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def scrape(runtime: Runtime, schedules: Mapping[str, Schedule] | None = None) -> bytes:
    """The exposition text: this process's (or every worker's) counters, then the database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process = CollectorRegistry()
        MultiProcessCollector(process)
    else:
        process = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(runtime, schedules))
    return generate_latest(process) + generate_latest(database)


def init_metrics(app: Flask) -> None:
    """Count every request by URL rule; serve GET /metrics (a bearer token if one is set)."""

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: flask.Response) -> flask.Response:
        endpoint = path_template()
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics() -> flask.Response:
        from claims.api.base import error_response

        runtime: Runtime = app.extensions["mutualaid"]
        token = runtime.settings.metrics_token
        if token:
            given = request.headers.get("Authorization", "").partition(" ")[2].strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                response = error_response(401, "GET /metrics needs the metrics token.")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        schedules = app.extensions.get("mutualaid.schedules")
        response = flask.Response(scrape(runtime, schedules), mimetype=None)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response

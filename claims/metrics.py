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
from collections.abc import Iterator
from datetime import UTC, datetime

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

# Module-level: one set per process, however many apps the process builds (tests build many).
REQUESTS = Counter("mutualaid_http_requests", "HTTP requests answered, by URL rule and status",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("mutualaid_http_request_duration_seconds",
                    "Time to answer an HTTP request, by URL rule", ["method", "endpoint"],
                    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10))
OUTBOX_STATES = ("pending", "failed")


class DatabaseCollector:
    """Claims by state (from the claim tally), job runs by outcome, the outbox backlog: one
    GROUP BY each."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
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
        counted = CounterMetricFamily("mutualaid_job_runs", "Job runs on record, by outcome "
                                      "(running, ok, failed, abandoned)", labels=["job", "outcome"])
        failures = CounterMetricFamily("mutualaid_job_failures", "Job runs that failed",
                                       labels=["job"])
        last = GaugeMetricFamily("mutualaid_job_last_success_timestamp_seconds",
                                 "When the job last finished without error", labels=["job"])
        for job, outcome, count, finished in runs:
            counted.add_metric([job, outcome], count)
            if outcome == "failed":
                failures.add_metric([job], count)
            if outcome == "ok" and finished is not None:
                last.add_metric([job], _timestamp(finished))
        yield from (counted, failures, last)
        backlog = GaugeMetricFamily("mutualaid_outbox_messages",
                                    "Notifications not sent yet (pending) or given up (failed)",
                                    labels=["state"])
        for state in OUTBOX_STATES:
            backlog.add_metric([state], outbox.get(state, 0))
        yield backlog


def _timestamp(value: object) -> float:
    if isinstance(value, str):  # SQLite's max() hands back the stored text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def scrape(runtime: Runtime) -> bytes:
    """The exposition text: this process's (or every worker's) counters, then the database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process = CollectorRegistry()
        MultiProcessCollector(process)
    else:
        process = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(runtime))
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
        response = flask.Response(scrape(runtime), mimetype=None)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response

"""Issue 7 observability: Prometheus /metrics and JSON log lines with request ids."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from claims.db import session_scope
from claims.models import JobRun, Notification
from workflows.jobs import JOBS


def scrape(client, **headers) -> dict[str, float]:
    """GET /metrics as {'name{label="v",...}': value}."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_metrics_count_claims_by_state_from_the_database(county, client):
    ready = county.ready_claims(2)
    county.claim()
    county.fire(ready[0], "withdraw", reason="重复登记")
    samples = scrape(client)
    assert samples['mutualaid_claims{state="logged"}'] == 1
    assert samples['mutualaid_claims{state="ready"}'] == 1
    assert samples['mutualaid_claims{state="withdrawn"}'] == 1
    assert samples['mutualaid_claims{state="collected"}'] == 0  # every state, zero too


def test_metrics_count_requests_by_url_rule_and_status_with_latency(county, client):
    claim_no = county.claim()["claim_no"]
    key = ('mutualaid_http_requests_total{endpoint="/api/v1/claims/<string:claim_no>",'
           'method="GET",status="200"}')
    missing = key.replace('status="200"', 'status="404"')
    before = scrape(client)
    county.clerk.get(f"/api/v1/claims/{claim_no}")
    county.clerk.get(f"/api/v1/claims/{claim_no}")
    county.clerk.get("/api/v1/claims/LP2000-999999")
    after = scrape(client)
    assert after[key] - before.get(key, 0) == 2
    assert after[missing] - before.get(missing, 0) == 1
    count = ('mutualaid_http_request_duration_seconds_count{'
             'endpoint="/api/v1/claims/<string:claim_no>",method="GET"}')
    assert after[count] - before.get(count, 0) == 3
    # One series per URL rule, never per claim number.
    assert not [name for name in after if claim_no in name]


def test_metrics_show_job_runs_failures_and_the_outbox_backlog(app, county, client):
    engine = app.extensions["mutualaid"].engine
    with session_scope(engine) as session:
        session.add_all([JobRun(job="weekly_batch", trigger="schedule", outcome="ok"),
                         JobRun(job="weekly_batch", trigger="schedule", outcome="failed"),
                         JobRun(job="flag_overdue", trigger="manual", outcome="failed")])
        session.add_all([Notification(recipient_kind="unit", channel="smtp", template="t",
                                      payload={}, state=state)
                         for state in ("pending", "pending", "failed", "sent")])
    samples = scrape(client)
    assert samples['mutualaid_job_runs_total{job="weekly_batch",outcome="ok"}'] == 1
    assert samples['mutualaid_job_failures_total{job="weekly_batch"}'] == 1
    assert samples['mutualaid_job_failures_total{job="flag_overdue"}'] == 1
    assert samples['mutualaid_outbox_messages{state="pending"}'] == 2
    assert samples['mutualaid_outbox_messages{state="failed"}'] == 1


def test_every_known_job_has_a_last_success_and_zero_counts_before_it_ever_ran(client):
    samples = scrape(client)
    assert JOBS  # the registry is filled when workflows.jobs is imported
    for job in JOBS:  # `time() - last_success > 86400` fires for a job that never ran
        assert samples[f'mutualaid_job_last_success_timestamp_seconds{{job="{job}"}}'] == 0
        assert samples[f'mutualaid_job_failures_total{{job="{job}"}}'] == 0
        assert samples[f'mutualaid_jobs_running{{job="{job}"}}'] == 0
        for outcome in ("ok", "failed", "abandoned"):
            assert samples[f'mutualaid_job_runs_total{{job="{job}",outcome="{outcome}"}}'] == 0


def test_the_last_success_is_when_the_job_last_finished_ok(app, client):
    finished = datetime(2026, 11, 23, 1, 0, 5, tzinfo=UTC)
    with session_scope(app.extensions["mutualaid"].engine) as session:
        session.add_all([
            JobRun(job="weekly_batch", outcome="ok", finished_at=finished),
            JobRun(job="weekly_batch", outcome="failed", finished_at=datetime.now(UTC))])
    samples = scrape(client)
    assert samples['mutualaid_job_last_success_timestamp_seconds{job="weekly_batch"}'] == (
        finished.timestamp())
    assert samples['mutualaid_job_last_success_timestamp_seconds{job="reconcile"}'] == 0


def test_a_running_job_is_a_gauge_never_an_outcome_of_the_runs_counter(app, client):
    engine = app.extensions["mutualaid"].engine
    with session_scope(engine) as session:
        run = JobRun(job="reconcile", trigger="manual")  # outcome "running", as run_job adds it
        session.add(run)
    during = scrape(client)
    assert not [name for name in during if 'outcome="running"' in name]
    assert during['mutualaid_jobs_running{job="reconcile"}'] == 1
    assert during['mutualaid_job_runs_total{job="reconcile",outcome="ok"}'] == 0
    with session_scope(engine) as session:
        stored = session.get(JobRun, run.id)
        stored.outcome, stored.finished_at = "ok", datetime.now(UTC)
        session.add(stored)
    after = scrape(client)
    assert after['mutualaid_jobs_running{job="reconcile"}'] == 0
    assert after['mutualaid_job_runs_total{job="reconcile",outcome="ok"}'] == 1
    assert time.time() - after[
        'mutualaid_job_last_success_timestamp_seconds{job="reconcile"}'] < 600


def test_disabled_and_unscheduled_jobs_are_exported_and_marked_not_enabled(app, client):
    schedules = dict(app.extensions["mutualaid.schedules"])
    schedules["reconcile"] = dataclasses.replace(schedules["reconcile"], enabled=False)
    del schedules["prepare_visits"]  # no table in the county's schedules file
    app.extensions["mutualaid.schedules"] = schedules
    samples = scrape(client)
    assert samples['mutualaid_job_enabled{job="weekly_batch"}'] == 1
    assert samples['mutualaid_job_enabled{job="reconcile"}'] == 0
    assert samples['mutualaid_job_enabled{job="prepare_visits"}'] == 0
    for job in ("reconcile", "prepare_visits"):
        assert samples[f'mutualaid_job_last_success_timestamp_seconds{{job="{job}"}}'] == 0


def test_metric_families_have_their_declared_kinds(client):
    answer = client.get("/metrics").get_data(as_text=True)
    kinds = {family.name: family.type for family in text_string_to_metric_families(answer)}
    assert {name: kinds[name] for name in (
        "mutualaid_job_runs", "mutualaid_job_failures",
        "mutualaid_job_last_success_timestamp_seconds", "mutualaid_jobs_running",
        "mutualaid_job_enabled")} == {
        "mutualaid_job_runs": "counter", "mutualaid_job_failures": "counter",
        "mutualaid_job_last_success_timestamp_seconds": "gauge",
        "mutualaid_jobs_running": "gauge", "mutualaid_job_enabled": "gauge"}


def test_metrics_need_the_token_when_one_is_set(app, client):
    app.extensions["mutualaid"].settings.metrics_token = "scrape-secret"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.json["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scrape(client, Authorization="Bearer scrape-secret")


def test_metrics_add_up_the_workers_of_a_multiprocess_server(tmp_path, database_url):
    """With PROMETHEUS_MULTIPROC_DIR (gunicorn workers), a scrape sums every process."""
    child = (
        "import sys\n"
        "from pathlib import Path\n"
        "from claims.app import create_app\n"
        "app = create_app({'database_url': sys.argv[1], 'instance_path': Path(sys.argv[2]),"
        " 'secret_key': 'x'})\n"
        "client = app.test_client()\n"
        "client.get('/healthz')\n"
        "print(client.get('/metrics').get_data(as_text=True))\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    outputs = [subprocess.run([sys.executable, "-c", child, database_url, str(tmp_path)],
                              env=env, capture_output=True, text=True, check=True).stdout
               for _ in range(2)]
    pattern = re.compile(r'^mutualaid_http_requests_total\{endpoint="/healthz",method="GET",'
                         r'status="200"\} (\S+)$', re.M)
    assert [float(pattern.search(out).group(1)) for out in outputs] == [1.0, 2.0]


def test_log_lines_are_json_with_the_request_id_taken_or_made(app, county, client, capfd):
    capfd.readouterr()
    given = client.get("/api/v1/products", headers={
        "X-Request-ID": "trace-42", "Authorization": f"Bearer {county.clerk.token}"})
    made = client.get("/api/v1/claims/LP2000-999999",
                      headers={"Authorization": f"Bearer {county.clerk.token}"})
    assert given.headers["X-Request-ID"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    odd = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert odd.headers["X-Request-ID"] != "bad id <script>"
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    access = {line["request_id"]: line for line in lines if line["logger"] == "mutualaid.access"}
    line = access["trace-42"]
    assert line["level"] == "INFO" and line["method"] == "GET" and line["status"] == 200
    assert line["path"] == "/api/v1/products" and isinstance(line["duration_ms"], float)
    assert {"time", "message"} <= set(line)
    missing = access[made.headers["X-Request-ID"]]
    assert missing["status"] == 404 and missing["path"] == "/api/v1/claims/<string:claim_no>"


def test_every_request_id_answered_is_found_in_the_log_as_answered(client, capfd):
    capfd.readouterr()
    # An id carrying an ID number would be logged masked: it is replaced, not echoed.
    carried = client.get("/healthz", headers={"X-Request-ID": "ticket-110101199003077777"})
    assert "110101199003077777" not in carried.headers["X-Request-ID"]
    answered = [carried.headers["X-Request-ID"]]
    answered += [client.get("/healthz").headers["X-Request-ID"] for _ in range(300)]
    logged = {json.loads(line)["request_id"] for line in capfd.readouterr().err.splitlines()
              if line.strip()}
    assert set(answered) <= logged


def test_a_made_request_id_never_looks_like_an_id_number(monkeypatch):
    from claims import logs

    # One uuid in a couple of thousand has 18 digits in a row; here the first two do.
    made = iter(["ab" + "1" * 18 + "cdefabcdefab", "9abc" + "1" * 18 + "def0123456",
                 "0123456789abcdef" * 2])
    monkeypatch.setattr(logs.uuid, "uuid4", lambda: type("U", (), {"hex": next(made)})())
    assert logs.new_request_id() == "0123456789abcdef" * 2


@pytest.mark.parametrize("log_format", ["text"])
def test_text_logs_when_asked(tmp_path, database_url, log_format):
    child = (
        "import sys\n"
        "from pathlib import Path\n"
        "from claims.app import create_app\n"
        "app = create_app({'database_url': sys.argv[1], 'instance_path': Path(sys.argv[2]),"
        " 'secret_key': 'x'})\n"
        "app.test_client().get('/healthz', headers={'X-Request-ID': 'abc'})\n"
    )
    env = {"MUTUALAID_LOG_FORMAT": log_format, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", child, database_url, str(tmp_path)],
                            env=env, capture_output=True, text=True, check=True)
    assert re.search(r"INFO mutualaid\.access \[abc\] GET /healthz 200", result.stderr)

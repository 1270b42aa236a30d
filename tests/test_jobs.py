"""SPEC §4 jobs run by hand: JobRun records through the API and the CLI, schedules, /readyz."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from claims.app import create_app
from claims.db import session_scope
from claims.models import Batch, Claim, JobRun, SchedulerLease
from config.settings import Settings
from workflows.jobs import JOBS, ScheduleError, load_schedules

JOBS_URL = "/api/v1/jobs"
MUTUALAID = Path(sys.executable).with_name("mutualaid")


def engine_of(app):
    return app.extensions["mutualaid"].engine


def states(app) -> list[str]:
    with session_scope(engine_of(app), write=False) as session:
        return sorted(session.exec(select(Claim.state)).all())


def batch_count(app) -> int:
    with session_scope(engine_of(app), write=False) as session:
        return len(session.exec(select(Batch)).all())


def run_now(api, job: str = "weekly_batch", body: Any = None) -> Any:
    return api.post(f"{JOBS_URL}/{job}/runs", {} if body is None else body)


@pytest.fixture
def failing_job(monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered job that fails the way a job can: with an ID number in its message."""

    def always_fails(_runtime: Any) -> dict[str, Any]:
        raise ValueError("member 110101199003077777 has no enrolment")

    monkeypatch.setitem(JOBS, "always_fails", always_fails)
    return "always_fails"


def test_running_the_weekly_batch_through_the_api_records_an_ok_run_with_the_sealed_count(
        app, county):
    county.ready_claims(2)
    answer = run_now(county.clerk)
    assert answer.status_code == 200, answer.json
    run = answer.json
    assert set(run) == {"id", "job", "trigger", "scheduled_for", "started_at", "finished_at",
                        "outcome", "summary"}
    assert (run["job"], run["trigger"], run["outcome"]) == ("weekly_batch", "manual", "ok")
    assert run["summary"]["sealed"] == 2 and run["summary"]["batch_transmission"] == "sent"
    assert run["scheduled_for"] is None and run["finished_at"] >= run["started_at"]
    assert states(app) == ["batched", "batched"] and batch_count(app) == 1
    shown = county.admin.get(f"{JOBS_URL}/runs/{run['id']}")
    assert shown.status_code == 200 and shown.json == run


def test_running_the_weekly_batch_twice_seals_nothing_the_second_time(app, county):
    county.ready_claims(2)
    first, second = run_now(county.clerk).json, run_now(county.clerk).json
    assert first["summary"]["sealed"] == 2
    assert second["outcome"] == "ok" and second["summary"]["sealed"] == 0
    assert states(app) == ["batched", "batched"] and batch_count(app) == 1


def test_a_failing_job_records_a_failed_run_naming_the_error_without_the_id_number(
        app, county, failing_job):
    answer = run_now(county.clerk, failing_job)
    assert answer.status_code == 200, answer.json
    assert answer.json["outcome"] == "failed" and answer.json["finished_at"]
    assert answer.json["summary"] == {
        "error": "ValueError", "message": "member 110101********7777 has no enrolment"}
    with session_scope(engine_of(app), write=False) as session:
        stored = session.exec(select(JobRun)).one()
    assert stored.outcome == "failed" and "199003077777" not in json.dumps(stored.summary)


def test_job_runs_are_listed_newest_first_and_filtered_by_job(county, failing_job):
    run_now(county.clerk)
    run_now(county.clerk, failing_job)
    run_now(county.clerk)
    answer = county.clerk.get(f"{JOBS_URL}/runs", query_string={"page_size": 2})
    assert answer.status_code == 200
    assert json.loads(answer.headers["X-Pagination"])["total"] == 3
    ids = [run["id"] for run in answer.json]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2
    mine = county.clerk.get(f"{JOBS_URL}/runs", query_string={"job": failing_job}).json
    assert [run["outcome"] for run in mine] == ["failed"]
    failed = county.clerk.get(f"{JOBS_URL}/runs", query_string={"outcome": "failed"}).json
    assert [run["job"] for run in failed] == [failing_job]


def test_the_job_list_shows_each_schedule_and_last_run(county):
    run_now(county.clerk)
    jobs = {job["name"]: job for job in county.admin.get(JOBS_URL).json}
    assert {"weekly_batch", "transmit_batches"} <= set(jobs)
    weekly = jobs["weekly_batch"]
    assert weekly["enabled"] is True
    assert weekly["schedule"]["cron"] == {"day_of_week": "mon", "hour": 9, "minute": 0}
    assert weekly["schedule"]["timezone"] == "Asia/Shanghai"
    assert datetime.fromisoformat(weekly["schedule"]["next_run_at"]).weekday() == 0
    assert weekly["last_run"]["outcome"] == "ok" and weekly["last_run"]["trigger"] == "manual"
    assert jobs["transmit_batches"]["schedule"]["cron"] == {"minute": "*/5"}


def test_the_job_list_is_paginated_like_every_list(county):
    everything = county.admin.get(JOBS_URL).json
    answer = county.admin.get(JOBS_URL, query_string={"page": 2, "page_size": 2})
    assert answer.json == everything[2:4]
    assert json.loads(answer.headers["X-Pagination"])["total"] == len(everything)
    assert county.admin.get(JOBS_URL, query_string={"name": "x"}).status_code == 422


def test_jobs_are_for_admins_and_clerks_only(county, client):
    unit = county.unit()
    staff = county.unit_staff(unit["code"])
    assert staff.get(JOBS_URL).status_code == 403
    assert run_now(staff).status_code == 403
    assert staff.get(f"{JOBS_URL}/runs").status_code == 403
    answer = client.post(f"{JOBS_URL}/weekly_batch/runs", json={})
    assert answer.status_code == 401 and answer.json["code"] == "unauthorized"
    assert client.get(JOBS_URL).status_code == 401


def test_running_an_unknown_job_or_with_unknown_fields_is_refused(county):
    answer = run_now(county.clerk, "make_coffee")
    assert answer.status_code == 404 and answer.json["code"] == "not_found"
    answer = run_now(county.clerk, body={"when": "now"})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json["errors"]] == ["when"]
    assert county.clerk.get(f"{JOBS_URL}/runs/999").status_code == 404
    assert county.clerk.get(f"{JOBS_URL}/runs").json == []


def test_the_cli_runs_a_job_and_exits_1_when_it_failed(app, county, runner, failing_job):
    county.ready_claims(1)
    result = runner.invoke(args=["jobs", "run", "weekly_batch"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["outcome"] == "ok" and printed["summary"]["sealed"] == 1
    result = runner.invoke(args=["jobs", "run", failing_job])
    assert result.exit_code == 1
    assert json.loads(result.output)["summary"]["error"] == "ValueError"
    result = runner.invoke(args=["jobs", "run", "make_coffee"])
    assert result.exit_code == 2 and "no job named 'make_coffee'" in result.output
    listing = runner.invoke(args=["jobs", "list"]).output
    assert "weekly_batch" in listing and "day_of_week=mon hour=9 minute=0" in listing


def test_the_mutualaid_command_runs_a_job_in_its_own_process(app, county, database_url,
                                                              tmp_path):
    county.ready_claims(1)
    env = os.environ | {"MUTUALAID_DATABASE_URL": database_url,
                        "MUTUALAID_INSTANCE_PATH": str(tmp_path), "MUTUALAID_SECRET_KEY": "t" * 32}
    done = subprocess.run([str(MUTUALAID), "jobs", "run", "weekly_batch"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["sealed"] == 1
    assert states(app) == ["batched"]
    with session_scope(engine_of(app), write=False) as session:
        run = session.exec(select(JobRun)).one()
    host, pid = run.runner.rsplit(":", 1)
    assert run.trigger == "manual" and run.outcome == "ok"
    assert host and pid.isdigit() and int(pid) != os.getpid()


def write_schedules(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    return Settings(instance_path=tmp_path, database_url="sqlite://", secret_key="t",
                    schedules_file=str(path))


@pytest.mark.parametrize(("text", "message"), [
    ("[make_coffee]\nhour = 9\n", "[make_coffee] names no job; the jobs are: "),
    ("[weekly_batch]\nhour = 9\nminutes = 5\n", "[weekly_batch] unknown key 'minutes'"),
    ("[weekly_batch]\nhour = 25\n", "[weekly_batch]"),
    ("[weekly_batch]\nenabled = true\n", "[weekly_batch] has no cron field"),
    ("[weekly_batch]\nhour = 9\nenabled = 'yes'\n", "enabled must be true or false"),
    ("weekly_batch = 9\n", "must be a table"),
])
def test_a_bad_schedules_file_stops_the_start_with_a_clear_message(tmp_path, text, message):
    settings = write_schedules(tmp_path, text)
    with pytest.raises(ScheduleError) as raised:
        load_schedules(settings)
    assert message in str(raised.value) and str(tmp_path) in str(raised.value)


def test_an_app_with_a_schedules_file_naming_an_unknown_job_does_not_start(tmp_path):
    settings = write_schedules(tmp_path, "[make_coffee]\nhour = 9\n")
    with pytest.raises(ScheduleError, match="make_coffee"):
        create_app({"database_url": f"sqlite:///{tmp_path / 'x.db'}", "instance_path": tmp_path,
                    "secret_key": "t", "schedules_file": settings.schedules_file})


def test_a_countys_schedules_file_without_a_new_job_says_so_at_start(tmp_path, caplog):
    # A copy made before the release that added prune_tokens (03:15 daily).
    settings = write_schedules(tmp_path, "[weekly_batch]\nday_of_week = 'mon'\nhour = 9\n"
                                         "[prune_tokens]\nenabled = false\nhour = 3\n")
    with caplog.at_level(logging.WARNING, logger="mutualaid.jobs"):
        schedules = load_schedules(settings)
    assert set(schedules) == {"weekly_batch", "prune_tokens"}
    warned = [r.getMessage() for r in caplog.records if "has no [" in r.getMessage()]
    assert any("[dispatch_notifications]" in line for line in warned)
    assert not any("[prune_tokens]" in line or "[weekly_batch]" in line for line in warned)
    chase = next(line for line in warned if "[chase_materials]" in line)
    assert "hour=9, minute=30" in chase and str(tmp_path) in chase


def test_the_last_fire_time_is_the_latest_scheduled_time_at_or_before_now(tmp_path):
    settings = write_schedules(tmp_path, "[weekly_batch]\nday_of_week = 'mon'\nhour = 9\n")
    weekly = load_schedules(settings)["weekly_batch"]
    shanghai = settings.tz
    monday_9 = datetime(2026, 11, 23, 9, 0, tzinfo=shanghai)
    wednesday = datetime(2026, 11, 25, 14, 0, tzinfo=shanghai)
    assert weekly.previous_fire_time(wednesday) == monday_9
    assert weekly.previous_fire_time(monday_9) == monday_9
    assert weekly.previous_fire_time(monday_9 - timedelta(seconds=1)) == monday_9 - timedelta(7)
    often = load_schedules(write_schedules(tmp_path, "[weekly_batch]\nsecond = '*/2'\n"))
    now = datetime(2026, 11, 25, 6, 0, 5, 300_000, tzinfo=UTC)
    assert often["weekly_batch"].previous_fire_time(now) == now.replace(second=4, microsecond=0)


def set_heartbeat(app, age: timedelta | None) -> None:
    with session_scope(engine_of(app)) as session:
        lease = session.get(SchedulerLease, "scheduler")
        if lease is not None:
            session.delete(lease)
            session.flush()
        if age is not None:
            at = datetime.now(UTC) - age
            session.add(SchedulerLease(name="scheduler", holder="host:1", acquired_at=at,
                                       heartbeat_at=at))


def test_readyz_needs_a_fresh_scheduler_heartbeat(app, client):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json["checks"] == {"database": "ok", "scheduler": "missing"}
    set_heartbeat(app, timedelta(seconds=2))
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "ready" and answer.json["checks"]["scheduler"] == "ok"
    set_heartbeat(app, timedelta(seconds=31))
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json["checks"]["scheduler"] == "stale"


def test_readyz_can_leave_the_scheduler_out(database_url, tmp_path):
    app = create_app({"database_url": database_url, "instance_path": tmp_path,
                      "secret_key": "t", "readyz_require_scheduler": False})
    try:
        answer = app.test_client().get("/readyz")
        assert answer.status_code == 200 and answer.json["checks"] == {"database": "ok"}
    finally:
        app.extensions["mutualaid"].engine.dispose()


def test_prune_outbox_removes_old_notices_and_keeps_the_rest(app, county):
    outbox = app.extensions["mutualaid"].settings.instance_path / "outbox"
    for _ in range(2):
        claim = county.claim(documents=["claim_form"])
        assert county.fire(claim["claim_no"], "request_materials").status_code == 200
    assert run_now(county.clerk, "dispatch_notifications").status_code == 200
    notices = sorted((outbox / "unit").glob("*.txt"))
    assert len(notices) == 2
    assert all(path.stat().st_mode & 0o777 == 0o640 for path in notices)  # names a worker
    old, recent = notices
    aged = (datetime.now(UTC) - timedelta(days=91)).timestamp()
    os.utime(old, (aged, aged))
    manifest = outbox / "city" / "2020-W01" / "manifest.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("kept")
    os.utime(manifest, (aged, aged))
    run = run_now(county.clerk, "prune_outbox")
    assert run.status_code == 200 and run.json["summary"]["removed"] == 1
    assert not old.exists() and recent.exists() and manifest.exists()
    assert run_now(county.clerk, "prune_outbox").json["summary"]["removed"] == 0  # twice: same

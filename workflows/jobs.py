"""The scheduled jobs (SPEC §4): each a plain function, safe to run twice; their schedules
come from config/schedules.toml and every run is recorded as a JobRun."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session, select

from claims import auth
from claims.auth import system_actor
from claims.db import session_scope
from claims.idcard import mask
from claims.models import JobRun
from claims.runtime import Runtime
from config.settings import PROJECT_ROOT, Settings
from workflows import channels, reminders, tally, visits
from workflows import reconcile as reconciliation
from workflows.batch import run_weekly_batch, transmit_due_batches
from workflows.notify import dispatch_due

log = logging.getLogger("mutualaid.jobs")

JobFunction = Callable[[Runtime], dict[str, Any]]
# A run still `running` after this long is taken as dead, whatever host ran it.
ABANDON_AFTER = timedelta(hours=24)
ABANDONED = "abandoned"
# Every job by name. Adding one: a function decorated with @job here, and a table with its
# name in config/schedules.toml.
JOBS: dict[str, JobFunction] = {}

DEFAULT_SCHEDULES_FILE = PROJECT_ROOT / "config" / "schedules.toml"
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
# An 18-character resident ID number anywhere in an error message: masked before it is kept.
_ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


def job(function: JobFunction) -> JobFunction:
    """Register a job under its function's name."""
    JOBS[function.__name__] = function
    return function


@job
def weekly_batch(runtime: Runtime) -> dict[str, Any]:
    """Seal every ready claim into this week's batch, write its manifest, transmit it."""
    return dict(run_weekly_batch(runtime, system_actor("weekly_batch")))


@job
def transmit_batches(runtime: Runtime) -> dict[str, Any]:
    """Retry the manifest transmissions that failed and are due again."""
    return dict(transmit_due_batches(runtime))


@job
def dispatch_notifications(runtime: Runtime) -> dict[str, Any]:
    """Send due outbox messages; a sent payout notice moves its claim to notified."""
    return dispatch_due(runtime).as_dict()


@job
def remind_uncollected(runtime: Runtime) -> dict[str, Any]:
    """Remind unit unions of money notified but not collected after 14 days."""
    return reminders.remind_uncollected(runtime)


@job
def chase_materials(runtime: Runtime) -> dict[str, Any]:
    """Remind unit unions of claims waiting for materials for more than 30 days."""
    return reminders.chase_materials(runtime)


@job
def flag_overdue(runtime: Runtime) -> dict[str, Any]:
    """Flag batches submitted over 30 days ago with claims still undecided."""
    return reminders.flag_overdue(runtime)


@job
def compact_claim_counts(runtime: Runtime) -> dict[str, Any]:
    """Fold the claim tally's deltas into one row per unit and state: the lists' totals."""
    with session_scope(runtime.engine) as session:
        return tally.compact_claim_tally(session)


@job
def prune_tokens(runtime: Runtime) -> dict[str, Any]:
    """Delete sign-in tokens that ended (expired or revoked) over 30 days ago."""
    with session_scope(runtime.engine) as session:
        return {"pruned": auth.prune_tokens(session, datetime.now(UTC))}


@job
def prune_outbox(runtime: Runtime) -> dict[str, Any]:
    """Remove notices written to the file outbox over MUTUALAID_OUTBOX_KEEP_DAYS ago."""
    days = runtime.settings.outbox_keep_days
    if days == 0:
        return {"removed": 0, "kept": "all (MUTUALAID_OUTBOX_KEEP_DAYS=0)"}
    outbox = runtime.settings.instance_path / "outbox"
    return {"removed": channels.prune_notices(outbox, days * 86_400, time.time()),
            "older_than_days": days}


@job
def prepare_visits(runtime: Runtime) -> dict[str, Any]:
    """Two weeks before Spring Festival or Mid-Autumn, write the holiday-visit list, once."""
    return visits.prepare_visits(runtime)


@job
def reconcile(runtime: Runtime) -> dict[str, Any]:
    """Reconcile every claim, batch and remittance to the fen; list the discrepancies."""
    # Reads only (no write lock on SQLite), so a rerun, or two at once, changes nothing.
    with session_scope(runtime.engine, write=False) as session:
        return reconciliation.summary(reconciliation.reconcile(session, runtime))


class UnknownJob(LookupError):
    """No job has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no job named {name!r}; the jobs are: {', '.join(sorted(JOBS))}")
        self.name = name


def runner_name() -> str:
    """host:pid of this process, as JobRun.runner and the scheduler lease record it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def describe_error(error: BaseException) -> str:
    """The error's message for logs and JobRun summaries: no SQL parameters, no ID numbers."""
    orig = getattr(error, "orig", None)  # SQLAlchemy: the driver's message, without parameters
    text = str(orig if orig is not None else error).strip().splitlines()
    return _mask_ids(text[0] if text else "")[:300]


def _mask_ids(text: str) -> str:
    return _ID_NUMBER.sub(lambda m: mask(m.group()) or "", text)


def _jsonable(summary: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(summary, default=str))
    return data if isinstance(data, dict) else {"result": data}


def run_job(runtime: Runtime, name: str, *, trigger: str = "manual",
            scheduled_for: datetime | None = None) -> JobRun:
    """Run one job now, recorded as a JobRun committed before and after the job's own work."""
    function = JOBS.get(name)
    if function is None:
        raise UnknownJob(name)
    run = JobRun(job=name, trigger=trigger, scheduled_for=scheduled_for, runner=runner_name())
    with session_scope(runtime.engine) as session:
        session.add(run)
    log.info("job started job=%s trigger=%s run=%s", name, trigger, run.id)
    try:
        summary, outcome = _jsonable(function(runtime)), "ok"
    except Exception as error:  # a job's failure is recorded, never lost with the process
        summary = {"error": type(error).__name__, "message": describe_error(error)}
        outcome = "failed"
        log.error("job failed job=%s run=%s error=%s message=%s\n%s", name, run.id,
                  summary["error"], summary["message"],
                  _mask_ids("".join(traceback.format_tb(error.__traceback__)).rstrip()))
    with session_scope(runtime.engine) as session:
        stored = session.get(JobRun, run.id)
        assert stored is not None
        stored.outcome, stored.summary, stored.finished_at = outcome, summary, datetime.now(UTC)
        session.add(stored)
        session.flush()
        run = stored
    log.info("job finished job=%s run=%s outcome=%s summary=%s", name, run.id, outcome,
             json.dumps(summary, ensure_ascii=False))
    return run


class ScheduleError(ValueError):
    """The schedules file is not valid; the message names the file, the job and the key."""


@dataclass(frozen=True)
class Schedule:
    """When one job runs: cron fields in the configured time zone."""

    job: str
    cron: dict[str, int | str]
    enabled: bool
    trigger: CronTrigger

    def describe(self) -> dict[str, Any]:
        """The schedule as the API and CLI show it."""
        upcoming = self.trigger.get_next_fire_time(None, datetime.now(self.trigger.timezone))
        return {"cron": dict(self.cron), "timezone": str(self.trigger.timezone),
                "next_run_at": upcoming if self.enabled else None}

    def previous_fire_time(self, now: datetime) -> datetime | None:
        """The latest time at or before `now` when the job was due, if any in the last year."""
        lookback = timedelta(minutes=1)
        while lookback <= timedelta(days=800):
            fire = self.trigger.get_next_fire_time(None, now - lookback)
            if fire is not None and fire <= now:
                while True:
                    after = self.trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                    if after is None or after > now:
                        return fire
                    fire = after
            lookback *= 2
        return None


def _read_schedules(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ScheduleError(f"{path}: cannot read the schedules: {error}") from None


def load_schedules(settings: Settings) -> dict[str, Schedule]:
    """Read the schedules file; raises ScheduleError naming the job and key at fault."""
    path = Path(settings.schedules_file or DEFAULT_SCHEDULES_FILE)
    data = _read_schedules(path)
    if path != DEFAULT_SCHEDULES_FILE:
        _warn_of_jobs_left_out(path, data)
    schedules = {}
    for name, table in data.items():
        where = f"{path}: [{name}]"
        if name not in JOBS:
            raise ScheduleError(f"{where} names no job; the jobs are: {', '.join(sorted(JOBS))}")
        if not isinstance(table, dict):
            raise ScheduleError(f"{where} must be a table of cron fields")
        unknown = sorted(set(table) - set(CRON_FIELDS) - {"enabled"})
        if unknown:
            raise ScheduleError(f"{where} unknown key {unknown[0]!r}; "
                                f"use enabled and cron fields {', '.join(CRON_FIELDS)}")
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ScheduleError(f"{where} enabled must be true or false")
        cron = {key: table[key] for key in CRON_FIELDS if key in table}
        if not cron:
            raise ScheduleError(f"{where} has no cron field")
        for key, value in cron.items():
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ScheduleError(f"{where} {key} must be a number or a cron string")
        try:
            trigger = CronTrigger(timezone=settings.tz, **cron)
        except ValueError as error:
            raise ScheduleError(f"{where} {error}") from None
        schedules[name] = Schedule(job=name, cron=cron, enabled=enabled, trigger=trigger)
    return schedules


def _warn_of_jobs_left_out(path: Path, data: dict[str, Any]) -> None:
    """A county's own schedules file, copied before a release added a job, leaves that job
    unscheduled: say so at every start (the job is not quietly lost) until the file names it,
    if only with `enabled = false`."""
    defaults = _read_schedules(DEFAULT_SCHEDULES_FILE)
    for name in sorted(set(defaults) - set(data)):
        cron = ", ".join(f"{key}={value}" for key, value in defaults[name].items()
                         if key != "enabled")
        log.warning("schedules: %s has no [%s] table, so the job does not run; this release "
                    "schedules it at %s (config/schedules.toml): add the table, or one with "
                    "enabled = false to keep it off", path, name, cron)


def last_scheduled_for(session: Session, name: str) -> datetime | None:
    """The fire time of the newest scheduled run of the job on record (an abandoned run does
    not count: its fire time runs again)."""
    query = sa.select(sa.func.max(JobRun.scheduled_for)).where(
        JobRun.job == name, JobRun.trigger == "schedule", JobRun.outcome != ABANDONED)
    value = session.execute(query).scalar()
    if isinstance(value, datetime) and value.tzinfo is None:  # max() bypasses the column type
        value = value.replace(tzinfo=UTC)
    return value


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def abandon_dead_runs(session: Session, *, now: datetime | None = None) -> list[JobRun]:
    """Mark `abandoned` the runs left `running` by a process that is gone: one of this host
    whose pid no longer runs, or any older than ABANDON_AFTER. Their work was all or nothing
    per step and every job is idempotent, so the next run (a scheduled one catches its fire
    time up) finishes what they started, once."""
    now = now or datetime.now(UTC)
    host = socket.gethostname()
    abandoned = []
    for run in session.exec(select(JobRun).where(JobRun.outcome == "running")).all():
        runner_host, _, pid = (run.runner or "").rpartition(":")
        started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
        gone = runner_host == host and pid.isdigit() and not _process_alive(int(pid))
        if gone or now - started > ABANDON_AFTER:
            run.outcome, run.finished_at = ABANDONED, now
            run.summary = {"error": "abandoned",
                           "message": f"the process running it ({run.runner}) stopped"}
            session.add(run)
            abandoned.append(run)
            log.warning("job run abandoned job=%s run=%s runner=%s", run.job, run.id, run.runner)
    return abandoned


def latest_run(session: Session, name: str) -> JobRun | None:
    """The job's newest run, by hand or by the scheduler."""
    return session.exec(select(JobRun).where(JobRun.job == name)
                        .order_by(JobRun.id.desc())).first()  # type: ignore[union-attr]


def job_overview(session: Session, schedules: dict[str, Schedule]) -> list[dict[str, Any]]:
    """Each job with its schedule, whether it is enabled and its last run."""
    overview = []
    for name, function in sorted(JOBS.items()):
        schedule = schedules.get(name)
        overview.append({
            "name": name,
            "description": (function.__doc__ or "").strip(),
            "schedule": schedule.describe() if schedule else None,
            "enabled": bool(schedule and schedule.enabled),
            "last_run": latest_run(session, name),
        })
    return overview

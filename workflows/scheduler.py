"""APScheduler wiring: one active scheduler per database (a leader lock), the others stand
by; the active one keeps the heartbeat /readyz reads and catches up a run it missed."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from flask import Flask

from claims.db import make_engine, session_scope, write_intent
from claims.runtime import Runtime
from config.settings import check_scheduler_timing
from workflows.jobs import (
    Schedule,
    abandon_dead_runs,
    describe_error,
    last_scheduled_for,
    run_job,
    runner_name,
)
from workflows.leader import Leader, PostgresLeader, SqliteLeader

log = logging.getLogger("mutualaid.scheduler")

JOBSTORE_TABLE = "apscheduler_jobs"

# The app of this process: job targets take only the job's name (APScheduler pickles them).
_process_app: Flask | None = None
_embedded: threading.Thread | None = None
_job_locks: dict[str, threading.Lock] = {}
# One active service per process: two in one process would share the holder name (host:pid).
_active_in_process = threading.Lock()


def _app() -> Flask:
    global _process_app
    if _process_app is None:
        from claims.app import create_app

        _process_app = create_app({"embed_scheduler": False})
    return _process_app


def run_scheduled_job(name: str) -> None:
    """APScheduler's target: run the job for its latest fire time, unless that run is recorded."""
    app = _app()
    runtime: Runtime = app.extensions["mutualaid"]
    schedule = app.extensions["mutualaid.schedules"][name]
    with _job_locks.setdefault(name, threading.Lock()), app.app_context():
        due = schedule.previous_fire_time(datetime.now(UTC))
        if due is None:
            return
        with session_scope(runtime.engine, write=False) as session:
            last = last_scheduled_for(session, name)
        if last is not None and last >= due:
            log.info("job skipped job=%s reason=already_ran scheduled_for=%s", name,
                     due.isoformat())
            return
        run_job(runtime, name, trigger="schedule", scheduled_for=due)


class _Scheduler(BackgroundScheduler):
    """APScheduler that runs due jobs only while it leads; its job store transactions on
    SQLite start with BEGIN IMMEDIATE."""

    def __init__(self, *, still_leading: Callable[[], bool], recheck_seconds: float,
                 **options: object) -> None:
        super().__init__(**options)
        self.still_leading, self.recheck_seconds = still_leading, recheck_seconds

    def _main_loop(self) -> None:
        # Its reads and writes share transactions: a deferred one that reads, then writes
        # after another process wrote, fails at once instead of waiting its turn.
        write_intent.set(True)
        super()._main_loop()  # type: ignore[misc]

    def _process_jobs(self) -> float | None:
        # A process frozen past the lease (SIGSTOP, a paused VM) wakes with jobs due, maybe
        # replaced meanwhile: before it runs them, or moves the shared job store's next run
        # times on, it makes sure it still holds the lock (its heartbeat succeeds).
        if self.state != STATE_PAUSED and not self.still_leading():
            return self.recheck_seconds
        return super()._process_jobs()  # type: ignore[no-any-return]


class SchedulerService:
    """One scheduler process: stands by until it holds the lock, then runs the jobs."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.runtime: Runtime = app.extensions["mutualaid"]
        self.schedules: dict[str, Schedule] = app.extensions["mutualaid.schedules"]
        settings = self.runtime.settings
        check_scheduler_timing(settings.scheduler_lease_seconds,  # ConfigError if too short
                               settings.scheduler_heartbeat_seconds)
        self.holder = runner_name()
        # A PostgreSQL holder this stale is frozen (SIGSTOP, a paused VM): its connection lives
        # on, and a standby ends it. The lease, as SQLite passes its row on and /readyz says
        # "stale", but never under three heartbeats: a leader slow for a beat or two is alive.
        stale_after = max(settings.scheduler_lease_seconds,
                          3 * settings.scheduler_heartbeat_seconds)
        self.leader: Leader = (
            PostgresLeader(settings.database_url, self.holder, stale_after)
            if self.runtime.engine.dialect.name == "postgresql"
            else SqliteLeader(self.runtime.engine, self.holder, settings.scheduler_lease_seconds))
        self.scheduler: BackgroundScheduler | None = None
        # A grace of 0 means no limit: a run missed however long ago still runs once.
        self.grace = settings.misfire_grace_seconds if settings.misfire_grace_seconds > 0 else None

    def run(self, stop: threading.Event) -> None:
        """Stand by or lead until `stop` is set; on the way out, hand the lock back."""
        global _process_app
        _process_app = _process_app or self.app
        interval = self.runtime.settings.scheduler_heartbeat_seconds
        log.info("scheduler started holder=%s jobs=%s", self.holder,
                 ",".join(sorted(n for n, s in self.schedules.items() if s.enabled)))
        standing_by = False
        try:
            while not stop.is_set():
                if self.scheduler is None:
                    if self._lead():
                        standing_by = False
                    elif not standing_by:
                        log.info("scheduler standing by holder=%s", self.holder)
                        standing_by = True
                elif not self._try(self.leader.heartbeat):
                    log.warning("scheduler lost the lock holder=%s", self.holder)
                    self._stand_down(wait=False)
                stop.wait(interval)
        finally:
            if self.scheduler is not None:
                self._stand_down(wait=True)
                self._try(self.leader.release)
            if isinstance(self.leader, PostgresLeader):
                self.leader.close()
            log.info("scheduler stopped holder=%s", self.holder)

    def _lead(self) -> bool:
        """Take the lock and start the jobs; False (standing by) if another scheduler has it."""
        if not _active_in_process.acquire(blocking=False):
            return False
        if self._try(self.leader.acquire):
            if self._try(self._become_active):
                return True
            self._try(self.leader.release)
        _active_in_process.release()
        return False

    def _try(self, step: Callable[[], bool | None]) -> bool:
        try:
            return bool(step())
        except sa.exc.SQLAlchemyError as error:  # the database is away: stand by, retry
            log.warning("scheduler database error error=%s message=%s", type(error).__name__,
                        describe_error(error))
            return False

    def _become_active(self) -> bool:
        settings = self.runtime.settings
        scheduler = _Scheduler(
            still_leading=lambda: self._try(self.leader.heartbeat),
            recheck_seconds=settings.scheduler_heartbeat_seconds, timezone=settings.tz,
            jobstores={"default": SQLAlchemyJobStore(
                engine=make_engine(settings.database_url), tablename=JOBSTORE_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": self.grace},
        )
        token = write_intent.set(True)  # the job store's table, jobs added and modified
        try:
            scheduler.start(paused=True)
            try:
                self._sync_jobs(scheduler)
                self._catch_up(scheduler)
            except BaseException:
                _shutdown(scheduler, wait=False)
                raise
        finally:
            write_intent.reset(token)
        scheduler.resume()
        self.scheduler = scheduler
        log.info("scheduler active holder=%s", self.holder)
        return True

    def _stand_down(self, *, wait: bool) -> None:
        """Stop running jobs here; another process may take the lock."""
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            _shutdown(scheduler, wait=wait)
            _active_in_process.release()

    def _sync_jobs(self, scheduler: BackgroundScheduler) -> None:
        """Add missing jobs, update changed ones; a stored next run in the past is kept."""
        now = datetime.now(UTC)
        grace = self.grace
        for stored in scheduler.get_jobs():
            schedule = self.schedules.get(stored.id)
            if schedule is None or not schedule.enabled:
                scheduler.remove_job(stored.id)
        for name, schedule in self.schedules.items():
            if not schedule.enabled:
                continue
            stored = scheduler.get_job(name)
            if stored is None:
                # Not replace_existing: that would recompute, and lose, a missed next run.
                scheduler.add_job(run_scheduled_job, schedule.trigger, args=[name], id=name,
                                  name=name)
                continue
            if (repr(stored.trigger) == repr(schedule.trigger) and stored.args == (name,)
                    and stored.func is run_scheduled_job and stored.misfire_grace_time == grace):
                continue
            next_run = stored.next_run_time
            if next_run is None or next_run > now:
                next_run = schedule.trigger.get_next_fire_time(None, now)
            log.info("job schedule changed job=%s", name)
            scheduler.modify_job(name, func=run_scheduled_job, args=[name],
                                 trigger=schedule.trigger, misfire_grace_time=grace,
                                 coalesce=True, max_instances=1, next_run_time=next_run)

    def _catch_up(self, scheduler: BackgroundScheduler) -> None:
        """A fire time passed with no scheduled run recorded since the last one: run it now."""
        now = datetime.now(UTC)
        enabled = [s for s in self.schedules.values() if s.enabled]
        with session_scope(self.runtime.engine) as session:
            abandon_dead_runs(session)  # a run killed mid-job: its fire time runs again
        with session_scope(self.runtime.engine, write=False) as session:
            last = {s.job: last_scheduled_for(session, s.job) for s in enabled}
        for schedule in enabled:
            due = schedule.previous_fire_time(now)
            # No run on record: a new install has missed nothing (and a job the job store
            # scheduled before, it runs itself when its stored next run time has passed).
            previous = last[schedule.job]
            if due is not None and previous is not None and previous < due:
                log.info("job missed job=%s scheduled_for=%s: running it now", schedule.job,
                         due.isoformat())
                scheduler.modify_job(schedule.job, next_run_time=now)


def _shutdown(scheduler: BackgroundScheduler, *, wait: bool) -> None:
    """Stop APScheduler without losing a due run."""
    # Its loop looks for due jobs once more after shutdown() and would advance the next run
    # time of a job it can no longer submit: detach the job store first.
    scheduler.remove_jobstore("default")
    scheduler.shutdown(wait=wait)


def serve(app: Flask, stop: threading.Event) -> None:
    """Run the scheduler in this thread until `stop` is set (the embedded scheduler)."""
    SchedulerService(app).run(stop)


def start_embedded(app: Flask) -> threading.Thread | None:
    """Run the scheduler in a daemon thread of a web process (MUTUALAID_EMBED_SCHEDULER=1)."""
    global _embedded
    if _embedded is not None and _embedded.is_alive():
        return None  # one per process, however many apps it builds
    stop = threading.Event()
    _embedded = threading.Thread(target=serve, args=(app, stop), name="mutualaid-scheduler",
                                 daemon=True)
    _embedded.start()
    atexit.register(_stop_embedded, stop, _embedded)
    return _embedded


def _stop_embedded(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    thread.join(timeout=10)


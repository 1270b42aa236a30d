"""The `mutualaid` command: a Flask CLI group (db, users, demo, serve, jobs, scheduler)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from claims.auth import ROLES, UserError, create_user, set_active, set_password
from claims.db import make_engine, session_scope
from claims.runtime import get_runtime
from config.catalogue import DEFAULT_PRODUCTS_FILE, CatalogueError
from config.reasons import DEFAULT_REASONS_FILE, ReasonsError
from config.settings import ConfigError, database_url_for_display, file_error
from workflows.jobs import DEFAULT_SCHEDULES_FILE, ScheduleError

# The data files settings name, by the error their loader raises when create_app reads them.
FILE_SETTINGS = {
    CatalogueError: ("PRODUCTS_FILE", DEFAULT_PRODUCTS_FILE, "a product catalogue"),
    ScheduleError: ("SCHEDULES_FILE", DEFAULT_SCHEDULES_FILE, "a schedules file"),
    ReasonsError: ("REASONS_FILE", DEFAULT_REASONS_FILE, "a reasons file"),
}
START_ERRORS = (ConfigError, *FILE_SETTINGS)


def start_error(error: Exception) -> str:
    """What stopped a start, in one line: the setting, its value and what fits."""
    for kind, (name, default, what) in FILE_SETTINGS.items():
        if isinstance(error, kind):
            return str(file_error(name, default, what, error))
    return str(error)


def _create_app() -> Flask:
    from claims.app import create_app

    # A command never embeds the scheduler (`mutualaid scheduler` runs it in the foreground).
    app = create_app({"embed_scheduler": False})
    # Alembic logs a line per plugin it sets up, at INFO; its "Running upgrade ..." stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return app


def _unreachable_database(ctx: click.Context) -> str | None:
    """Why the database cannot be reached, or None when it can (the error was another)."""
    app = ctx.ensure_object(ScriptInfo).load_app()
    url = app.extensions["mutualaid"].settings.database_url
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        engine.connect().close()
    except sa.exc.DBAPIError as error:
        reason = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
        return f"cannot reach the database at {database_url_for_display(url)}: {reason}"
    finally:
        engine.dispose()
    return None


class CommandGroup(FlaskGroup):
    """The commands end on a setting that cannot work, or a database out of reach, with one
    line ("Error: ...", exit code 1), not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except START_ERRORS as error:  # from create_app, or settings read again per use
            raise click.ClickException(start_error(error)) from None
        except sa.exc.OperationalError:
            reason = _unreachable_database(ctx)
            if reason is None:
                raise
            raise click.ClickException(reason) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except START_ERRORS as error:  # `mutualaid --help`: the line, then the usage
            click.echo(f"Error: {start_error(error)}\n", err=True)
            return sorted(self.commands)
        return super().list_commands(ctx)


@click.group(cls=CommandGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False)
def cli() -> None:
    """mutualaid: the claims workflow of workers' mutual-aid insurance (职工互助保障)."""


db_group = click.Group("db", help="The database schema.")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or upgrade the schema (Alembic)."""
    from alembic.util import CommandError

    from migrations import head, unknown_revision, upgrade

    url = get_runtime().settings.database_url
    ahead = unknown_revision(url)
    if ahead is not None:
        raise click.ClickException(
            f"the database is at revision {ahead}, which this release does not know: a newer "
            f"release upgraded it. This release may run on it as it is (docs/deployment.md, "
            f"Rolling back); to take the schema back to this release's {head()}, run "
            f"`mutualaid db downgrade --revision {head()}` with the newer release installed")
    try:
        upgrade(url, revision)
    except CommandError as error:  # an unknown revision, most likely
        raise click.ClickException(f"--revision {revision}: {error}") from None
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.option("--revision", required=True,
              help="the revision to go back to, e.g. the head of the release rolled back to")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Take the schema back to an earlier revision (Alembic), before reinstalling that release."""
    from alembic.util import CommandError

    from migrations import downgrade

    try:
        downgrade(get_runtime().settings.database_url, revision)
    except CommandError as error:
        raise click.ClickException(f"--revision {revision}: {error}") from None
    click.echo(f"database at {revision}")


users_group = click.Group("users", help="Staff accounts.")


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--unit", "unit_code", help="The unit of a unit_staff user.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def users_create(username: str, role: str, unit_code: str | None, password: str) -> None:
    """Create a staff user."""
    try:
        with session_scope(get_runtime().engine) as session:
            create_user(session, username=username, role=role, password=password,
                        unit_code=unit_code)
    except UserError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created {role} {username}")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def users_set_password(username: str, password: str) -> None:
    """Give a user a new password; their tokens and console sign-ins end."""
    _change_user(set_password, username=username, password=password)
    click.echo(f"new password for {username}; signed out everywhere")


@users_group.command("disable")
@click.argument("username")
@with_appcontext
def users_disable(username: str) -> None:
    """Stop a user signing in; their tokens and console sign-ins end."""
    _change_user(set_active, username=username, active=False)
    click.echo(f"disabled {username}; signed out everywhere")


@users_group.command("enable")
@click.argument("username")
@with_appcontext
def users_enable(username: str) -> None:
    """Let a disabled user sign in again."""
    _change_user(set_active, username=username, active=True)
    click.echo(f"enabled {username}")


def _change_user(change: Any, **fields: Any) -> None:
    try:
        with session_scope(get_runtime().engine) as session:
            change(session, **fields)
    except UserError as error:
        raise click.ClickException(str(error)) from None


@click.command("demo")
@click.option("--seed", default=2026, show_default=True, help="Random seed of the demo county.")
@with_appcontext
def demo(seed: int) -> None:
    """Fill an empty database with a demo county (65 units, 1,937 members, claims)."""
    from claims.demo import load_demo

    summary = load_demo(get_runtime(), seed=seed)
    click.echo(summary)


def _metrics_worker_exit(_server: object, worker: object) -> None:
    """gunicorn's child_exit: forget a dead worker's live gauges (PROMETHEUS_MULTIPROC_DIR)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
def serve(host: str, port: int, workers: int) -> None:
    """Serve the app with gunicorn (the production server)."""
    from gunicorn.app.wsgiapp import WSGIApplication

    os.environ.setdefault("GUNICORN_CMD_ARGS", "")

    class Server(WSGIApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            # No gunicorn access log: the app writes one JSON line a request (claims.logs).
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                self.cfg.set("child_exit", _metrics_worker_exit)

        def load(self):  # type: ignore[no-untyped-def]
            from gunicorn.errors import AppImportError

            from claims.app import create_app

            try:
                return create_app()  # embeds the scheduler when MUTUALAID_EMBED_SCHEDULER=1
            except START_ERRORS as error:
                # gunicorn prints this one line (not a traceback) and stops: the app failed
                # to load, so booting more workers would fail the same way.
                raise AppImportError(f"Error: {start_error(error)}") from None

    Server("%(prog)s [OPTIONS]").run()


jobs_group = click.Group("jobs", help="The scheduled jobs (SPEC §4).")


@jobs_group.command("run")
@click.argument("job")
@with_appcontext
def jobs_run(job: str) -> None:
    """Run a job now and print its JobRun; exit code 1 if the job failed."""
    from workflows.jobs import UnknownJob, run_job

    try:
        run = run_job(get_runtime(), job, trigger="manual")
    except UnknownJob as error:
        raise click.UsageError(str(error)) from None
    click.echo(json.dumps({"id": run.id, "job": run.job, "outcome": run.outcome,
                           "summary": run.summary}, ensure_ascii=False))
    if run.outcome != "ok":
        raise SystemExit(1)


@jobs_group.command("list")
@with_appcontext
def jobs_list() -> None:
    """Each job with its schedule and last run."""
    from workflows.jobs import job_overview

    with session_scope(get_runtime().engine, write=False) as session:
        for job in job_overview(session, current_app.extensions["mutualaid.schedules"]):
            schedule = job["schedule"]
            cron = " ".join(f"{k}={v}" for k, v in schedule["cron"].items()) if schedule else "-"
            last = job["last_run"]
            last_text = f"{last.started_at:%Y-%m-%d %H:%M:%S}Z {last.outcome}" if last else "never"
            state = "enabled" if job["enabled"] else "disabled"
            click.echo(f"{job['name']:<24} {state:<9} {cron:<36} last: {last_text}")


@click.command("scheduler")
@with_appcontext
def scheduler() -> None:
    """Run the scheduler in the foreground: active while it holds the lock, else standing by."""
    from workflows.scheduler import SchedulerService

    # Settings that cannot work together raise ConfigError: CommandGroup prints the line.
    service = SchedulerService(current_app._get_current_object())  # type: ignore[attr-defined]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.run(stop)


import_group = click.Group("import", help="Bring data in from files.")


@import_group.command("roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--dry-run", is_flag=True, help="Check every row and report; apply nothing.")
@with_appcontext
def import_roster_file(file: str, dry_run: bool) -> None:
    """Import a roster (XLSX or CSV): all rows or none; exit code 1 if any row is invalid."""
    import sys

    from claims.auth import Actor
    from claims.schemas.roster import parse_rows, read_sheet
    from workflows.errors import DomainError
    from workflows.roster import import_roster

    runtime = get_runtime()
    actor = Actor(username=f"cli:{os.environ.get('USER', 'unknown')}", role="admin")
    with open(file, "rb") as handle:
        data = handle.read()
    try:
        sheet = read_sheet(data)
        # Three passes over the rows: their fields, the register's rules, the writing.
        with click.progressbar(length=3 * len(sheet.body), label="importing roster",
                               show_pos=True, file=sys.stderr) as bar:
            roster = parse_rows(sheet, os.path.basename(file), progress=bar.update)
            with session_scope(runtime.engine) as session:
                report = import_roster(session, runtime, actor, roster, dry_run=dry_run,
                                       progress=bar.update)
                if dry_run:
                    session.rollback()
            bar.update(bar.length - bar.pos)
    except DomainError as error:
        click.echo(error.message, err=True)
        for item in getattr(error, "report", {}).get("errors") or [e.as_dict()
                                                                  for e in error.errors]:
            click.echo(f"  {item['field']}: {item['message']} ({item['code']})", err=True)
        raise SystemExit(1) from None
    summary = report.as_dict(roster)
    for item in summary["errors"]:
        click.echo(f"  {item['field']}: {item['message']} ({item['code']})", err=True)
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "errors"},
                          ensure_ascii=False))
    if summary["errors"]:
        raise SystemExit(1)


def register_cli(app: Flask) -> None:
    """The same commands under `flask --app wsgi.py ...`."""
    for command in (db_group, users_group, demo, serve, jobs_group, scheduler, import_group):
        if command.name not in app.cli.commands:
            app.cli.add_command(command)

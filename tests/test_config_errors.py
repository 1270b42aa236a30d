"""A MUTUALAID_* setting that cannot work stops a process at start with one line naming the
variable, its value and what fits ("Error: ...", exit code non-zero, no traceback): real
`mutualaid` processes, as an operator starts them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

MUTUALAID = Path(sys.executable).with_name("mutualaid")
BAD_SCHEDULES = "[nightly_cleanup]\nhour = 3\n"  # names no job
BAD_PRODUCTS = "[products.acc]\nname = 'x'\n"  # no kind, no premium
BAD_REASONS = '[[reasons]]\ncode = "Not A Code"\nlabel = "x"\nkind = "reject"\n'
UNREACHABLE = "postgresql+psycopg://mutualaid:s3cret@127.0.0.1:1/mutualaid"  # nothing on port 1


def service_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a process of the service: a scratch instance and these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALAID_")}
    return env | {"MUTUALAID_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                  "MUTUALAID_INSTANCE_PATH": str(tmp_path)} | settings


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`mutualaid ARGS`; one refused at start returns within a second or two."""
    return subprocess.run([str(MUTUALAID), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *names: str) -> None:
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    for name in names:
        assert name in line, done.stderr


# (variable, value, what the error line says besides the variable)
BAD_SETTINGS = [
    ("MUTUALAID_TIMEZONE", "Mars/Olympus", "'Mars/Olympus' is not a time zone"),
    ("MUTUALAID_TOKEN_TTL_SECONDS", "8h", "'8h' is not a whole number"),
    ("MUTUALAID_TRUSTED_PROXIES", "one", "'one' is not a whole number"),
    ("MUTUALAID_LOG_LEVEL", "LOUD", "'LOUD' is not a log level"),
    ("MUTUALAID_ONSITE_THRESHOLD", "5k", "'5k' is not an amount in yuan"),
    ("MUTUALAID_SUBSIDY_YUAN", "1.234", "at most two decimal places"),
    ("MUTUALAID_PRODUCTS_FILE", "{tmp}/missing.toml", "is not an existing file"),
    ("MUTUALAID_PRODUCTS_FILE", "{tmp}/products.toml", "is not a product catalogue"),
    ("MUTUALAID_LOG_FORMAT", "xml", "'xml' is not one of json, text"),
    ("MUTUALAID_TRANSMISSION", "ftp", "'ftp' is not one of folder, smtp, http"),
    ("MUTUALAID_SCHEDULES_FILE", "{tmp}/schedules.toml", "nightly_cleanup"),
    ("MUTUALAID_REASONS_FILE", "{tmp}/reasons.toml", "code must be"),
    ("MUTUALAID_NOTIFY_UNIT_CHANNEL", "fax", "'fax' is not one of file, smtp, sms, print"),
    ("MUTUALAID_SMTP_PORT", "abc", "'abc' is not a whole number"),
    ("MUTUALAID_SCHEDULER_LEASE_SECONDS", "6", "at least twice"),
    ("MUTUALAID_EMBED_SCHEDULER", "maybe", "'maybe' is not yes or no"),
    ("MUTUALAID_CONSOLE_SESSION_HOURS", "0", "'0' is not a whole number (1 to 168"),
    ("MUTUALAID_DATABASE_URL", "postgresql+psycopg://postgres:p@ss@127.0.0.1/db",
     "an @ in the password written as %40"),
    ("MUTUALAID_SECURE_COOKIES", "https", "'https' is not yes or no"),
    # Guessable: anyone could sign a console session. The line never shows the key itself.
    ("MUTUALAID_SECRET_KEY", "changeme", "'<8 characters>' is not a random key of at least 32"),
]


def _bad_env(tmp_path: Path, variable: str, value: str) -> dict[str, str]:
    (tmp_path / "schedules.toml").write_text(BAD_SCHEDULES)
    (tmp_path / "reasons.toml").write_text(BAD_REASONS)
    (tmp_path / "products.toml").write_text(BAD_PRODUCTS)
    return service_env(tmp_path, **{variable: value.format(tmp=tmp_path)})


@pytest.mark.parametrize(("variable", "value", "says"), BAD_SETTINGS,
                         ids=[f"{case[0].removeprefix('MUTUALAID_')}={case[1].split('/')[-1]}"
                              for case in BAD_SETTINGS])
def test_db_upgrade_refuses_a_bad_setting_in_one_line(tmp_path, variable, value, says):
    done = run(["db", "upgrade"], _bad_env(tmp_path, variable, value))
    assert_one_clear_line(done, f"Error: {variable}=", says)
    if variable == "MUTUALAID_SECRET_KEY":
        assert value not in done.stderr
    if variable == "MUTUALAID_DATABASE_URL":
        assert "p@ss" not in done.stderr and "ss@127" not in done.stderr  # no part of it


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_an_instance_folder_that_cannot_be_written_stops_the_start(tmp_path, kind):
    # With PostgreSQL and a secret key given the folder was never touched at start, and the
    # status check and sign-in answered 500 (their wrong-guess counts live in it).
    blocker = tmp_path / "taken"
    blocker.write_text("")
    instance = blocker if kind == "a file" else blocker / "instance"
    env = service_env(tmp_path, MUTUALAID_INSTANCE_PATH=str(instance),
                      MUTUALAID_DATABASE_URL=UNREACHABLE, MUTUALAID_SECRET_KEY="k" * 40)
    done = run(["serve", "--port", "0"], env)
    assert_one_clear_line(done, "Error: MUTUALAID_INSTANCE_PATH=",
                          "a folder this process can write")


def _revision(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "x.db") as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_db_downgrade_takes_the_schema_back_for_a_rollback(tmp_path):
    env = service_env(tmp_path)
    assert run(["db", "upgrade"], env).returncode == 0
    newest = _revision(tmp_path)
    done = run(["db", "downgrade", "--revision", "0008_unit_codes_upper"], env)
    assert done.returncode == 0, done.stderr
    assert _revision(tmp_path) == "0008_unit_codes_upper"
    assert run(["db", "upgrade"], env).returncode == 0 and _revision(tmp_path) == newest


def test_db_upgrade_on_a_database_a_newer_release_upgraded_says_what_to_do(tmp_path):
    env = service_env(tmp_path)
    assert run(["db", "upgrade"], env).returncode == 0
    newest = _revision(tmp_path)
    with sqlite3.connect(tmp_path / "x.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    done = run(["db", "upgrade"], env)
    assert_one_clear_line(done, "0099_from_the_future", "a newer release",
                          f"db downgrade --revision {newest}")
    assert "--revision head" not in done.stderr


def test_a_postgres_url_without_a_driver_means_the_installed_one(monkeypatch):
    from config.settings import _database_url

    for scheme in ("postgres", "postgresql"):
        monkeypatch.setenv("MUTUALAID_DATABASE_URL", f"{scheme}://u:pw@db.example/mutualaid")
        assert _database_url(Path("/tmp")) == "postgresql+psycopg://u:pw@db.example/mutualaid"


@pytest.mark.parametrize("command", [["jobs", "run", "flag_overdue"], ["scheduler"]],
                         ids=["jobs-run", "scheduler"])
@pytest.mark.parametrize(("variable", "value"), [
    ("MUTUALAID_SCHEDULES_FILE", "{tmp}/schedules.toml"),
    ("MUTUALAID_NOTIFY_UNIT_CHANNEL", "fax"),
    ("MUTUALAID_SMTP_PORT", "abc"),
    ("MUTUALAID_TIMEZONE", "Mars/Olympus"),
], ids=["SCHEDULES_FILE", "NOTIFY_UNIT_CHANNEL", "SMTP_PORT", "TIMEZONE"])
def test_jobs_and_the_scheduler_refuse_a_bad_setting_at_start(tmp_path, command, variable,
                                                              value):
    done = run(command, _bad_env(tmp_path, variable, value))
    assert_one_clear_line(done, f"Error: {variable}=")


@pytest.mark.parametrize("command", [["db", "upgrade"], ["scheduler"]],
                         ids=["db-upgrade", "scheduler"])
def test_smtp_transmission_without_a_mail_server_is_refused_at_start(tmp_path, command):
    done = run(command, service_env(tmp_path, MUTUALAID_TRANSMISSION="smtp"))
    assert_one_clear_line(done, "MUTUALAID_SMTP_HOST is not set", "MUTUALAID_TRANSMISSION=smtp")


def test_text_messages_without_template_ids_are_refused_at_start(tmp_path):
    done = run(["jobs", "run", "flag_overdue"], service_env(
        tmp_path, MUTUALAID_NOTIFY_WORKER_CHANNEL="sms", MUTUALAID_SMS_URL="http://127.0.0.1:9/",
        MUTUALAID_SMS_TEMPLATES="garbage"))
    assert_one_clear_line(done, "Error: MUTUALAID_SMS_TEMPLATES='garbage'",
                          "funds_received_worker=SMS_100")


@pytest.mark.parametrize("url", [UNREACHABLE, "sqlite:///{tmp}/no/such/folder/x.db"],
                         ids=["postgres", "sqlite"])
@pytest.mark.parametrize("command", [["db", "upgrade"], ["jobs", "run", "flag_overdue"]],
                         ids=["db-upgrade", "jobs-run"])
def test_a_database_out_of_reach_is_one_line_without_its_password(tmp_path, url, command):
    done = run(command, service_env(tmp_path, MUTUALAID_DATABASE_URL=url.format(tmp=tmp_path)))
    assert_one_clear_line(done, "Error: cannot reach the database at")
    assert "s3cret" not in done.stderr


def test_an_unknown_revision_is_one_line(tmp_path):
    done = run(["db", "upgrade", "--revision", "9999_nope"], service_env(tmp_path))
    assert_one_clear_line(done, "9999_nope")


def test_serve_refuses_zero_workers(tmp_path):
    done = run(["serve", "--workers", "0"], service_env(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "Invalid value for '--workers'" in done.stderr


def test_a_gunicorn_worker_that_cannot_load_the_app_logs_one_line(tmp_path):
    # The serve command's gunicorn, without `mutualaid` building the app first: only the
    # worker reads the settings, as when they change between the master's start and a worker's.
    script = "from claims.cli import serve; serve.callback('127.0.0.1', 0, 1)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent,
                          env=service_env(tmp_path, MUTUALAID_TIMEZONE="Mars/Olympus"))
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Error: MUTUALAID_TIMEZONE='Mars/Olympus' is not a time zone" in done.stderr
    assert "App failed to load" in done.stderr


def test_gunicorn_on_wsgi_py_refuses_a_bad_setting_in_one_line(tmp_path):
    # An operator's own `gunicorn wsgi:app`, not `mutualaid serve`, from a folder of their
    # own (wsgi is installed as a module): the same one line, and gunicorn stops instead of
    # booting worker after worker.
    gunicorn = Path(sys.executable).with_name("gunicorn")
    done = subprocess.run([str(gunicorn), "--bind", "127.0.0.1:0", "wsgi:app"],
                          capture_output=True,
                          text=True, timeout=60, cwd=tmp_path,
                          env=service_env(tmp_path, MUTUALAID_TIMEZONE="Mars/Olympus"))
    assert_one_clear_line(done, "MUTUALAID_TIMEZONE", "'Mars/Olympus' is not a time zone")
    assert "App failed to load" in done.stderr


def test_a_good_configuration_still_starts(tmp_path):
    env = service_env(tmp_path, MUTUALAID_TIMEZONE="Asia/Shanghai", MUTUALAID_LOG_FORMAT="text",
                      MUTUALAID_TRANSMISSION="smtp", MUTUALAID_SMTP_HOST="127.0.0.1",
                      MUTUALAID_SMTP_PORT="2525", MUTUALAID_CITY_OFFICE_EMAIL="city@example.org",
                      MUTUALAID_ONSITE_THRESHOLD="6000.50", MUTUALAID_EMBED_SCHEDULER="0")
    upgraded = run(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade" in upgraded.stderr and "setup plugin" not in upgraded.stderr
    scheduler = subprocess.Popen([str(MUTUALAID), "scheduler"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            scheduler.wait(timeout=3)  # still running: it started
    finally:
        scheduler.terminate()
        _, stderr = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, stderr
    assert "scheduler started" in stderr and "Traceback" not in stderr

"""scripts/backup.sh and scripts/restore.sh: a county backed up, lost and restored is served whole.

Each test makes its own database (the shared session one is never dropped), on SQLite and,
when MUTUALAID_TEST_POSTGRES_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DATABASES, POSTGRES_URL, County
from flask import Flask

from claims.app import create_app
from config.settings import PROJECT_ROOT
from migrations import upgrade

SCRIPTS = PROJECT_ROOT / "scripts"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the scripts need bash")


@pytest.fixture(params=DATABASES)
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'county.db'}"
        upgrade(url)
        yield url
        return
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    assert POSTGRES_URL
    base = sa.engine.make_url(POSTGRES_URL)
    name = f"{base.database}_backup_{os.getpid()}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_script(name: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUTUALAID_DATABASE_URL": url, "MUTUALAID_PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPTS / name), *args], env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def serve(url: str, tmp_path: Path) -> Flask:
    app = create_app({"database_url": url, "instance_path": tmp_path, "secret_key": "test"})
    app.config["TESTING"] = True
    return app


def reopen(county: County, url: str, tmp_path: Path) -> Flask:
    """A new app process on the restored database; the county's users and tokens are its rows."""
    app = serve(url, tmp_path)
    county.app, county.client = app, app.test_client()
    return app


def lose_everything(url: str) -> None:
    """The disaster: every table gone (PostgreSQL) or the file deleted (SQLite)."""
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def snapshot(county: County, claim_nos: list[str]) -> dict[str, Any]:
    """What a clerk sees of the claims: each claim, its audit trail, and the list's total."""
    listing = county.clerk.get("/api/v1/claims?page_size=100")
    assert listing.status_code == 200
    return {
        "total": listing.headers["X-Pagination"],
        "claims": {no: county.clerk.get(f"/api/v1/claims/{no}").json for no in claim_nos},
        "events": {no: county.clerk.get(f"/api/v1/claims/{no}/events").json
                   for no in claim_nos},
    }


def test_backup_and_restore_bring_back_claims_and_audit_trail(own_database: str,
                                                               tmp_path: Path) -> None:
    app = serve(own_database, tmp_path)
    county = County(app, app.test_client())
    withdrawn = county.claim()["claim_no"]
    assert county.fire(withdrawn, "withdraw", reason="单位撤回").status_code == 200
    claim_nos = [*county.ready_claims(2), withdrawn]
    before = snapshot(county, claim_nos)
    app.extensions["mutualaid"].engine.dispose()

    backup = run_script("backup.sh", own_database, str(tmp_path / "backups"))
    assert backup.returncode == 0, backup.stderr
    backup_file = Path(backup.stdout.strip().splitlines()[-1])
    assert backup_file.is_file() and backup_file.parent == tmp_path / "backups"

    lose_everything(own_database)
    assert run_script("restore.sh", own_database, "--yes",
                      str(backup_file)).returncode == 0

    app = reopen(county, own_database, tmp_path)
    assert snapshot(county, claim_nos) == before
    # The restored database goes on working: a new claim takes the next number.
    new_no = county.claim()["claim_no"]
    assert new_no not in claim_nos
    app.extensions["mutualaid"].engine.dispose()


def test_restore_replaces_changes_made_after_the_backup(own_database: str,
                                                       tmp_path: Path) -> None:
    app = serve(own_database, tmp_path)
    county = County(app, app.test_client())
    kept = county.claim()["claim_no"]
    engine = app.extensions["mutualaid"].engine
    engine.dispose()
    backup = run_script("backup.sh", own_database, str(tmp_path))
    assert backup.returncode == 0, backup.stderr
    later = county.claim()["claim_no"]
    engine.dispose()  # restore.sh wants the app stopped: no connection left open

    restored = run_script("restore.sh", own_database, "--yes",
                          backup.stdout.strip().splitlines()[-1])
    assert restored.returncode == 0, restored.stderr

    app = reopen(county, own_database, tmp_path)
    assert county.clerk.get(f"/api/v1/claims/{kept}").status_code == 200
    assert county.clerk.get(f"/api/v1/claims/{later}").status_code == 404
    app.extensions["mutualaid"].engine.dispose()


def test_unset_the_database_is_the_instance_folders_file_and_the_backup_is_private(
        tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    upgrade(f"sqlite:///{instance / 'mutualaid.db'}")
    env = {key: value for key, value in os.environ.items()
           if key != "MUTUALAID_DATABASE_URL"} | {"MUTUALAID_INSTANCE_PATH": str(instance),
                                                  "MUTUALAID_PYTHON": sys.executable}
    backup = subprocess.run(["bash", str(SCRIPTS / "backup.sh"), str(tmp_path / "backups")],
                            env=env, capture_output=True, text=True, check=False, timeout=120)
    assert backup.returncode == 0, backup.stderr
    written = Path(backup.stdout.strip().splitlines()[-1])
    assert written.suffix == ".sqlite3" and stat.S_IMODE(written.stat().st_mode) == 0o600
    env.pop("MUTUALAID_INSTANCE_PATH")
    refused = subprocess.run(["bash", str(SCRIPTS / "backup.sh"), str(tmp_path)], env=env,
                             capture_output=True, text=True, check=False, timeout=120)
    assert refused.returncode == 2 and "MUTUALAID_INSTANCE_PATH" in refused.stderr


def test_restore_refuses_without_yes_and_changes_nothing(own_database: str,
                                                        tmp_path: Path) -> None:
    answer = run_script("restore.sh", own_database, str(tmp_path / "missing.dump"))
    assert answer.returncode == 2
    assert "--yes" in answer.stderr

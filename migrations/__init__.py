"""Alembic migrations, found beside the code whatever the working directory."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema back to `revision` (the revision an earlier release expects)."""
    command.downgrade(alembic_config(database_url), revision)


def head() -> str:
    """The newest revision this release knows."""
    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def unknown_revision(database_url: str) -> str | None:
    """The database's revision when this release's migrations do not know it (a newer
    release upgraded it); None when known or when the schema is not created yet."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if revision is None:
        return None
    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    except CommandError:
        return revision
    return None


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=False)

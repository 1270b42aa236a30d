"""Alembic environment: the metadata is SQLModel's, the URL comes from the caller."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel

import claims.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from claims.db import make_engine

config = context.config
target_metadata = SQLModel.metadata
# Tables other code owns: APScheduler's job store creates and keeps its own.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                   compare_to: Any) -> bool:
    """Autogenerate leaves foreign tables (and their indexes) alone: it never drops them."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) not in FOREIGN_TABLES


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

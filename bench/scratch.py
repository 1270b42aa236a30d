"""Scratch databases for the benchmarks: a SQLite file, or a PostgreSQL database made for the
run and dropped after it (MUTUALAID_BENCH_POSTGRES_URL names the server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_postgres(url: str, name: str) -> Iterator[str]:
    """A fresh database called `name` on the server of `url`, dropped afterwards."""
    base = sa.engine.make_url(url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_database(kind: str, folder: Path, name: str) -> Iterator[str]:
    """An empty database called `name`: `folder`/name.db, or a PostgreSQL one dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    with scratch_postgres(os.environ.get("MUTUALAID_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                          f"bench_{name}_{os.getpid()}") as url:
        yield url

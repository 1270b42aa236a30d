"""What a running app holds: settings, the product catalogue and the database engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

import sqlalchemy as sa
from flask import current_app, g
from sqlmodel import Session

from config.catalogue import Catalogue
from config.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    catalogue: Catalogue
    engine: sa.Engine

    @cached_property
    def reader(self) -> sa.Engine:
        """The engine for requests that only read (claims.db.reader_engine)."""
        from claims.db import reader_engine

        return reader_engine(self.engine)

    def today(self) -> date:
        """Today in the configured time zone (SPEC §4): jobs and API alike."""
        return datetime.now(self.settings.tz).date()


def get_runtime() -> Runtime:
    return current_app.extensions["mutualaid"]


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        runtime = get_runtime()
        engine = runtime.reader if g.get("read_only") else runtime.engine
        g.db_session = Session(engine, expire_on_commit=False)
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()

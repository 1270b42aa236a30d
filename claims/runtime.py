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


def get_reads() -> sa.Connection:
    """The request's reading connection (Runtime.reader), opened on first use and closed at
    teardown: the token lookup, a read-only request's session and a new claim's draft share
    it, rather than each taking a connection from the pool and handing it back."""
    if "db_reads" not in g:
        g.db_reads = get_runtime().reader.connect()
    return g.db_reads


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown; a read-only
    request's runs on its reading connection."""
    if "db_session" not in g:
        bind = get_reads() if g.get("read_only") else get_runtime().engine
        g.db_session = Session(bind, expire_on_commit=False)
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
    reads = g.pop("db_reads", None)
    if reads is not None:
        reads.close()

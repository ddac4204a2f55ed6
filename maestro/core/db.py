"""The state DB: engine factory and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the database lock instead of failing with
"database is locked" when a read lock would have to be upgraded; read-only work uses ``reading(engine)``,
which begins a deferred transaction instead. PostgreSQL is used as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from maestro.core.errors import ConfigurationError

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_READ_ONLY = "maestro_read_only"


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with Maestro's connection settings; SQLite parent folders are created."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"MAESTRO_DATABASE_URL is not a valid SQLAlchemy URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, echo=echo, pool_pre_ping=True, future=True)


def _sqlite_engine(url: sa.engine.URL, *, echo: bool) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers (``reading(engine)``) take no write lock; everything else queues for it up front.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only. On SQLite it begins a deferred transaction, so readers neither wait
    for nor block writers (WAL); on PostgreSQL it is an ordinary connection. Do not write through it."""
    with engine.connect() as conn:
        yield conn.execution_options(**{_READ_ONLY: True})


@contextmanager
def transaction(engine: Engine, conn: Connection | None = None) -> Iterator[Connection]:
    """``conn`` when the caller passes its transaction (so several stores' writes commit together),
    else a new transaction on ``engine``."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, safe to run on every start)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def is_ready(engine: Engine) -> bool:
    """True when the DB answers and the schema is at head."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except sa.exc.SQLAlchemyError:
        return False
    return current == heads

"""LangGraph checkpoints: SQLite (WAL, busy timeout) beside the state DB, or PostgreSQL when the state DB is.

Opened per operation inside the running event loop (``async with open_checkpointer(settings)``); a run
paused in one process resumes in another because both read the same checkpoint store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from maestro.core.settings import Settings

__all__ = ["open_checkpointer"]


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[str]]:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "postgresql":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with AsyncPostgresSaver.from_conn_string(conninfo) as saver:
            await saver.setup()
            yield saver
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "checkpoints.sqlite"
    async with aiosqlite.connect(str(path), timeout=30.0) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        sqlite_saver = AsyncSqliteSaver(conn)
        await sqlite_saver.setup()
        yield sqlite_saver

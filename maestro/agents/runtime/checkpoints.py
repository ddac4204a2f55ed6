"""LangGraph checkpoints: SQLite (WAL, busy timeout) beside the state DB, or PostgreSQL when the state DB is.

* ``open_checkpointer(settings)`` opens a saver inside the running event loop (``async with``).
* ``CheckpointSession`` is what a runner keeps per event loop: one open saver (a connection pool on
  PostgreSQL) and each workcell's graph compiled once against it, instead of a connection opened and a
  graph built and compiled for every run. The API server's loop keeps its session until shutdown; a CLI
  command's ``asyncio.run`` closes it when the loop shuts down (the saver is held by an async generator,
  which ``asyncio.run`` finalises), and ``aclose`` closes it explicitly.
* ``EventFence`` wraps the saver: before a task's writes or a checkpoint are saved, it commits the events
  the run on that thread has buffered. So a node's events are in the store before LangGraph records the
  node as done; a crash can lose only the events of a node that will run again.

A run paused in one process resumes in another because both read the same checkpoint store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple

    from maestro.agents.runtime.registry import Workcell
    from maestro.core.settings import Settings

__all__ = ["CheckpointSession", "EventFence", "Flush", "open_checkpointer"]

Flush = Callable[[str | None, Sequence[tuple[str, Any]]], None]
"""Called before a save: ``(task_id, writes)`` for a task's writes, ``(None, ())`` for a checkpoint."""


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[str]]:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "postgresql":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=4,
            open=False,  # opened by ``async with``
            kwargs=kwargs,
            check=AsyncConnectionPool.check_connection,
        ) as pool:
            saver = AsyncPostgresSaver(conn=pool)  # type: ignore[arg-type]
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


class EventFence(BaseCheckpointSaver[str]):
    """A saver that commits a run's buffered events before anything of its thread is checkpointed."""

    def __init__(self, inner: BaseCheckpointSaver[str]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self._flushers: dict[str, Flush] = {}

    @contextmanager
    def guarding(self, thread_id: str, flush: Flush) -> Iterator[None]:
        """Call ``flush`` before each save on ``thread_id`` while the block runs: with the task id and
        its writes before a task's writes are saved, with ``(None, ())`` before a checkpoint is."""
        self._flushers[thread_id] = flush
        try:
            yield
        finally:
            if self._flushers.get(thread_id) is flush:
                del self._flushers[thread_id]

    def _flush(
        self, config: RunnableConfig, task_id: str | None = None, writes: Sequence[tuple[str, Any]] = ()
    ) -> None:
        thread_id = (config.get("configurable") or {}).get("thread_id")
        flush = self._flushers.get(str(thread_id))
        if flush is not None:
            flush(task_id, writes)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.inner.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for item in self.inner.alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._flush(config)
        return await self.inner.aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._flush(config, task_id, writes)
        await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.inner.adelete_thread(thread_id)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.inner.get_next_version(current, channel)


class CheckpointSession:
    """One open saver for one event loop, and the graphs compiled against it (one per workcell)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._opened: AbstractAsyncContextManager[BaseCheckpointSaver[str]] | None = None
        self.fence: EventFence | None = None
        self._graphs: dict[int, tuple[Workcell, Any]] = {}
        self._lock = asyncio.Lock()
        self.loop = asyncio.get_running_loop()

    async def open(self) -> EventFence:
        async with self._lock:
            if self.fence is None:
                opened = open_checkpointer(self._settings)
                self.fence = EventFence(await opened.__aenter__())
                self._opened = opened
            return self.fence

    def graph(self, workcell: Workcell) -> Any:
        """``workcell``'s graph compiled against this session's saver (built once)."""
        assert self.fence is not None, "open() the session first"
        cached = self._graphs.get(id(workcell))
        if cached is None or cached[0] is not workcell:  # a re-registered workcell gets a new graph
            cached = (workcell, workcell.build().compile(checkpointer=self.fence))
            self._graphs[id(workcell)] = cached
        return cached[1]

    async def aclose(self) -> None:
        opened, self._opened, self.fence = self._opened, None, None
        self._graphs.clear()
        if opened is not None:
            await opened.__aexit__(None, None, None)

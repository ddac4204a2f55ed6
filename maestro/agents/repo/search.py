"""Code search for the repository workcells: the worktree indexed into retrieval, then searched.

Best effort by design: when retrieval cannot be used (the embedded vector store is held by another
process, say) the workcell falls back to word overlap alone, and the run's events say why.
"""

from __future__ import annotations

import asyncio

from maestro.agents.repo.steps import repo_tools
from maestro.agents.runtime.context import RunContext
from maestro.core.errors import MaestroError
from maestro.tools.workspace import Worktree

__all__ = ["related_files"]

SEARCH_K = 8


async def related_files(ctx: RunContext, worktree: Worktree, query: str) -> list[str]:
    """The repository's files a code search ranks for ``query`` (empty when search is not available)."""
    search = repo_tools(ctx).code_search
    if search is None or not query.strip():
        return []
    ctx.emit("tool", {"tool": "code.search", "phase": "start"})
    try:
        paths = await asyncio.to_thread(search, worktree, query, ctx.authority.tenant, SEARCH_K)
    except MaestroError as exc:
        ctx.emit("tool", {"tool": "code.search", "phase": "error", "error": exc.code, "message": exc.message})
        return []
    ctx.emit("tool", {"tool": "code.search", "phase": "end", "files": len(paths)})
    return paths

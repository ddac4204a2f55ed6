"""Index a worktree's code into retrieval, so workcells can find the code they are asked to change.

Only files git knows about (tracked, or new and not ignored) are considered, which keeps build output,
virtualenvs and secrets listed in ``.gitignore`` out; vendored trees, lock files and minified bundles
are skipped too (large, not written by the project, and they drown real code in search results), as
are types the loaders do not read and files over ``max_bytes``. The retrieval ``Ingestor`` then does
the rest: Python is split along its AST, other code by lines, chunk ids are content hashes, so
re-indexing after an edit re-embeds only what changed. Sources are named relative to the worktree
(``src/app.py``), i.e. the same for every run of the same repository.
"""

from __future__ import annotations

from maestro.retrieval.ingest import FileOutcome, Ingestor, IngestReport
from maestro.retrieval.loaders import DEFAULT_MAX_BYTES, document_kind
from maestro.tools.edits.globs import compile_glob
from maestro.tools.workspace.worktree import Worktree

__all__ = ["SKIPPED_GLOBS", "index_repository", "repository_files"]

SKIPPED_GLOBS = (
    "vendor/**", "third_party/**", "third-party/**", "node_modules/**", "bower_components/**", "dist/**",
    "build/**", "*.min.js", "*.min.css", "*.map", "*.lock", "package-lock.json", "pnpm-lock.yaml",
    "*.pb.go", "*_pb2.py", "*.snap",
)  # fmt: skip
"""Vendored, generated or lock files: never indexed (patterns as in :mod:`maestro.tools.edits.globs`)."""


def repository_files(worktree: Worktree, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """The worktree's files worth indexing, relative POSIX paths, sorted."""
    skipped = [compile_glob(g) for g in SKIPPED_GLOBS]
    keep: list[str] = []
    for rel in worktree.files():
        path = worktree.path / rel
        if any(p.fullmatch(rel) for p in skipped) or document_kind(path) is None:
            continue
        if path.is_symlink() or path.stat().st_size > max_bytes:
            continue
        keep.append(rel)
    return keep


def index_repository(
    worktree: Worktree,
    ingestor: Ingestor,
    collection: str,
    tenant: str,
    *,
    prune: bool = True,
) -> IngestReport:
    """Ingest the worktree's code into ``collection`` for ``tenant``; with ``prune``, drop the chunks of
    files no longer in the repository (the collection is meant to hold this one repository)."""
    files = repository_files(worktree, max_bytes=ingestor.max_bytes)
    if files:
        paths = [worktree.path / rel for rel in files]
        report = ingestor.ingest(paths, collection=collection, tenant=tenant, root=worktree.path, prune=False)
    else:
        report = IngestReport(collection=collection, tenant=tenant)
    if prune:
        report.files.extend(_prune(ingestor, collection, tenant, set(files)))
    return report


def _prune(ingestor: Ingestor, collection: str, tenant: str, current: set[str]) -> list[FileOutcome]:
    store = ingestor.store
    store.ensure_collection(collection, dim=ingestor.embedder.dim)
    outcomes: list[FileOutcome] = []
    for source in sorted(store.sources(collection, tenant=tenant) - current):
        ids = store.chunk_ids(collection, tenant=tenant, source=source)
        store.delete(collection, tenant=tenant, chunk_ids=sorted(ids))
        reason = "no longer in the repository (or no longer indexed)"
        outcomes.append(FileOutcome(source, "removed", removed=len(ids), reason=reason))
    return outcomes

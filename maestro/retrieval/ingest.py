"""Ingest files into a collection: load, chunk, flag PII, embed (cached), upsert, and remove what is gone.

Idempotent by construction: a chunk's id is a hash of its source and text, so re-ingesting an unchanged
file writes nothing, a changed file gets only its new chunks (and loses the ones that no longer exist) and,
for a directory argument, the chunks of files deleted from that directory are removed.

A file is *all or nothing* in the store's eyes: its new chunks are upserted first, and only then are its
stale chunks deleted, so a crash in between leaves the old and the new text (the next run removes the
old), never a file with holes. Files that cannot be read, are binary, empty, too large, not UTF-8 or of an
unsupported type are skipped with a reason in the :class:`IngestReport`; one bad file never stops a batch.

The PII flag comes from a ``pii_detector`` the caller injects (the PII guard lives in ``tools``, above this
layer); without one, chunks are flagged ``pii=False``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from maestro.core.errors import InvalidRequest
from maestro.retrieval.chunking import chunk_document
from maestro.retrieval.embeddings import Embedder
from maestro.retrieval.loaders import DEFAULT_MAX_BYTES, Skipped, load_document
from maestro.retrieval.sparse import SparseEncoder
from maestro.retrieval.stores import check_collection_name
from maestro.retrieval.types import ChunkRecord, StoredChunk, VectorStore

__all__ = ["FileOutcome", "IngestReport", "Ingestor", "PIIDetector", "source_name"]

PIIDetector = Callable[[Sequence[str]], list[bool]]
"""Given chunk texts, whether each contains PII (``tools.pii`` provides one)."""

Progress = Callable[[int, int, str], None]
"""``(files done, files total, source)`` after each file."""

Status = Literal["indexed", "unchanged", "skipped", "removed"]

# Directories never walked into: VCS metadata, virtualenvs, caches, build output.
_SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
     ".pytest_cache", ".tox", "build", "dist", ".idea", ".vscode"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FileOutcome:
    source: str
    status: Status
    chunks: int = 0  # chunks the file has now
    added: int = 0
    removed: int = 0
    reason: str | None = None
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "chunks": self.chunks,
            "added": self.added,
            "removed": self.removed,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass
class IngestReport:
    collection: str
    tenant: str
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def chunks_added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def chunks_removed(self) -> int:
        return sum(f.removed for f in self.files)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.status in ("indexed", "unchanged"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "tenant": self.tenant,
            "files": {
                "indexed": self.count("indexed"),
                "unchanged": self.count("unchanged"),
                "skipped": self.count("skipped"),
                "removed": self.count("removed"),
            },
            "chunks": {"total": self.chunks, "added": self.chunks_added, "removed": self.chunks_removed},
            "seconds": round(self.seconds, 3),
            "skipped": [f.to_dict() for f in self.files if f.status == "skipped"],
            "details": [f.to_dict() for f in self.files],
        }


def source_name(path: Path, root: Path) -> str:
    """How a chunk names its file: relative to ``root`` when inside it, else the absolute path (POSIX)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


@dataclass
class _Pending:
    """A loaded file: its chunks now, the ones not in the store yet, and the stored ones that are gone."""

    source: str
    records: list[ChunkRecord]
    new: list[ChunkRecord]
    stale: set[str]

    @classmethod
    def of(cls, source: str, records: list[ChunkRecord], existing: set[str]) -> _Pending:
        new = [r for r in records if r.chunk_id not in existing]
        return cls(source, records, new, existing - {r.chunk_id for r in records})


class Ingestor:
    """Turns files into indexed chunks in a ``VectorStore``; see the module docstring for the guarantees."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        sparse: SparseEncoder | None = None,
        pii_detector: PIIDetector | None = None,
        max_chars: int = 1500,
        max_bytes: int = DEFAULT_MAX_BYTES,
        batch_chunks: int = 256,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse or SparseEncoder()
        self.pii_detector = pii_detector
        self.max_chars = max_chars
        self.max_bytes = max_bytes
        self.batch_chunks = batch_chunks

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        collection: str,
        tenant: str,
        root: Path | None = None,
        retention: str = "standard",
        prune: bool = True,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files and directories (recursively) into ``collection`` for ``tenant``.

        ``root`` (default: the working directory) is what sources are named relative to. With ``prune``,
        the chunks of files that were under a directory argument before and are gone now are removed.
        Raises ``InvalidRequest`` before writing anything if a path does not exist or a name is invalid.
        """
        check_collection_name(collection)
        if not tenant:
            raise InvalidRequest("ingest needs a tenant")
        if not paths:
            raise InvalidRequest("nothing to ingest: give at least one file or directory")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise InvalidRequest(f"no such file or directory: {', '.join(missing)}", paths=missing)
        root = root or Path.cwd()
        started = time.perf_counter()
        files = _walk(paths)
        self.store.ensure_collection(collection, dim=self.embedder.dim)
        report = IngestReport(collection=collection, tenant=tenant)
        now = datetime.now(UTC)
        batch: list[_Pending] = []
        batched = 0  # new chunks waiting in ``batch``
        seen: set[str] = set()
        for done, path in enumerate(files, start=1):
            source = source_name(path, root)
            if source in seen:
                continue
            seen.add(source)
            outcome_or_pending = self._prepare(path, source, collection, tenant, retention, now)
            if isinstance(outcome_or_pending, FileOutcome):
                report.files.append(outcome_or_pending)
            else:
                batch.append(outcome_or_pending)
                batched += len(outcome_or_pending.new)
                if batched >= self.batch_chunks:
                    report.files.extend(self._write(collection, tenant, batch))
                    batch, batched = [], 0
            if progress is not None:
                progress(done, len(files), source)
        report.files.extend(self._write(collection, tenant, batch))
        if prune:
            report.files.extend(self._prune(collection, tenant, paths, root, seen))
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(
        self, path: Path, source: str, collection: str, tenant: str, retention: str, now: datetime
    ) -> FileOutcome | _Pending:
        loaded = load_document(path, max_bytes=self.max_bytes)
        if isinstance(loaded, Skipped):
            return FileOutcome(source, "skipped", reason=loaded.reason, code=loaded.code)
        try:
            records = chunk_document(
                source,
                loaded,
                tenant=tenant,
                collection=collection,
                max_chars=self.max_chars,
                retention=retention,
                ingested_at=now,
            )
        except (ValueError, RecursionError) as exc:  # a parser choked on a pathological file
            return FileOutcome(source, "skipped", reason=f"could not chunk: {exc}", code="unparseable")
        if not records:
            return FileOutcome(source, "skipped", reason="no text to index", code="empty")
        existing = self.store.chunk_ids(collection, tenant=tenant, source=source)
        return _Pending.of(source, records, existing)

    def _write(self, collection: str, tenant: str, batch: list[_Pending]) -> list[FileOutcome]:
        """Embed the batch's new chunks together, then per file upsert new chunks and delete stale ones."""
        new = [r for p in batch for r in p.new]
        stored: dict[tuple[str, str], StoredChunk] = {}
        if new:
            texts = [r.text for r in new]
            flags = self.pii_detector(texts) if self.pii_detector is not None else [False] * len(texts)
            vectors = self.embedder.embed(texts)
            stored = {
                (r.source, r.chunk_id): StoredChunk(
                    record=replace(r, pii=bool(flag)),
                    dense=vector,
                    sparse=self.sparse.encode_document(r.text),
                )
                for r, flag, vector in zip(new, flags, vectors, strict=True)
            }
        outcomes: list[FileOutcome] = []
        for pending in batch:
            chunks = [stored[(r.source, r.chunk_id)] for r in pending.new]
            stale = pending.stale
            if chunks:
                self.store.upsert(collection, chunks)
            if stale:
                self.store.delete(collection, tenant=tenant, chunk_ids=sorted(stale))
            status: Status = "indexed" if chunks or stale else "unchanged"
            outcomes.append(
                FileOutcome(
                    pending.source, status, chunks=len(pending.records), added=len(chunks), removed=len(stale)
                )
            )
        return outcomes

    def _prune(
        self, collection: str, tenant: str, paths: Sequence[Path], root: Path, seen: set[str]
    ) -> list[FileOutcome]:
        """Remove the chunks of files that were ingested from a directory argument and no longer exist."""
        prefixes = [source_name(p, root).rstrip("/") + "/" for p in paths if p.is_dir()]
        prefixes = [("" if p == "./" else p) for p in prefixes]
        if not prefixes:
            return []
        outcomes: list[FileOutcome] = []
        for source in sorted(self.store.sources(collection, tenant=tenant)):
            if source in seen or not any(source.startswith(prefix) for prefix in prefixes):
                continue
            if _exists(source, root):
                continue  # still on disk (e.g. now inside a skipped directory): leave it alone
            ids = self.store.chunk_ids(collection, tenant=tenant, source=source)
            self.store.delete(collection, tenant=tenant, chunk_ids=sorted(ids))
            outcomes.append(FileOutcome(source, "removed", removed=len(ids), reason="file no longer exists"))
        return outcomes


def _exists(source: str, root: Path) -> bool:
    path = Path(source)
    return (path if path.is_absolute() else root / path).exists()


def _walk(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, plus every file under the directories (sorted, skipping VCS/venv/caches)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(_files_under(path))
        else:
            files.append(path)
    return files


def _files_under(directory: Path) -> Iterator[Path]:
    for current, dirs, names in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(current) / name

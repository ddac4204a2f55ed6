"""Retrieval's data types and its port, ``VectorStore``.

A chunk's id is a content hash (source + text), so re-ingesting an unchanged file changes nothing and a
changed file replaces only the chunks whose text changed. Every chunk carries its tenant; every query
is filtered by tenant inside the vector store's query (never after it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SparseVector:
    """BM25-style term weights: term ids (hashed tokens) and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One chunk and its metadata (the payload stored beside its vectors)."""

    chunk_id: str
    tenant: str
    collection: str
    source: str  # path relative to the ingested root, or a URL
    text: str
    start: int  # character span in the source document
    end: int
    section: str | None = None  # heading / function name the chunk belongs to
    pii: bool = False  # the PII guard found PII in the text
    injection_suspect: bool = False  # reads like instructions to a model
    retention: str = "standard"
    ingested_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """What a store upserts: the record, its dense embedding and its sparse vector."""

    record: ChunkRecord
    dense: tuple[float, ...]
    sparse: SparseVector


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: ChunkRecord
    score: float


class VectorStore(Protocol):
    """Qdrant Edge (embedded) or a Qdrant server (``MAESTRO_QDRANT_URL``) behind one interface."""

    def ensure_collection(self, collection: str, *, dim: int) -> None: ...

    def upsert(self, collection: str, chunks: Sequence[StoredChunk]) -> None: ...

    def chunk_ids(self, collection: str, *, tenant: str, source: str) -> set[str]: ...

    def sources(self, collection: str, *, tenant: str) -> set[str]: ...

    def delete(self, collection: str, *, tenant: str, chunk_ids: Sequence[str]) -> None: ...

    def search(
        self,
        collection: str,
        *,
        tenant: str,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        limit: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]: ...

    def close(self) -> None: ...

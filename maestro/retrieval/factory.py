"""Build the retrieval pieces from ``Settings``: embedder (with its cache), store, retriever, ingestor.

Nothing here opens anything at import time; the Qdrant Edge store takes its data-dir lock when opened, so
callers open it only when a retrieval command or route runs, and close it when done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from maestro.retrieval.citations import CitationVerifier
from maestro.retrieval.embeddings import Embedder, EmbeddingCache, HashingEmbedder, MiniLMEmbedder
from maestro.retrieval.ingest import Ingestor, PIIDetector
from maestro.retrieval.search import Retriever
from maestro.retrieval.sparse import SparseEncoder
from maestro.retrieval.stores import open_vector_store
from maestro.retrieval.types import VectorStore

if TYPE_CHECKING:
    from maestro.core.settings import Settings

__all__ = ["RetrievalStack", "build_embedder", "open_retrieval"]


def build_embedder(settings: Settings) -> Embedder:
    """MiniLM (or the hashing stand-in) with its vectors cached in ``data_dir/embeddings.sqlite``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(settings.data_dir / "embeddings.sqlite")
    if settings.embedder == "hashing":
        return HashingEmbedder(cache=cache)
    return MiniLMEmbedder(cache=cache)


@dataclass
class RetrievalStack:
    store: VectorStore
    embedder: Embedder
    sparse: SparseEncoder
    retriever: Retriever
    verifier: CitationVerifier

    def ingestor(self, *, pii_detector: PIIDetector | None = None) -> Ingestor:
        return Ingestor(self.store, self.embedder, sparse=self.sparse, pii_detector=pii_detector)

    def close(self) -> None:
        self.store.close()
        cache = getattr(self.embedder, "cache", None)
        if isinstance(cache, EmbeddingCache):
            cache.close()


def open_retrieval(settings: Settings, *, embedder: Embedder | None = None) -> RetrievalStack:
    """Open the configured store and build the rest around it; the caller closes the stack."""
    embedder = embedder or build_embedder(settings)
    store = open_vector_store(settings)
    sparse = SparseEncoder()
    verifier = CitationVerifier(
        embedder, threshold=settings.rag_support_threshold, on_unsupported=settings.rag_unsupported
    )
    return RetrievalStack(store, embedder, sparse, Retriever(store, embedder, sparse=sparse), verifier)

"""Hybrid retrieval: dense (MiniLM) + sparse (BM25-style) fused with RRF inside the store, filters, MMR.

The tenant filter is always part of the store's query (``VectorStore.search`` pins tenant and
collection), so another tenant's chunk is never a candidate, however near it is. ``exclude_pii`` adds the
``pii = false`` filter for callers not cleared to see PII.

MMR (maximal marginal relevance) re-ranks a deeper candidate list so near-duplicate chunks do not fill the
top k: each pick maximises ``λ·sim(query, d) − (1−λ)·max sim(d, picked)`` over the candidates' dense
vectors (taken from the embedding cache, so a chunk ingested earlier is not re-embedded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from maestro.core.errors import InvalidRequest
from maestro.retrieval.embeddings import Embedder, cosine
from maestro.retrieval.sparse import SparseEncoder
from maestro.retrieval.types import Hit, VectorStore

__all__ = ["MAX_K", "Retriever", "SearchMode", "SearchOptions", "mmr_select"]

SearchMode = Literal["hybrid", "dense", "sparse"]
MAX_K = 50


@dataclass(frozen=True, slots=True)
class SearchOptions:
    k: int = 5
    mode: SearchMode = "hybrid"
    filters: Mapping[str, Any] | None = None
    exclude_pii: bool = False
    mmr: bool = False
    mmr_lambda: float = 0.7

    def check(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise InvalidRequest(f"k must be between 1 and {MAX_K}, got {self.k}")
        if self.mode not in ("hybrid", "dense", "sparse"):
            raise InvalidRequest(f"unknown search mode {self.mode!r}: use hybrid, dense or sparse")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise InvalidRequest(f"mmr_lambda must be between 0 and 1, got {self.mmr_lambda}")


class Retriever:
    """Search one collection of one tenant; see the module docstring."""

    def __init__(
        self, store: VectorStore, embedder: Embedder, *, sparse: SparseEncoder | None = None
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse or SparseEncoder()

    def search(
        self, collection: str, query: str, *, tenant: str, options: SearchOptions | None = None
    ) -> list[Hit]:
        options = options or SearchOptions()
        options.check()
        if not query.strip():
            raise InvalidRequest("the query is empty")
        dense = self.embedder.embed_query(query) if options.mode != "sparse" else None
        sparse = self.sparse.encode_query(query) if options.mode != "dense" else None
        filters = dict(options.filters or {})
        if options.exclude_pii:
            filters["pii"] = False
        depth = max(options.k * 4, 20) if options.mmr else options.k
        hits = self.store.search(
            collection, tenant=tenant, dense=dense, sparse=sparse, limit=depth, filters=filters or None
        )
        if not options.mmr or len(hits) <= options.k:
            return hits[: options.k]
        query_vector = dense if dense is not None else self.embedder.embed_query(query)
        vectors = self.embedder.embed([h.chunk.text for h in hits])
        order = mmr_select(query_vector, vectors, k=options.k, lambda_=options.mmr_lambda)
        return [hits[i] for i in order]


def mmr_select(
    query: Sequence[float], candidates: Sequence[Sequence[float]], *, k: int, lambda_: float = 0.7
) -> list[int]:
    """Indices of ``k`` candidates chosen by maximal marginal relevance (in pick order)."""
    relevance = [cosine(query, c) for c in candidates]
    picked: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(picked) < k:

        def gain(i: int) -> float:
            redundancy = max((cosine(candidates[i], candidates[j]) for j in picked), default=0.0)
            return lambda_ * relevance[i] - (1.0 - lambda_) * redundancy

        best = max(remaining, key=gain)
        picked.append(best)
        remaining.remove(best)
    return picked

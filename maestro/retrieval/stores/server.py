"""``QdrantServerStore``: the ``VectorStore`` on a Qdrant server through qdrant-client.

One Qdrant collection per Maestro collection, named vectors ``dense`` (cosine) and ``sparse``, a tenant
payload index (``is_tenant``). The same code runs on qdrant-client's local mode (``QdrantClient(path=...)``,
brute-force numpy, one process per path), which the contract tests use; ``QdrantServerStore.local(path)``
opens it and turns its lock error into ``RetrievalUnavailable``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from maestro.core.errors import ConfigurationError, InvalidRequest
from maestro.retrieval.stores import (
    DENSE,
    RRF_K,
    RRF_WEIGHTS,
    SPARSE,
    RetrievalUnavailable,
    check_collection_name,
    check_query,
    filter_items,
    from_payload,
    missing_collection,
    point_id,
    prefetch_depth,
    to_payload,
)
from maestro.retrieval.types import Hit, SparseVector, StoredChunk

_UPSERT_BATCH = 256
_SCROLL_PAGE = 1_000


class QdrantServerStore:
    """The production ``VectorStore``: a Qdrant server (or qdrant-client local mode) behind ``client``."""

    def __init__(self, client: QdrantClient, *, tenant_idf: bool = True) -> None:
        self._client = client
        self._tenant_idf = tenant_idf
        self._known: set[str] = set()

    def _sparse_params(self, collection: str, tenant: str) -> models.SearchParams | None:
        """The sparse leg's IDF counts this tenant's chunks only (a server older than the ``idf`` search
        parameter rejects it: pass ``tenant_idf=False`` there and IDF is collection-wide)."""
        if not self._tenant_idf:
            return None
        return models.SearchParams(idf=models.IdfCorpusParams(corpus=_scope(collection, tenant, [])))

    @classmethod
    def local(cls, path: Path) -> QdrantServerStore:
        """qdrant-client's local mode at ``path``; a path another process holds: ``RetrievalUnavailable``."""
        try:
            client = QdrantClient(path=str(path))
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise RetrievalUnavailable(
                f"the local Qdrant store at {path} is in use by another process: local mode allows one "
                "process per path; stop the other process or use a Qdrant server (MAESTRO_QDRANT_URL)",
                path=str(path),
            ) from exc
        return cls(client)

    def close(self) -> None:
        """Close the client (releases local mode's lock)."""
        self._client.close()

    def __enter__(self) -> QdrantServerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections -----------------------------------------------------------------------------------

    def _exists(self, collection: str) -> bool:
        check_collection_name(collection)
        if collection in self._known:
            return True
        with _reachable(collection):
            exists = self._client.collection_exists(collection)
        if exists:
            self._known.add(collection)
        return exists

    def _existing(self, collection: str) -> None:
        if not self._exists(collection):
            raise missing_collection(collection)

    def ensure_collection(self, collection: str, *, dim: int) -> None:
        """Create the collection (dense ``dim``-dim cosine + sparse with IDF, tenant index) unless it exists.

        An existing collection built for another dimension raises ``ConfigurationError``.
        """
        if self._exists(collection):
            with _reachable(collection):
                vectors = self._client.get_collection(collection).config.params.vectors
            existing = vectors.get(DENSE) if isinstance(vectors, dict) else None
            if existing is not None and existing.size != dim:
                raise ConfigurationError(
                    f"collection {collection!r} holds {existing.size}-dim vectors but the embedder makes "
                    f"{dim}-dim ones: re-ingest into a new collection or use the original embedder",
                    collection=collection,
                )
            return
        with _reachable(collection), warnings.catch_warnings():
            # local mode (tests) ignores payload indexes and says so; a server builds them
            warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant")
            self._client.create_collection(
                collection,
                vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            self._client.create_payload_index(
                collection,
                "tenant",
                field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            )
            for field in ("collection", "source"):
                self._client.create_payload_index(
                    collection, field, field_schema=models.PayloadSchemaType.KEYWORD
                )
        self._known.add(collection)

    # -- writes ----------------------------------------------------------------------------------------

    def upsert(self, collection: str, chunks: Sequence[StoredChunk]) -> None:
        """Insert or replace chunks; the same chunk twice is one point (its id is ``(tenant, chunk_id)``)."""
        self._existing(collection)
        for start in range(0, len(chunks), _UPSERT_BATCH):
            points = [_point(collection, chunk) for chunk in chunks[start : start + _UPSERT_BATCH]]
            with _reachable(collection):
                self._client.upsert(collection, points=points, wait=True)

    def delete(self, collection: str, *, tenant: str, chunk_ids: Sequence[str]) -> None:
        """Delete ``tenant``'s chunks by id; other tenants' chunks are never touched. No-op if missing."""
        if not chunk_ids or not self._exists(collection):
            return
        ids: list[models.ExtendedPointId] = [point_id(tenant, chunk_id) for chunk_id in chunk_ids]
        scope = _scope(collection, tenant, [models.HasIdCondition(has_id=ids)])
        with _reachable(collection):
            self._client.delete(collection, points_selector=models.FilterSelector(filter=scope), wait=True)

    # -- reads -----------------------------------------------------------------------------------------

    def chunk_ids(self, collection: str, *, tenant: str, source: str) -> set[str]:
        """The ids of ``tenant``'s chunks from ``source`` (for replacing only the chunks that changed)."""
        return self._scroll_field(
            collection, _scope(collection, tenant, [_match("source", source)]), "chunk_id"
        )

    def sources(self, collection: str, *, tenant: str) -> set[str]:
        """Every source ``tenant`` has chunks from (for removing the chunks of deleted files)."""
        return self._scroll_field(collection, _scope(collection, tenant, []), "source")

    def _scroll_field(self, collection: str, scope: models.Filter, key: str) -> set[str]:
        self._existing(collection)
        found: set[str] = set()
        offset: models.ExtendedPointId | None = None
        while True:
            with _reachable(collection):
                records, offset = self._client.scroll(
                    collection,
                    scroll_filter=scope,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=[key],
                    with_vectors=False,
                )
            found.update(str((record.payload or {})[key]) for record in records)
            if offset is None:
                return found

    def search(
        self,
        collection: str,
        *,
        tenant: str,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        limit: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """``tenant``'s nearest chunks: dense, sparse or both (RRF); the tenant filter is in the query."""
        check_query(dense, sparse)
        self._existing(collection)
        scope = _scope(collection, tenant, [_match(key, value) for key, value in filter_items(filters)])
        legs: list[tuple[Any, str, models.SearchParams | None]] = []
        if dense is not None:
            legs.append(([float(x) for x in dense], DENSE, None))
        if sparse is not None and sparse.indices:
            vector = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
            legs.append((vector, SPARSE, self._sparse_params(collection, tenant)))
        if not legs:
            return []  # a sparse-only query without a single known term
        with _reachable(collection):
            if len(legs) == 1:
                query, using, params = legs[0]
                response = self._client.query_points(
                    collection,
                    query=query,
                    using=using,
                    query_filter=scope,
                    search_params=params,
                    limit=limit,
                    with_payload=True,
                )
            else:
                depth = prefetch_depth(limit)
                response = self._client.query_points(
                    collection,
                    prefetch=[
                        models.Prefetch(query=query, using=using, filter=scope, params=params, limit=depth)
                        for query, using, params in legs
                    ],
                    query=models.RrfQuery(rrf=models.Rrf(k=RRF_K, weights=list(RRF_WEIGHTS[: len(legs)]))),
                    query_filter=scope,
                    limit=limit,
                    with_payload=True,
                )
        return [
            Hit(chunk=from_payload(point.payload or {}), score=float(point.score))
            for point in response.points
        ]


@contextmanager
def _reachable(collection: str) -> Iterator[None]:
    """Turn qdrant-client's transport and server errors into ``RetrievalUnavailable``."""
    try:
        yield
    except ResponseHandlingException as exc:
        raise RetrievalUnavailable(
            f"the Qdrant server did not answer for collection {collection!r}: {exc}; "
            "check MAESTRO_QDRANT_URL and that the server is up",
            collection=collection,
        ) from exc
    except UnexpectedResponse as exc:
        if exc.status_code is not None and exc.status_code < 500:
            raise InvalidRequest(
                f"the Qdrant server refused a request on collection {collection!r}: {exc}",
                collection=collection,
            ) from exc
        raise RetrievalUnavailable(
            f"the Qdrant server failed on collection {collection!r}: {exc}", collection=collection
        ) from exc


def _match(key: str, value: str | int | bool) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _scope(collection: str, tenant: str, conditions: Sequence[models.Condition]) -> models.Filter:
    """A filter that always pins ``tenant`` and ``collection``, plus ``conditions``."""
    must: list[models.Condition] = [_match("tenant", tenant), _match("collection", collection), *conditions]
    return models.Filter(must=must)


def _point(collection: str, chunk: StoredChunk) -> models.PointStruct:
    record = chunk.record
    if record.collection != collection:
        raise InvalidRequest(
            f"chunk {record.chunk_id!r} belongs to collection {record.collection!r}, not {collection!r}",
            collection=collection,
        )
    sparse = models.SparseVector(indices=list(chunk.sparse.indices), values=list(chunk.sparse.values))
    vectors: dict[str, Any] = {DENSE: [float(x) for x in chunk.dense], SPARSE: sparse}
    return models.PointStruct(
        id=point_id(record.tenant, record.chunk_id), vector=vectors, payload=to_payload(record)
    )

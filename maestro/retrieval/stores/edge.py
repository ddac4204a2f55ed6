"""``QdrantEdgeStore``: Qdrant's engine in-process (qdrant-edge), one shard per collection.

Layout: ``<data_dir>/qdrant/<collection>/`` is a shard with the named vectors ``dense`` (cosine) and
``sparse``; ``<data_dir>/qdrant/.lock`` is held (``fcntl.flock``) for the store's lifetime, so a second
process opening the same data dir fails at open time with ``RetrievalUnavailable`` and the first one
carries on. (qdrant-edge locks each shard's WAL too, but only when the shard is first used, with a bare
``Exception``: "failed to open WAL ...: Kind(WouldBlock)".)
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    HasIdCondition,
    IdfParams,
    KeywordIndexParams,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)
from qdrant_edge import SparseVector as EdgeSparseVector

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

_UPSERT_BATCH = 1_000
_SCROLL_PAGE = 1_000
_CONDITION = FieldCondition | HasIdCondition


class QdrantEdgeStore:
    """The embedded ``VectorStore``: Qdrant Edge shards under ``data_dir/qdrant``; one process per dir.

    ``optimize_after``: after that many points were upserted into a collection since its last
    optimisation, ``upsert`` runs ``optimize`` (builds the HNSW index: 20-45 s for 50k 384-dim points).
    """

    def __init__(self, data_dir: Path, *, optimize_after: int = 5_000) -> None:
        self._root = Path(data_dir) / "qdrant"
        self._optimize_after = optimize_after
        self._shards: dict[str, EdgeShard] = {}
        self._pending: dict[str, int] = {}
        self._tenants: dict[str, set[str]] = {}  # per open collection: every tenant with points (a superset)
        self._guard = threading.RLock()
        self._lock_file = self._acquire_lock()

    # -- lifecycle -------------------------------------------------------------------------------------

    def _acquire_lock(self) -> IO[bytes]:
        self._root.mkdir(parents=True, exist_ok=True)
        path = self._root / ".lock"
        handle = open(path, "a+b")  # held open for the store's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "unknown"
            handle.close()
            raise RetrievalUnavailable(
                f"the embedded vector store at {self._root} is in use by another process (pid {holder}): "
                "Qdrant Edge allows one process per data dir; stop the other process, use another "
                "MAESTRO_DATA_DIR, or set MAESTRO_QDRANT_URL to share a Qdrant server",
                path=str(self._root),
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        return handle

    def close(self) -> None:
        """Flush and close every shard, then release the data dir's lock. Safe to call twice."""
        with self._guard:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()
            if not self._lock_file.closed:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()

    def __enter__(self) -> QdrantEdgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shards ----------------------------------------------------------------------------------------

    def _path(self, collection: str) -> Path:
        return self._root / check_collection_name(collection)

    def _shard(self, collection: str) -> EdgeShard | None:
        """The open shard of ``collection``, loading it from disk on first use; ``None`` if missing."""
        with self._guard:
            if self._lock_file.closed:
                raise InvalidRequest("the vector store is closed", collection=collection)
            shard = self._shards.get(collection)
            if shard is None:
                path = self._path(collection)
                if not (path / "edge_config.json").exists():
                    return None
                shard = self._open(lambda: EdgeShard.load(str(path)), collection)
                self._shards[collection] = shard
            return shard

    def _existing(self, collection: str) -> EdgeShard:
        shard = self._shard(collection)
        if shard is None:
            raise missing_collection(collection)
        return shard

    def _open(self, opener: Any, collection: str) -> EdgeShard:
        try:
            shard: EdgeShard = opener()
        except Exception as exc:  # qdrant-edge raises bare Exception for every failure
            message = str(exc)
            if "WouldBlock" in message:
                raise RetrievalUnavailable(
                    f"collection {collection!r} at {self._path(collection)} is open in another process: "
                    "Qdrant Edge allows one process per data dir",
                    collection=collection,
                ) from exc
            raise ConfigurationError(
                f"cannot open collection {collection!r} at {self._path(collection)}: {message}",
                collection=collection,
            ) from exc
        return shard

    def ensure_collection(self, collection: str, *, dim: int) -> None:
        """Create the collection's shard (dense ``dim``-dim cosine + sparse with IDF) unless it exists.

        An existing collection built for another dimension raises ``ConfigurationError``.
        """
        config = EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=dim, distance=Distance.Cosine)},
            sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
        )
        with self._guard:
            shard = self._shard(collection)
            if shard is not None:
                existing = shard_dim(self._path(collection))
                if existing is not None and existing != dim:
                    raise ConfigurationError(
                        f"collection {collection!r} holds {existing}-dim vectors but the embedder makes "
                        f"{dim}-dim ones: re-ingest into a new collection or use the original embedder",
                        collection=collection,
                    )
                return
            path = self._path(collection)
            shard = self._open(lambda: EdgeShard.create(str(path), config), collection)
            shard.update(UpdateOperation.create_field_index("tenant", KeywordIndexParams(is_tenant=True)))
            # every filter pins collection too: unindexed, that condition costs ~5 ms a query at 50k points
            for field in ("collection", "source"):
                shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
            self._shards[collection] = shard

    def optimize(self, collection: str | None = None) -> None:
        """Build the HNSW index and merge segments of one collection (or every open one); blocks."""
        with self._guard:
            names = [collection] if collection is not None else list(self._shards)
            for name in names:
                self._existing(name).optimize()
                self._pending[name] = 0

    # -- writes ----------------------------------------------------------------------------------------

    def upsert(self, collection: str, chunks: Sequence[StoredChunk]) -> None:
        """Insert or replace chunks; the same chunk twice is one point (its id is ``(tenant, chunk_id)``)."""
        shard = self._existing(collection)
        for start in range(0, len(chunks), _UPSERT_BATCH):
            points = [_point(collection, chunk) for chunk in chunks[start : start + _UPSERT_BATCH]]
            shard.update(UpdateOperation.upsert_points(points))
        with self._guard:
            self._tenants_of(collection).update(chunk.record.tenant for chunk in chunks)
            self._pending[collection] = self._pending.get(collection, 0) + len(chunks)
            due = self._pending[collection] >= self._optimize_after
        if due:
            self.optimize(collection)

    def delete(self, collection: str, *, tenant: str, chunk_ids: Sequence[str]) -> None:
        """Delete ``tenant``'s chunks by id; other tenants' chunks are never touched. No-op if missing."""
        shard = self._shard(collection)
        if shard is None or not chunk_ids:
            return
        ids: set[Any] = {point_id(tenant, chunk_id) for chunk_id in chunk_ids}
        scope = _scope(collection, tenant, [HasIdCondition(ids)])
        shard.update(UpdateOperation.delete_points_by_filter(scope))

    # -- reads -----------------------------------------------------------------------------------------

    def chunk_ids(self, collection: str, *, tenant: str, source: str) -> set[str]:
        """The ids of ``tenant``'s chunks from ``source`` (for replacing only the chunks that changed)."""
        scope = _scope(collection, tenant, [FieldCondition("source", match=MatchValue(source))])
        return self._scroll_field(collection, scope, "chunk_id")

    def sources(self, collection: str, *, tenant: str) -> set[str]:
        """Every source ``tenant`` has chunks from (for removing the chunks of deleted files)."""
        return self._scroll_field(collection, _scope(collection, tenant, []), "source")

    def _tenants_of(self, collection: str) -> set[str]:
        """The tenants with points in ``collection``, read once per process (kept up to date on upsert).

        Deletes never shrink it: a stale member only costs the tenant-scoped IDF below, never correctness.
        """
        with self._guard:
            known = self._tenants.get(collection)
            if known is None:
                known = self._scroll_field(collection, Filter(must=[]), "tenant")
                self._tenants[collection] = known
            return known

    def _scroll_field(self, collection: str, scope: Filter, key: str) -> set[str]:
        shard = self._existing(collection)
        found: set[str] = set()
        offset: Any = None
        while True:
            request = ScrollRequest(offset=offset, limit=_SCROLL_PAGE, filter=scope, with_payload=[key])
            records, offset = shard.scroll(request)
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
        shard = self._existing(collection)
        conditions: list[_CONDITION] = [
            FieldCondition(key, match=MatchValue(int(value) if isinstance(value, bool) else value))
            for key, value in filter_items(filters)
        ]
        scope = _scope(collection, tenant, conditions)
        # the sparse leg's IDF counts this tenant's chunks only: other tenants' words never shift its ranking;
        # in a collection that holds one tenant only, the collection-wide IDF is the same and ~6x cheaper
        shared = self._tenants_of(collection) - {tenant}
        tenant_idf = SearchParams(idf=IdfParams(corpus=_scope(collection, tenant, []))) if shared else None
        legs: list[tuple[Query, SearchParams | None]] = []
        if dense is not None:
            legs.append((Query.Nearest([float(x) for x in dense], using=DENSE), None))
        if sparse is not None and sparse.indices:
            vector = EdgeSparseVector(list(sparse.indices), list(sparse.values))
            legs.append((Query.Nearest(vector, using=SPARSE), tenant_idf))
        if not legs:
            return []  # a sparse-only query without a single known term
        if len(legs) == 1:
            query, params = legs[0]
            request = QueryRequest(limit=limit, query=query, filter=scope, params=params, with_payload=True)
        else:
            depth = prefetch_depth(limit)
            request = QueryRequest(
                limit=limit,
                prefetches=[
                    Prefetch(limit=depth, query=query, filter=scope, params=params) for query, params in legs
                ],
                query=Fusion.Rrf(k=RRF_K, weights=list(RRF_WEIGHTS[: len(legs)])),  # type: ignore[arg-type]
                filter=scope,
                with_payload=True,
            )
        try:
            points = shard.query(request)
        except Exception as exc:  # qdrant-edge raises bare Exception, e.g. for a wrong dimension
            raise InvalidRequest(f"search in collection {collection!r} failed: {exc}") from exc
        return [Hit(chunk=from_payload(point.payload or {}), score=float(point.score)) for point in points]


def shard_dim(path: Path) -> int | None:
    """The dense dimension recorded in a shard's ``edge_config.json``; ``None`` if unreadable."""
    import json

    try:
        config = json.loads((path / "edge_config.json").read_text())
        return int(config["vectors"][DENSE]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _scope(collection: str, tenant: str, conditions: Sequence[_CONDITION]) -> Filter:
    """A filter that always pins ``tenant`` and ``collection``, plus ``conditions``."""
    must: list[Any] = [
        FieldCondition("tenant", match=MatchValue(tenant)),
        FieldCondition("collection", match=MatchValue(collection)),
        *conditions,
    ]
    return Filter(must=must)


def _point(collection: str, chunk: StoredChunk) -> Point:
    record = chunk.record
    if record.collection != collection:
        raise InvalidRequest(
            f"chunk {record.chunk_id!r} belongs to collection {record.collection!r}, not {collection!r}",
            collection=collection,
        )
    vectors: dict[str, Any] = {
        DENSE: [float(x) for x in chunk.dense],
        SPARSE: EdgeSparseVector(list(chunk.sparse.indices), list(chunk.sparse.values)),
    }
    return Point(point_id(record.tenant, record.chunk_id), vectors, to_payload(record, bools_as_ints=True))

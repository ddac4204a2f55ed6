"""The ``VectorStore`` contract, run against every adapter: Qdrant Edge and qdrant-client (local mode).

Qdrant local mode runs ``QdrantServerStore``'s code path (the same qdrant-client calls as a server).
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from maestro.core.errors import ConfigurationError, InvalidRequest, NotFound
from maestro.core.settings import Settings
from maestro.retrieval.stores import RetrievalUnavailable, open_vector_store
from maestro.retrieval.stores.edge import QdrantEdgeStore
from maestro.retrieval.stores.server import QdrantServerStore
from maestro.retrieval.types import ChunkRecord, Hit, SparseVector, StoredChunk, VectorStore

DIM = 8
COLL = "docs"
Opener = Callable[[], VectorStore]


def _open_edge(path: Path) -> VectorStore:
    return QdrantEdgeStore(path)


def _open_local(path: Path) -> VectorStore:
    return QdrantServerStore.local(path / "qdrant-local")


OPENERS: dict[str, Callable[[Path], VectorStore]] = {"edge": _open_edge, "local": _open_local}


@pytest.fixture(params=sorted(OPENERS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the adapter under test on this test's tmp dir (call again after ``close`` to reopen)."""
    open_at = OPENERS[request.param]
    return lambda: open_at(tmp_path)


@pytest.fixture
def store(opener: Opener) -> Iterator[VectorStore]:
    opened = opener()
    opened.ensure_collection(COLL, dim=DIM)
    yield opened
    opened.close()


def _unit(values: list[float]) -> tuple[float, ...]:
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


def _axis(i: int, wobble: float = 0.0) -> tuple[float, ...]:
    vec = [wobble] * DIM
    vec[i] = 1.0
    return _unit(vec)


def _chunk(
    chunk_id: str,
    *,
    tenant: str = "acme",
    source: str = "a.md",
    dense: tuple[float, ...] | None = None,
    terms: tuple[int, ...] = (1,),
    pii: bool = False,
    extra: dict[str, object] | None = None,
) -> StoredChunk:
    record = ChunkRecord(
        chunk_id=chunk_id,
        tenant=tenant,
        collection=COLL,
        source=source,
        text=f"text of {chunk_id}",
        start=0,
        end=10,
        section="Intro",
        pii=pii,
        ingested_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        extra=extra or {},
    )
    sparse = SparseVector(indices=terms, values=tuple(1.0 for _ in terms))
    return StoredChunk(record=record, dense=dense or _axis(0), sparse=sparse)


def _ids(hits: Sequence[Hit]) -> list[str]:
    return [hit.chunk.chunk_id for hit in hits]


def test_round_trip_keeps_every_field(store: VectorStore) -> None:
    chunk = _chunk("c1", pii=True, extra={"lang": "en", "page": 3, "draft": True})
    store.upsert(COLL, [chunk])
    hits = store.search(COLL, tenant="acme", dense=chunk.dense)
    assert [hit.chunk for hit in hits] == [chunk.record]
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)  # cosine of a vector with itself


def test_upsert_is_idempotent(store: VectorStore) -> None:
    store.upsert(COLL, [_chunk("c1")])
    store.upsert(COLL, [_chunk("c1"), _chunk("c1")])
    assert store.chunk_ids(COLL, tenant="acme", source="a.md") == {"c1"}
    assert _ids(store.search(COLL, tenant="acme", dense=_axis(0), limit=10)) == ["c1"]


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_tenant_filter_is_inside_the_query(store: VectorStore, mode: str) -> None:
    """RELIABILITY #4: B's chunks are the nearest neighbours, yet A gets A's chunks and none of B's."""
    query = _axis(0)
    near_b = [_chunk(f"b{i}", tenant="globex", dense=query, terms=(7,)) for i in range(30)]
    far_a = [_chunk(f"a{i}", tenant="acme", dense=_axis(5, wobble=0.1 * i), terms=(7, 8)) for i in range(3)]
    store.upsert(COLL, [*near_b, *far_a])
    dense = query if mode in {"dense", "hybrid"} else None
    sparse = SparseVector((7,), (1.0,)) if mode in {"sparse", "hybrid"} else None
    hits = store.search(COLL, tenant="acme", dense=dense, sparse=sparse, limit=3)
    assert sorted(_ids(hits)) == ["a0", "a1", "a2"]
    assert {hit.chunk.tenant for hit in hits} == {"acme"}
    assert len(store.search(COLL, tenant="globex", dense=dense, sparse=sparse, limit=50)) == 30


def test_sparse_idf_counts_only_the_tenants_own_chunks(store: VectorStore) -> None:
    """Globex's 30 chunks with term 7 must not make term 7 look common to acme's queries."""
    store.upsert(COLL, [_chunk(f"b{i}", tenant="globex", terms=(7,)) for i in range(30)])
    store.upsert(COLL, [_chunk("a7", terms=(7,)), _chunk("a9", terms=(9,)), _chunk("a1", terms=(1,))])
    hits = store.search(COLL, tenant="acme", sparse=SparseVector((7, 9), (1.0, 1.0)), limit=5)
    scores = {hit.chunk.chunk_id: hit.score for hit in hits}
    assert set(scores) == {"a7", "a9"}
    assert scores["a7"] == pytest.approx(scores["a9"])


def test_chunk_ids_and_delete_stay_in_their_tenant(store: VectorStore) -> None:
    store.upsert(
        COLL, [_chunk("same", tenant="acme"), _chunk("same", tenant="globex"), _chunk("x", tenant="acme")]
    )
    store.upsert(COLL, [_chunk("other", tenant="acme", source="b.md")])
    assert store.chunk_ids(COLL, tenant="acme", source="a.md") == {"same", "x"}
    assert store.chunk_ids(COLL, tenant="globex", source="a.md") == {"same"}
    assert store.sources(COLL, tenant="acme") == {"a.md", "b.md"}
    assert store.sources(COLL, tenant="globex") == {"a.md"}
    assert store.sources(COLL, tenant="initech") == set()
    store.delete(COLL, tenant="acme", chunk_ids=["same"])
    assert store.chunk_ids(COLL, tenant="acme", source="a.md") == {"x"}
    assert store.chunk_ids(COLL, tenant="globex", source="a.md") == {"same"}
    store.delete(COLL, tenant="globex", chunk_ids=["x", "missing"])  # not globex's: untouched
    assert store.chunk_ids(COLL, tenant="acme", source="a.md") == {"x"}
    store.delete(COLL, tenant="acme", chunk_ids=[])


def test_exact_match_filters(store: VectorStore) -> None:
    store.upsert(
        COLL,
        [
            _chunk("a-clean", source="a.md"),
            _chunk("a-pii", source="a.md", pii=True),
            _chunk("b-clean", source="b.md", extra={"lang": "de", "draft": True}),
        ],
    )

    def found(**filters: object) -> set[str]:
        return set(_ids(store.search(COLL, tenant="acme", dense=_axis(0), limit=10, filters=filters)))

    assert found(source="a.md") == {"a-clean", "a-pii"}
    assert found(pii=False) == {"a-clean", "b-clean"}
    assert found(pii=True) == {"a-pii"}
    assert found(source="a.md", pii=False) == {"a-clean"}
    assert found(lang="de") == {"b-clean"}
    assert found(draft=True) == {"b-clean"}
    assert found(source="nope.md") == set()
    with pytest.raises(InvalidRequest, match="tenant"):
        found(tenant="globex")
    with pytest.raises(InvalidRequest, match="exactly"):
        found(source=["a.md"])


def test_sparse_and_hybrid_search(store: VectorStore) -> None:
    store.upsert(
        COLL,
        [
            _chunk("dense-hit", dense=_axis(0), terms=(1,)),
            _chunk("sparse-hit", dense=_axis(3), terms=(42, 43)),
            _chunk("both", dense=_axis(0, wobble=0.05), terms=(42,)),
        ],
    )
    sparse_hits = store.search(COLL, tenant="acme", sparse=SparseVector((42, 43), (1.0, 1.0)), limit=3)
    assert _ids(sparse_hits) == ["sparse-hit", "both"]
    assert sparse_hits[0].score > sparse_hits[1].score > 0  # the engine's IDF-weighted dot product
    # dense ranks both > dense-hit > sparse-hit, sparse ranks sparse-hit > both: RRF puts "both" first
    hybrid = store.search(
        COLL, tenant="acme", dense=_axis(0, wobble=0.05), sparse=SparseVector((42, 43), (1.0, 1.0)), limit=3
    )
    assert _ids(hybrid)[0] == "both"
    assert set(_ids(hybrid)) == {"dense-hit", "sparse-hit", "both"}
    assert store.search(COLL, tenant="acme", sparse=SparseVector((), ()), limit=3) == []
    with pytest.raises(InvalidRequest, match="dense vector, a sparse vector"):
        store.search(COLL, tenant="acme")


def test_missing_collection(store: VectorStore) -> None:
    with pytest.raises(NotFound, match=r"collection 'ghost' does not exist.*--collection ghost"):
        store.search(COLL.replace("docs", "ghost"), tenant="acme", dense=_axis(0))
    with pytest.raises(NotFound, match="ghost"):
        store.chunk_ids("ghost", tenant="acme", source="a.md")
    store.delete("ghost", tenant="acme", chunk_ids=["c1"])  # nothing to delete
    with pytest.raises(InvalidRequest, match="invalid collection name"):
        store.search("../etc", tenant="acme", dense=_axis(0))


def test_ensure_collection_is_idempotent_and_checks_dim(store: VectorStore) -> None:
    store.upsert(COLL, [_chunk("c1")])
    store.ensure_collection(COLL, dim=DIM)
    assert store.chunk_ids(COLL, tenant="acme", source="a.md") == {"c1"}
    with pytest.raises(ConfigurationError, match="8-dim"):
        store.ensure_collection(COLL, dim=DIM * 2)


def test_data_survives_reopen(opener: Opener) -> None:
    first = opener()
    first.ensure_collection(COLL, dim=DIM)
    first.upsert(COLL, [_chunk(f"c{i}", dense=_axis(i % DIM, wobble=0.01 * i)) for i in range(40)])
    first.close()
    first.close()  # idempotent
    second = opener()
    try:
        assert len(store_ids := second.chunk_ids(COLL, tenant="acme", source="a.md")) == 40
        assert "c7" in store_ids
        assert len(second.search(COLL, tenant="acme", dense=_axis(1), limit=5)) == 5
    finally:
        second.close()


_SECOND_PROCESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from maestro.retrieval.stores import RetrievalUnavailable
    from maestro.retrieval.stores.edge import QdrantEdgeStore
    from maestro.retrieval.stores.server import QdrantServerStore
    kind, path = sys.argv[1], Path(sys.argv[2])
    try:
        store = QdrantEdgeStore(path) if kind == "edge" else QdrantServerStore.local(path / "qdrant-local")
    except RetrievalUnavailable as exc:
        sys.stdout.write("UNAVAILABLE " + exc.code + " " + exc.message)
        sys.exit(0)
    sys.stdout.write("OPENED")
    """
)


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_second_process_is_refused_and_first_is_unaffected(kind: str, tmp_path: Path) -> None:
    """RELIABILITY #29: a second process opening the embedded store gets a clear error at open time."""
    first = OPENERS[kind](tmp_path)
    try:
        first.ensure_collection(COLL, dim=DIM)
        first.upsert(COLL, [_chunk("c1")])
        result = subprocess.run(
            [sys.executable, "-c", _SECOND_PROCESS, kind, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert result.stdout.startswith("UNAVAILABLE retrieval_unavailable"), result.stdout + result.stderr
        assert "another process" in result.stdout
        first.upsert(COLL, [_chunk("c2")])
        assert store_ids(first) == {"c1", "c2"}
    finally:
        first.close()
    reopened = OPENERS[kind](tmp_path)  # the lock goes with close()
    try:
        assert store_ids(reopened) == {"c1", "c2"}
    finally:
        reopened.close()


def store_ids(store: VectorStore) -> set[str]:
    return store.chunk_ids(COLL, tenant="acme", source="a.md")


def test_edge_refuses_a_second_store_in_the_same_process(tmp_path: Path) -> None:
    first = QdrantEdgeStore(tmp_path)
    try:
        with pytest.raises(RetrievalUnavailable, match="in use by another process"):
            QdrantEdgeStore(tmp_path)
    finally:
        first.close()
    QdrantEdgeStore(tmp_path).close()


def test_edge_optimizes_after_large_upserts(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = QdrantEdgeStore(tmp_path, optimize_after=50)
    try:
        store.ensure_collection(COLL, dim=DIM)
        chunks = [_chunk(f"c{i}", dense=_unit([rng.uniform(-1, 1) for _ in range(DIM)])) for i in range(60)]
        store.upsert(COLL, chunks)  # crosses optimize_after: optimizes in place
        store.optimize()
        hits = store.search(COLL, tenant="acme", dense=chunks[17].dense, limit=1)
        assert _ids(hits) == ["c17"]
    finally:
        store.close()


def test_factory_picks_edge_without_a_url(tmp_path: Path) -> None:
    store = open_vector_store(Settings(data_dir=tmp_path))
    try:
        assert isinstance(store, QdrantEdgeStore)
        assert (tmp_path / "qdrant" / ".lock").exists()
    finally:
        store.close()

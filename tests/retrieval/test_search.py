"""Hybrid search over a real Qdrant Edge store: modes, filters, PII exclusion, MMR, bad options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maestro.core.errors import InvalidRequest
from maestro.retrieval.embeddings import HashingEmbedder
from maestro.retrieval.ingest import Ingestor
from maestro.retrieval.search import Retriever, SearchOptions, mmr_select
from maestro.retrieval.stores.edge import QdrantEdgeStore

COLL = "kb"


@pytest.fixture
def retriever(tmp_path: Path) -> Iterator[Retriever]:
    root = tmp_path / "kb"
    root.mkdir()
    files = {
        "queues.md": "# Queues\n\nCelery workers consume tasks from the Redis broker queue.\n",
        "queues-copy.md": "# Queues\n\nCelery workers consume tasks from the Redis broker queue!\n",
        "queues-again.md": (
            "# Queues again\n\nCelery workers consume tasks from the Redis broker queue.\n\nAlso.\n"
        ),
        "graphs.md": "# Graphs\n\nFalkorDB answers Cypher queries over the contract graph.\n",
        "budgets.md": "# Budgets\n\nMonthly budgets limit what a tenant spends on models.\n",
        "ids.py": "def parse_http_response(raw):\n    '''Split the status line.'''\n    return raw.split()\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    store = QdrantEdgeStore(tmp_path / "var")
    embedder = HashingEmbedder(dim=128)
    Ingestor(store, embedder).ingest([root], collection=COLL, tenant="acme", root=tmp_path)
    yield Retriever(store, embedder)
    store.close()


def _sources(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.chunk.source for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_every_mode_finds_the_obvious_chunk(retriever: Retriever, mode: str) -> None:
    hits = retriever.search(
        COLL, "FalkorDB Cypher contract graph", tenant="acme", options=SearchOptions(k=2, mode=mode)
    )  # type: ignore[arg-type]
    assert _sources(hits)[0] == "kb/graphs.md"


def test_sparse_matches_identifier_parts(retriever: Retriever) -> None:
    hits = retriever.search(
        COLL, "http response parse", tenant="acme", options=SearchOptions(k=1, mode="sparse")
    )
    assert _sources(hits) == ["kb/ids.py"]


def test_filters_and_tenant(retriever: Retriever) -> None:
    only = retriever.search(
        COLL, "queue", tenant="acme", options=SearchOptions(k=5, filters={"source": "kb/budgets.md"})
    )
    assert set(_sources(only)) == {"kb/budgets.md"}
    assert retriever.search(COLL, "Celery workers queue", tenant="globex") == []


def test_mmr_skips_near_duplicates(retriever: Retriever) -> None:
    plain = retriever.search(COLL, "Celery workers Redis queue", tenant="acme", options=SearchOptions(k=3))
    assert sum("queues" in s for s in _sources(plain)) == 3  # three near-identical chunks fill the top 3
    diverse = retriever.search(
        COLL,
        "Celery workers Redis queue",
        tenant="acme",
        options=SearchOptions(k=3, mmr=True, mmr_lambda=0.3),
    )
    assert _sources(diverse)[0] in {"kb/queues.md", "kb/queues-copy.md", "kb/queues-again.md"}
    assert sum("queues" in s for s in _sources(diverse)) < 3


def test_mmr_select_prefers_novelty() -> None:
    query = (1.0, 0.0)
    candidates = [(1.0, 0.0), (0.99, 0.01), (0.7, 0.7)]
    assert mmr_select(query, candidates, k=2, lambda_=1.0) == [0, 1]
    assert mmr_select(query, candidates, k=2, lambda_=0.3) == [0, 2]


@pytest.mark.parametrize(
    "options",
    [SearchOptions(k=0), SearchOptions(k=51), SearchOptions(mode="fuzzy"), SearchOptions(mmr_lambda=2.0)],  # type: ignore[arg-type]
)
def test_bad_options_are_refused(retriever: Retriever, options: SearchOptions) -> None:
    with pytest.raises(InvalidRequest):
        retriever.search(COLL, "queue", tenant="acme", options=options)


def test_empty_query_is_refused(retriever: Retriever) -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        retriever.search(COLL, "   ", tenant="acme")

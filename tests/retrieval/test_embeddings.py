"""MiniLM embeddings (the real model from the wheel, offline) and the SQLite embedding cache."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from maestro.retrieval.embeddings import (
    MINILM_DIM,
    Embedder,
    EmbeddingCache,
    HashingEmbedder,
    MiniLMEmbedder,
    text_key,
)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class _CountingMiniLM(MiniLMEmbedder):
    """Counts the texts that reach the model."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.computed: list[str] = []

    def _compute(self, texts: list[str]) -> list[tuple[float, ...]]:
        self.computed.extend(texts)
        return super()._compute(texts)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    """One real MiniLM per module (the model itself is loaded once per process)."""
    return MiniLMEmbedder(batch_size=8)


def test_import_loads_no_model() -> None:
    code = "import sys, maestro.retrieval.embeddings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_minilm_vectors_are_384_dim_unit_and_meaningful(minilm: MiniLMEmbedder) -> None:
    texts = [
        "How do I reset my password?",
        "Steps to recover a forgotten account password.",
        "The recipe needs two cups of flour and an egg.",
    ]
    vectors = minilm.embed(texts)
    assert isinstance(minilm, Embedder)
    assert minilm.dim == MINILM_DIM == 384
    assert [len(v) for v in vectors] == [384, 384, 384]
    for vec in vectors:
        assert math.isclose(math.sqrt(_dot(vec, vec)), 1.0, abs_tol=1e-4)
    assert _dot(vectors[0], vectors[1]) > _dot(vectors[0], vectors[2]) + 0.2
    query = minilm.embed_query("forgot password")
    assert _dot(query, vectors[1]) > _dot(query, vectors[2])
    # The loader set the offline switches (setdefault: values already present are kept).
    assert os.environ.get("HF_HUB_OFFLINE") and os.environ.get("TRANSFORMERS_OFFLINE")


@pytest.mark.slow
def test_cache_hits_skip_the_model(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    first = _CountingMiniLM(batch_size=2, cache=cache)
    texts = ["alpha beta", "gamma delta", "alpha beta", "epsilon"]
    vectors = first.embed(texts)
    assert sorted(first.computed) == ["alpha beta", "epsilon", "gamma delta"]  # duplicates computed once
    assert vectors[0] == vectors[2]
    assert len(cache) == 3

    second = _CountingMiniLM(cache=EmbeddingCache(tmp_path / "emb.sqlite"))  # a fresh connection
    again = second.embed(["epsilon", "alpha beta", "zeta"])
    assert second.computed == ["zeta"]
    assert again[0] == vectors[3] and again[1] == vectors[0]
    cache.close()


def test_cache_roundtrip_threads_and_model_keying(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "sub" / "emb.sqlite")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            embedder = HashingEmbedder(dim=16, cache=cache)
            embedder.embed([f"text {n} {i}" for i in range(20)])
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 80
    assert text_key("a", "x") != text_key("b", "x")  # another model never reuses these vectors
    assert cache.get_many([text_key("hashing-16", "text 0 0"), "missing"]).keys() == {
        text_key("hashing-16", "text 0 0")
    }
    cache.close()


def test_hashing_embedder_is_deterministic_and_unit() -> None:
    embedder = HashingEmbedder()
    a, b, c = embedder.embed(["retry the HTTP request", "retry HTTP requests", "bake bread"])
    assert a == HashingEmbedder().embed_query("retry the HTTP request")
    assert len(a) == 384 and math.isclose(_dot(a, a), 1.0)
    assert _dot(a, b) > _dot(a, c)
    assert math.isclose(_dot(*embedder.embed(["", ""])), 1.0)  # empty text: still a unit vector
    assert isinstance(embedder, Embedder)


def test_rejects_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)

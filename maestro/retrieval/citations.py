"""Citations: number and delimit the sources for the model, parse what it cites, verify every citation.

**Sources in the prompt.** Each retrieved chunk becomes ``<source n="k" path="..."> text </source>``;
anything in the text that could close the delimiter early is defused, attribute values are quoted
safely, and chunks that read like instructions carry ``untrusted="true"``. The system prompt says the
sources are data, not instructions.

**Parsing.** Structured output ``{"sentences": [{"text": ..., "sources": [n, ...]}]}`` when the model was
asked for JSON; otherwise (or when the JSON is broken) the text is split into sentences and the ``[n]``
markers in each are its citations.

**Verification.** For every sentence and every number it cites: the number must be one of the sources
given (an invented number is dropped and reported); the cited chunk must *support* the sentence. Support
combines a lexical score (the share of the sentence's content words, lightly stemmed, that occur in the
chunk, not counting words the question itself brought) and an embedding score (cosine between sentence
and chunk): ``support = w·lexical + (1−w)·cosine``. A sentence is supported when a cited chunk reaches
``threshold``. A sentence without a citation is attributed to the source that supports it best, when one
reaches the threshold (``attribute_uncited``; small models often answer from a source without citing it).
A question, or a sentence with fewer than two content words beyond the question's, supports nothing.
Unsupported sentences are dropped (``on_unsupported="drop"``, the default) or kept with an
``[unsupported]`` mark (``"flag"``). If no sentence survives, the answer says the sources do not support
an answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from maestro.retrieval.embeddings import Embedder, cosine
from maestro.retrieval.sparse import tokenize
from maestro.retrieval.types import Hit

__all__ = [
    "NO_SUPPORT_ANSWER",
    "CitationVerifier",
    "Claim",
    "PromptSource",
    "Verified",
    "VerifiedCitation",
    "answer_schema",
    "parse_answer",
    "prompt_sources",
]

NO_SUPPORT_ANSWER = "The retrieved sources do not support an answer to this question."

MAX_SENTENCES = 6


def answer_schema(n_sources: int, *, max_sentences: int = MAX_SENTENCES) -> dict[str, Any]:
    """The JSON schema of a cited answer; source numbers are limited to ``1..n_sources``.

    Grammar-constrained models (llama.cpp) cannot emit an invented number or run on forever; hosted
    models with JSON-schema support get the same contract.
    """
    return {
        "type": "object",
        "properties": {
            "sentences": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_sentences,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "maxLength": 400},
                        "sources": {
                            "type": "array",
                            "items": {"type": "integer", "enum": list(range(1, n_sources + 1))},
                            "maxItems": 3,
                        },
                    },
                    "required": ["text", "sources"],
                },
            }
        },
        "required": ["sentences"],
    }


# A complete ``{"text": ..., "sources": [...]}`` object inside JSON that was cut off or is otherwise broken.
_SENTENCE_OBJECT = re.compile(r'"text"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"sources"\s*:\s*\[([\d\s,]*)\]')
_MARKER = re.compile(r"\[\s*(\d{1,4}(?:\s*[,;]\s*\d{1,4})*)\s*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*(?:\[\s*\d[\d\s,;]*\]))*\s+(?=[A-Z0-9\"'(`*-])")
_CLOSE_TAG = re.compile(r"<\s*/?\s*source", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PromptSource:
    """A source as the prompt shows it: its number, where it comes from, and its (defused) text."""

    n: int
    source: str
    section: str | None
    text: str
    untrusted: bool
    hit: Hit


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace("\n", " ")[:300]


def prompt_sources(hits: Sequence[Hit], *, untrusted: Sequence[bool] | None = None) -> list[PromptSource]:
    """Number ``hits`` 1..n for the prompt, defusing anything that could break out of the delimiters."""
    flags = list(untrusted) if untrusted is not None else [h.chunk.injection_suspect for h in hits]
    return [
        PromptSource(
            n=i,
            source=_attr(hit.chunk.source),
            section=_attr(hit.chunk.section) if hit.chunk.section else None,
            text=_CLOSE_TAG.sub(lambda m: m.group().replace("<", "&lt;"), hit.chunk.text),
            untrusted=flag,
            hit=hit,
        )
        for i, (hit, flag) in enumerate(zip(hits, flags, strict=True), start=1)
    ]


@dataclass(frozen=True, slots=True)
class Claim:
    """One sentence of the answer and the source numbers it cites."""

    text: str
    cites: tuple[int, ...]


_ENUMERATOR = re.compile(r"(?:\d{1,3}|[a-zA-Z])[.)]|[-*•]")


def _split_sentences(text: str) -> list[str]:
    parts: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+\.)\s)", text):
        pending = ""
        for piece in _SENTENCE_END.split(paragraph.strip()):
            piece = piece.strip()
            if _ENUMERATOR.fullmatch(piece):
                pending = f"{pending} {piece}".strip()  # "1." belongs to the item that follows it
            elif piece:
                parts.append(f"{pending} {piece}".strip() if pending else piece)
                pending = ""
    return parts


def _claims_from_text(text: str) -> list[Claim]:
    claims: list[Claim] = []
    for sentence in _split_sentences(text):
        numbers: list[int] = []
        for match in _MARKER.finditer(sentence):
            numbers.extend(int(x) for x in re.split(r"\s*[,;]\s*", match.group(1)))
        clean = re.sub(r"\s+", " ", _MARKER.sub("", sentence)).strip()
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if clean:
            claims.append(Claim(clean, tuple(dict.fromkeys(numbers))))
    return claims


def parse_answer(raw: str) -> list[Claim]:
    """The answer's sentences and citations, from structured JSON or from ``[n]`` markers in text.

    Broken or truncated JSON keeps its complete sentence objects; a sentence repeated verbatim (small
    models loop) is kept once.
    """
    return _unique(_parse(raw))


def _unique(claims: list[Claim]) -> list[Claim]:
    seen: dict[str, Claim] = {}
    for claim in claims:
        key = claim.text.casefold()
        if key in seen:
            merged = tuple(dict.fromkeys([*seen[key].cites, *claim.cites]))
            seen[key] = Claim(seen[key].text, merged)
        else:
            seen[key] = claim
    return list(seen.values())


def _structured(items: list[Any]) -> list[Claim]:
    claims: list[Claim] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        cited = [n for n in item.get("sources") or [] if isinstance(n, int) and not isinstance(n, bool)]
        for claim in _claims_from_text(item["text"]) or [Claim(item["text"].strip(), ())]:
            if claim.text:
                claims.append(Claim(claim.text, tuple(dict.fromkeys([*cited, *claim.cites]))))
    return claims


def _parse(raw: str) -> list[Claim]:
    stripped = raw.strip()
    if stripped.startswith("```"):
        stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", stripped)
    if not stripped.startswith("{"):
        return _claims_from_text(raw)
    try:
        data = json.loads(stripped)
    except ValueError:
        salvaged: list[Any] = []
        for match in _SENTENCE_OBJECT.finditer(stripped):
            try:
                text = json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue
            salvaged.append({"text": text, "sources": [int(n) for n in re.findall(r"\d+", match.group(2))]})
        return _structured(salvaged) if salvaged else _claims_from_text(raw)
    if isinstance(data, dict) and isinstance(data.get("sentences"), list):
        return _structured(data["sentences"])
    if isinstance(data, dict) and isinstance(data.get("answer"), str):
        return _claims_from_text(data["answer"])
    return _claims_from_text(raw)


# -- support scoring ---------------------------------------------------------------------------------

_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "es", "ed", "ly", "s")


def _stem(token: str) -> str:
    for suffix in _SUFFIXES:
        if len(token) - len(suffix) >= 3 and token.endswith(suffix):
            return token[: -len(suffix)]
    return token


def content_terms(text: str) -> set[str]:
    return {_stem(t) for t in tokenize(text)}


def lexical_support(sentence: str, chunk: str, *, ignore: str = "") -> float:
    """The share of the sentence's content words (stemmed) that occur in the chunk, not counting words
    that also occur in ``ignore`` (the question); 0 when no word is left."""
    words = content_terms(sentence) - content_terms(ignore)
    if not words:
        return 0.0
    return len(words & content_terms(chunk)) / len(words)


@dataclass(frozen=True, slots=True)
class VerifiedCitation:
    n: int
    hit: Hit
    score: float  # the best support this source gave to a sentence citing it


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    text: str
    cites: tuple[int, ...]
    supported_by: tuple[int, ...]
    invented: tuple[int, ...]
    score: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "cites": list(self.cites),
            "supported_by": list(self.supported_by),
            "invented": list(self.invented),
            "score": round(self.score, 4),
            "verdict": self.verdict,
        }


@dataclass
class Verified:
    answer: str
    citations: list[VerifiedCitation]
    sentences: list[SentenceCheck] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        return bool(self.citations)

    @property
    def unsupported(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if not s.supported_by]

    @property
    def invented(self) -> list[int]:
        return sorted({n for s in self.sentences for n in s.invented})


def _marked(sentence: str, marker: str) -> str:
    """``sentence`` with ``marker`` before its final punctuation: ``"It is monthly [2]."``."""
    text = sentence.rstrip()
    if text and text[-1] in ".!?":
        return f"{text[:-1]} {marker}{text[-1]}"
    return f"{text} {marker}"


Verdict = Literal["supported", "attributed", "unsupported", "uncited", "restates_question"]


class CitationVerifier:
    """Checks each cited sentence against its sources; see the module docstring for the scoring.

    ``attribute_uncited``: a sentence the model left without a citation is attributed to the source that
    supports it best, if that support reaches the threshold (verdict ``attributed``); small models often
    answer from a source without citing it. A question, or a sentence with fewer than two content words
    beyond the question's, is never supported.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        threshold: float = 0.5,
        lexical_weight: float = 0.5,
        on_unsupported: Literal["drop", "flag"] = "drop",
        attribute_uncited: bool = True,
    ) -> None:
        if not 0 <= threshold <= 1 or not 0 <= lexical_weight <= 1:
            raise ValueError("threshold and lexical_weight must be between 0 and 1")
        self.embedder = embedder
        self.threshold = threshold
        self.lexical_weight = lexical_weight
        self.on_unsupported = on_unsupported
        self.attribute_uncited = attribute_uncited

    def support(
        self,
        sentence: str,
        chunk: str,
        *,
        sentence_vec: Sequence[float],
        chunk_vec: Sequence[float],
        question: str = "",
    ) -> float:
        """``w·lexical + (1−w)·cosine``; the lexical part counts only words the question did not bring."""
        lexical = lexical_support(sentence, chunk, ignore=question)
        semantic = max(0.0, cosine(sentence_vec, chunk_vec))
        return self.lexical_weight * lexical + (1 - self.lexical_weight) * semantic

    def verify(
        self, claims: Sequence[Claim], sources: Sequence[PromptSource], *, question: str = ""
    ) -> Verified:
        by_n = {s.n: s for s in sources}
        sentence_vecs = self.embedder.embed([c.text for c in claims]) if claims else []
        chunk_vecs = dict(zip(by_n, self.embedder.embed([s.hit.chunk.text for s in sources]), strict=True))
        asked = content_terms(question)
        best: dict[int, float] = {}
        checks: list[SentenceCheck] = []
        kept: list[str] = []
        for claim, vec in zip(claims, sentence_vecs, strict=True):
            invented = tuple(n for n in claim.cites if n not in by_n)
            candidates = [n for n in claim.cites if n in by_n]
            attributing = not claim.cites and self.attribute_uncited
            if attributing:
                candidates = list(by_n)
            scores = {
                n: self.support(
                    claim.text,
                    by_n[n].hit.chunk.text,
                    sentence_vec=vec,
                    chunk_vec=chunk_vecs[n],
                    question=question,
                )
                for n in candidates
            }
            supporting = tuple(n for n, score in scores.items() if score >= self.threshold)
            if attributing and supporting:
                supporting = (max(supporting, key=lambda n: scores[n]),)
            top = max(scores.values(), default=0.0)
            verdict: Verdict
            if claim.text.rstrip().endswith("?") or len(content_terms(claim.text) - asked) < 2:
                verdict, supporting = "restates_question", ()
            elif supporting:
                verdict = "attributed" if attributing else "supported"
            elif claim.cites:
                verdict = "unsupported"
            else:
                verdict = "uncited"
            checks.append(SentenceCheck(claim.text, claim.cites, supporting, invented, top, verdict))
            if supporting:
                for n in supporting:
                    best[n] = max(best.get(n, 0.0), scores[n])
                kept.append(_marked(claim.text, "".join(f"[{n}]" for n in supporting)))
            elif self.on_unsupported == "flag":
                kept.append(_marked(claim.text, "[unsupported]"))
        citations = [VerifiedCitation(n=n, hit=by_n[n].hit, score=best[n]) for n in sorted(best)]
        if not citations:
            return Verified(answer=NO_SUPPORT_ANSWER, citations=[], sentences=checks)
        return Verified(answer=" ".join(kept), citations=citations, sentences=checks)

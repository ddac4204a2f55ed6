"""Eval metrics: ragas' non-LLM metrics, always; a NaN or a failed metric is unmeasured (``None``).

* ``context_precision`` / ``context_recall``: ragas ``NonLLMContextPrecisionWithReference`` and
  ``NonLLMContextRecall`` - the retrieved chunks (each by its sentence closest to the evidence, in rank
  order) against the item's reference evidence sentence, by string similarity (no model involved).
* ``answer_similarity``: ragas ``NonLLMStringSimilarity`` of the answer to the reference answer.
* ``source_hit``: 1 when a verified citation names the item's gold source file.
* LLM-judged metrics (faithfulness, answer relevancy, factual correctness) need a judge model; without
  one they are absent from the results - unmeasured, never a zero.

ragas is imported on first use with ``RAGAS_DO_NOT_TRACK=true`` (its usage analytics would otherwise
be sent to a remote host).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from maestro.evals.types import measured

__all__ = ["answer_metrics", "mean_of"]

logger = logging.getLogger(__name__)

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def answer_metrics(
    *,
    question: str,
    answer: str,
    reference: str,
    evidence: str,
    gold_source: str,
    cited_sources: Sequence[str],
    contexts: Sequence[str],
) -> dict[str, float | None]:
    """The non-LLM metrics of one RAG answer (see the module docstring)."""
    del question
    metrics: dict[str, float | None] = {
        "source_hit": (1.0 if gold_source in cited_sources else 0.0) if gold_source else None
    }
    ragas = _ragas()
    metrics["answer_similarity"] = (
        _run(ragas["similarity"]().ascore(reference=reference, response=answer), "answer_similarity")
        if reference and answer
        else (0.0 if reference else None)
    )
    if evidence and contexts:
        windows = [_closest_sentence(chunk, evidence) for chunk in contexts]
        sample = ragas["sample"](retrieved_contexts=windows, reference_contexts=[evidence])
        metrics["context_precision"] = _run(
            ragas["precision"]().single_turn_ascore(sample), "context_precision"
        )
        metrics["context_recall"] = _run(ragas["recall"]().single_turn_ascore(sample), "context_recall")
    else:
        metrics["context_precision"] = metrics["context_recall"] = 0.0 if evidence else None
    return metrics


def _closest_sentence(chunk: str, evidence: str) -> str:
    """The sentence (or line) of ``chunk`` most like ``evidence``.

    ragas' non-LLM context metrics compare whole strings by edit distance, so a 1,000-character chunk
    that contains a one-sentence evidence verbatim would score as unrelated; each retrieved chunk is
    represented by its closest sentence instead (rank order kept), which is what "the evidence was
    retrieved" means here."""
    from rapidfuzz import fuzz

    parts = [p.strip() for p in _SENTENCES.split(chunk) if p.strip()] or [chunk]
    return max(parts, key=lambda part: fuzz.ratio(part, evidence))


def mean_of(metrics: Mapping[str, float | None], names: Iterable[str]) -> float | None:
    """The mean of the measured metrics among ``names``; None when none was measured."""
    values = [v for name in names if (v := measured(metrics.get(name))) is not None]
    return sum(values) / len(values) if values else None


def _run(awaitable: Any, name: str) -> float | None:
    """Run a ragas coroutine to its value (in a worker thread: the caller may be inside an event loop)."""
    try:
        result = _in_thread(awaitable)
    except Exception as exc:  # a failed metric is unmeasured, never a zero
        logger.warning("metric %s failed: %s", name, type(exc).__name__)
        return None
    value = getattr(result, "value", result)
    try:
        return measured(float(value))
    except (TypeError, ValueError):
        return None


def _in_thread(awaitable: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(awaitable)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, awaitable).result()


def _ragas() -> dict[str, Any]:
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics._context_precision import NonLLMContextPrecisionWithReference
    from ragas.metrics._context_recall import NonLLMContextRecall
    from ragas.metrics.collections import NonLLMStringSimilarity

    return {
        "sample": SingleTurnSample,
        "precision": NonLLMContextPrecisionWithReference,
        "recall": NonLLMContextRecall,
        "similarity": NonLLMStringSimilarity,
    }

"""RAG items (task class ``rag.answer``): the RAG service on a real collection, scored with ragas.

Each item asks the question through ``RagService.answer`` (retrieval, prompt, router, citation
verification) with the model call pinned to the model under test, against the collection
``MAESTRO_EVAL_RAG_COLLECTION`` (the Python 3.11 docs: ``maestro rag ingest
/usr/share/doc/python3.11/html/_sources --collection python-docs`` first; ``scripts/python-docs.sh``
installs them). Metrics (``evals.metrics``): ``source_hit`` (a verified citation names the item's gold
source), ragas' non-LLM ``context_precision``/``context_recall`` against the item's evidence sentence and
``answer_similarity`` against its reference answer; with a judge model configured, the LLM-judged ones
too. The item's score is the mean of the measured answer-side metrics (``source_hit``,
``answer_similarity`` and the judged ones); retrieval metrics are reported beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from maestro.core.errors import ConfigurationError, ModelCallFailed, NoEligibleModel, NotFound
from maestro.evals.data import Dataset, Item
from maestro.evals.metrics import answer_metrics, mean_of
from maestro.evals.suites.base import EvalEnv
from maestro.evals.types import ItemOutcome

SCORE_METRICS = ("source_hit", "answer_similarity", "faithfulness", "factual_correctness")


class RagSuite:
    kind = "rag"

    async def prepare(self, env: EvalEnv, dataset: Dataset, items: Sequence[Item]) -> None:
        del dataset, items
        rag = env.need(env.rag, "RAG service")
        collection = env.settings.eval_rag_collection
        try:
            sources = rag.retriever.store.sources(collection, tenant=env.authority.tenant)
        except NotFound:
            sources = set()
        if not sources:
            raise ConfigurationError(
                f"the RAG eval needs the collection '{collection}': ingest the Python docs first "
                f"(`maestro rag ingest /usr/share/doc/python3.11/html/_sources --collection {collection}`)"
            )

    async def run(self, env: EvalEnv, dataset: Dataset, item: Item, model: str) -> ItemOutcome:
        del dataset
        from maestro.retrieval.answer import RagQuery

        rag = env.need(env.rag, "RAG service")
        query = RagQuery(question=str(item.data["question"]), collection=env.settings.eval_rag_collection)
        started = time.perf_counter()
        try:
            answer = await rag.answer(env.pinned(model), query)
        except (ModelCallFailed, NoEligibleModel) as exc:
            return ItemOutcome(None, error=f"{exc.code}: {exc.message}")
        latency = time.perf_counter() - started
        doc = answer.to_dict()
        metrics = await asyncio.to_thread(
            answer_metrics,
            question=str(item.data["question"]),
            answer=doc["answer"],
            reference=str(item.data.get("answer") or ""),
            evidence=str(item.data.get("evidence") or ""),
            gold_source=str(item.data.get("source") or ""),
            cited_sources=[c["source"] for c in doc["citations"]],
            contexts=[h.chunk.text for h in answer.hits],
        )
        score = mean_of(metrics, SCORE_METRICS)
        return ItemOutcome(score, metrics, cost_usd=answer.cost_usd, latency_s=latency)

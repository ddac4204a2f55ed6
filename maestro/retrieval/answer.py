"""Answer a question over a collection with verified citations, on behalf of an authority.

1. The authority must be live and the policy must allow ``rag.query`` on the collection (a denial is
   recorded by the authorizer).
2. Hybrid retrieval inside the authority's tenant; chunks flagged as PII are filtered out *in the query*
   for an authority not cleared for PII.
3. Every retrieved chunk is re-checked for instruction-like text (the ingest-time flag may predate the
   current rules); suspect chunks are listed in ``flagged`` and, by default, kept out of the prompt
   (``suspect="quote"`` sends them marked ``untrusted``).
4. The router answers task ``rag.answer`` from numbered, delimited sources, with structured output when
   the model it picks supports a JSON schema (else plain text with ``[n]`` markers; see
   ``_wants_structured``). If any source carries PII the request is marked ``data_class="pii"`` so only
   a model cleared for PII sees it.
5. :class:`~maestro.retrieval.citations.CitationVerifier` keeps only supported sentences and citations.
6. A ``rag.answer`` ledger entry records the question's hash, the decision id, the cited chunk ids and
   what was dropped, and the answer carries the router's decision id.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer
from maestro.core.errors import InvalidRequest, MaestroError, NoEligibleModel
from maestro.prompts.templates import load as load_prompt
from maestro.retrieval.citations import (
    CitationVerifier,
    PromptSource,
    Verified,
    answer_schema,
    parse_answer,
    prompt_sources,
)
from maestro.retrieval.injection import looks_like_instructions
from maestro.retrieval.search import Retriever, SearchOptions
from maestro.retrieval.types import Hit
from maestro.router.policy import RouteRequest
from maestro.router.service import ModelRouter

__all__ = ["NO_SOURCES_ANSWER", "RagAnswer", "RagQuery", "RagService"]

NO_SOURCES_ANSWER = "No sources in this collection match the question, so there is nothing to answer from."
MAX_QUESTION_CHARS = 4_000
TASK = "rag.answer"

Recorder = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class RagQuery:
    question: str
    collection: str
    k: int = 5
    filters: Mapping[str, Any] | None = None
    mmr: bool = False
    max_tokens: int = 512

    def check(self) -> None:
        if not self.question.strip():
            raise InvalidRequest("the question is empty")
        if len(self.question) > MAX_QUESTION_CHARS:
            raise InvalidRequest(
                f"the question has {len(self.question)} characters; the limit is {MAX_QUESTION_CHARS}"
            )
        if "\x00" in self.question:
            raise InvalidRequest("the question contains a NUL character")


@dataclass
class RagAnswer:
    answer: str
    hits: list[Hit]
    verified: Verified | None
    model: str
    decision_id: str
    flagged: list[str] = field(default_factory=list)  # chunk ids kept out of the prompt (or quoted)
    prompt_refs: list[str] = field(default_factory=list)
    cost_usd: float = 0.0  # what the model call cost (not part of the JSON shape)

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md shape of ``maestro rag query --json``."""
        citations = self.verified.citations if self.verified is not None else []
        return {
            "answer": self.answer,
            "citations": [
                {
                    "n": c.n,
                    "source": c.hit.chunk.source,
                    "chunk_id": c.hit.chunk.chunk_id,
                    "text": c.hit.chunk.text,
                    "score": round(c.score, 4),
                }
                for c in citations
            ],
            "sources": [
                {"source": h.chunk.source, "chunk_id": h.chunk.chunk_id, "score": round(h.score, 6)}
                for h in self.hits
            ],
            "model": self.model,
            "decision_id": self.decision_id,
        }

    def details(self) -> dict[str, Any]:
        """What the verifier decided, sentence by sentence, and which chunks were flagged."""
        sentences = self.verified.sentences if self.verified is not None else []
        return {
            "sentences": [s.to_dict() for s in sentences],
            "invented_citations": self.verified.invented if self.verified is not None else [],
            "flagged_chunks": list(self.flagged),
            "prompts": list(self.prompt_refs),
        }


class RagService:
    """See the module docstring. ``record`` appends ledger entries (``kind, payload``)."""

    def __init__(
        self,
        retriever: Retriever,
        router: ModelRouter,
        authorizer: Authorizer,
        *,
        verifier: CitationVerifier | None = None,
        record: Recorder | None = None,
        suspect: Literal["drop", "quote"] = "drop",
        structured: Literal["auto", "always", "never"] = "auto",
    ) -> None:
        self.retriever = retriever
        self.router = router
        self.authorizer = authorizer
        self.verifier = verifier or CitationVerifier(retriever.embedder)
        self._record = record
        self.suspect = suspect
        self.structured = structured

    def retrieve(self, authority: Authority, query: RagQuery) -> list[Hit]:
        """Authorise and search; the tenant and PII clearance come from the authority, never the caller."""
        query.check()
        authority.check_live()
        self.authorizer.authorize(
            authority, "rag.query", {"kind": "collection", "tenant": authority.tenant, "id": query.collection}
        )
        options = SearchOptions(
            k=query.k,
            filters=query.filters,
            exclude_pii=not authority.cleared_for("pii"),
            mmr=query.mmr,
        )
        return self.retriever.search(
            query.collection, query.question, tenant=authority.tenant, options=options
        )

    async def answer(self, authority: Authority, query: RagQuery) -> RagAnswer:
        hits = await asyncio.to_thread(self.retrieve, authority, query)
        suspects = _suspects(hits)
        flagged = [h.chunk.chunk_id for h, s in zip(hits, suspects, strict=True) if s]
        usable = [(h, s) for h, s in zip(hits, suspects, strict=True) if not (s and self.suspect == "drop")]
        if not usable:
            result = RagAnswer(NO_SOURCES_ANSWER, hits, None, model="", decision_id="", flagged=flagged)
            self._ledger(authority, query, result)
            return result
        sources = prompt_sources([h for h, _ in usable], untrusted=[s for _, s in usable])
        raw, model, decision_id, refs, cost = await self._generate(authority, query, sources)
        verified = await asyncio.to_thread(
            partial(self.verifier.verify, parse_answer(raw), sources, question=query.question)
        )
        result = RagAnswer(
            verified.answer,
            hits,
            verified,
            model=model,
            decision_id=decision_id,
            flagged=flagged,
            prompt_refs=refs,
            cost_usd=cost,
        )
        self._ledger(authority, query, result)
        return result

    async def _generate(
        self, authority: Authority, query: RagQuery, sources: list[PromptSource]
    ) -> tuple[str, str, str, list[str], float]:
        user_prompt = load_prompt("rag_answer_user")
        user = user_prompt.render(sources=sources, question=query.question)
        pii = any(s.hit.chunk.pii for s in sources)

        def request(structured: bool) -> tuple[RouteRequest, str]:
            system = load_prompt("rag_answer_system")
            schema = answer_schema(len(sources))
            return (
                RouteRequest.for_authority(
                    authority,
                    task=TASK,
                    messages=[
                        {"role": "system", "content": system.render(structured=structured)},
                        {"role": "user", "content": user},
                    ],
                    max_tokens=query.max_tokens,
                    temperature=0.0,
                    data_class="pii" if pii else "internal",
                    requires_json=structured,
                    response_format=(
                        {"type": "json_schema", "json_schema": {"name": "cited_answer", "schema": schema}}
                        if structured
                        else None
                    ),
                ),
                system.ref,
            )

        plain, system_ref = request(False)
        if self._wants_structured(plain):
            structured, system_ref = request(True)
            try:
                completion = await self.router.complete(structured)
            except NoEligibleModel:
                completion = await self.router.complete(plain)  # no JSON-capable model is eligible now
        else:
            completion = await self.router.complete(plain)
        refs = [system_ref, user_prompt.ref]
        return completion.text, completion.model, completion.decision.id, refs, completion.cost_usd

    def _wants_structured(self, plain: RouteRequest) -> bool:
        """Structured output when the model the router would pick supports a JSON schema.

        ``structured="auto"`` skips it for embedded local models (catalog tag ``local``): grammar-constrained
        JSON makes a 135M-parameter model loop instead of answering. Nothing is recorded by this peek.
        """
        if self.structured != "auto":
            return self.structured == "always"
        try:
            chosen = self.router.decide(plain, fresh_budget=False).chosen
        except MaestroError:
            return False  # complete() raises the real error with the plain request
        if chosen is None:
            return False
        deployment = self.router.catalog.get(chosen)
        return deployment.supports_json_schema and "local" not in deployment.tags

    def _ledger(self, authority: Authority, query: RagQuery, result: RagAnswer) -> None:
        if self._record is None:
            return
        verified = result.verified
        self._record(
            "rag.answer",
            {
                "tenant": authority.tenant,
                "principal_id": authority.principal.id,
                "collection": query.collection,
                "question_sha256": hashlib.sha256(query.question.encode()).hexdigest(),
                "decision_id": result.decision_id or None,
                "model": result.model or None,
                "retrieved": [h.chunk.chunk_id for h in result.hits],
                "cited": [c.hit.chunk.chunk_id for c in verified.citations] if verified else [],
                "unsupported_sentences": len(verified.unsupported) if verified else 0,
                "invented_citations": verified.invented if verified else [],
                "flagged_chunks": result.flagged,
                "prompts": result.prompt_refs,
            },
        )


_SEAM_CHARS = 300


def _suspects(hits: list[Hit]) -> list[bool]:
    """Which hits read like instructions: alone (flag from ingest, re-checked now), or across a seam.

    A payload split over two chunks ("... ignore all previous" | "instructions and ...") is invisible to
    a per-chunk check; the text around each seam is checked too (both ways round), for consecutive hits
    in prompt order and for hits that are neighbours in their source document.
    """
    flags = [h.chunk.injection_suspect or looks_like_instructions(h.chunk.text).suspect for h in hits]
    pairs = {(i, i + 1) for i in range(len(hits) - 1)}
    order = sorted(range(len(hits)), key=lambda i: (hits[i].chunk.source, hits[i].chunk.start))
    pairs |= {
        (a, b)
        for a, b in zip(order, order[1:], strict=False)
        if hits[a].chunk.source == hits[b].chunk.source and 0 <= hits[b].chunk.start - hits[a].chunk.end <= 2
    }
    for a, b in pairs:
        for first, second in ((a, b), (b, a)):  # a model reads across the seam in either order
            seam = " ".join(
                (hits[first].chunk.text[-_SEAM_CHARS:] + " " + hits[second].chunk.text[:_SEAM_CHARS]).split()
            )
            if looks_like_instructions(seam).suspect:
                flags[a] = flags[b] = True
    return flags

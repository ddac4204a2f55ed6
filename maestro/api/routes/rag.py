"""``POST /v1/rag/query``: an answer from a collection with verified citations (scope ``rag:query``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from maestro.api.deps import CurrentAuthority, ServicesDep
from maestro.retrieval.answer import MAX_QUESTION_CHARS, RagQuery
from maestro.retrieval.search import MAX_K

router = APIRouter(prefix="/v1/rag", tags=["rag"])


class RagQueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=r"^[^\x00]*$")
    collection: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    k: int = Field(default=5, ge=1, le=MAX_K)
    filters: dict[str, str | int | bool] | None = Field(default=None, max_length=16)
    mmr: bool = False
    max_tokens: int = Field(default=512, gt=0, le=4096)


class Citation(BaseModel):
    n: int
    source: str
    chunk_id: str
    text: str
    score: float


class Source(BaseModel):
    source: str
    chunk_id: str
    score: float


class RagQueryResponse(BaseModel):
    answer: str
    citations: list[Citation]
    sources: list[Source]
    model: str
    decision_id: str
    details: dict[str, Any] = Field(
        description="Per-sentence verification, invented citation numbers, chunks flagged as instructions."
    )


@router.post(
    "/query",
    response_model=RagQueryResponse,
    responses={404: {"description": "no such collection"}, 503: {"description": "vector store unavailable"}},
)
async def rag_query(
    body: RagQueryRequest, services: ServicesDep, authority: CurrentAuthority
) -> RagQueryResponse:
    """Retrieve within the caller's tenant, answer through the router, keep only supported citations."""
    query = RagQuery(
        question=body.question,
        collection=body.collection,
        k=body.k,
        filters=body.filters,
        mmr=body.mmr,
        max_tokens=body.max_tokens,
    )
    result = await services.rag().answer(authority, query)
    return RagQueryResponse(**result.to_dict(), details=result.details())

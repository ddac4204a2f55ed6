"""``POST /v1/chat/completions``: OpenAI-compatible; ``model: "auto"`` is routed by Maestro."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from maestro.api.deps import CurrentAuthority, ServicesDep
from maestro.core.errors import MaestroError
from maestro.router.policy import RouteRequest
from maestro.router.service import RoutedCompletion

router = APIRouter(prefix="/v1", tags=["chat"])


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body plus Maestro's ``task``, ``override_reason`` and ``data_class``."""

    model: str = Field(default="auto", max_length=200)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stream: bool = False
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    task: str = Field(default="chat", max_length=64)
    override_reason: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")
    data_class: Literal["public", "internal", "pii"] = "internal"


class ChatChoice(BaseModel):
    index: int
    message: dict[str, Any]
    finish_reason: str | None


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class MaestroInfo(BaseModel):
    decision_id: str
    task: str
    cost_usd: float
    usage_estimated: bool


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    maestro: MaestroInfo


def _route_request(body: ChatCompletionRequest, authority: CurrentAuthority) -> RouteRequest:
    return RouteRequest.for_authority(
        authority,
        task=body.task,
        messages=[m.model_dump(exclude_none=True) for m in body.messages],
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        response_format=body.response_format,
        tools=body.tools,
        model=body.model,
        override_reason=body.override_reason,
        data_class=body.data_class,
        requires_json=body.response_format is not None,
        requires_tools=bool(body.tools),
    )


def _completion(result: RoutedCompletion) -> ChatCompletion:
    message: dict[str, Any] = {"role": "assistant", "content": result.text}
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
    return ChatCompletion(
        id=f"chatcmpl-{result.decision.id}",
        created=int(time.time()),
        model=result.model,
        choices=[ChatChoice(index=0, message=message, finish_reason=result.finish_reason)],
        usage=ChatUsage(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            total_tokens=result.usage.total_tokens,
        ),
        maestro=MaestroInfo(
            decision_id=result.decision.id,
            task=result.decision.task,
            cost_usd=result.cost_usd,
            usage_estimated=result.usage_estimated,
        ),
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "a completion, or SSE with stream: true"},
        401: {"description": "unauthenticated"},
        402: {"description": "budget exceeded"},
        403: {"description": "refused by policy"},
        413: {"description": "prompt too large"},
        422: {"description": "invalid request"},
        502: {"description": "every model failed"},
    },
)
async def chat_completions(
    body: ChatCompletionRequest, services: ServicesDep, authority: CurrentAuthority
) -> ChatCompletion | StreamingResponse:
    """One routed chat completion; ``stream: true`` answers with OpenAI-style server-sent events."""
    services.authorizer.authorize(authority, "chat", {"kind": "chat", "tenant": authority.tenant})
    if body.model not in ("", "auto"):
        services.authorizer.authorize(
            authority, "router.override", {"kind": "model", "tenant": authority.tenant, "id": body.model}
        )
    request = _route_request(body, authority)
    if body.stream:
        return StreamingResponse(_sse(services, request), media_type="text/event-stream")
    return _completion(await services.router.complete(request))


async def _sse(services: ServicesDep, request: RouteRequest) -> AsyncIterator[str]:
    created = int(time.time())
    try:
        async for event in services.router.stream(request):
            if event.kind == "delta":
                chunk = {
                    "id": f"chatcmpl-{event.decision.id}",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": event.decision.chosen,
                    "choices": [{"index": 0, "delta": {"content": event.text}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            elif event.kind == "end" and event.result is not None:
                final = _completion(event.result).model_dump()
                final["object"] = "chat.completion.chunk"
                final["choices"] = [{"index": 0, "delta": {}, "finish_reason": event.result.finish_reason}]
                yield f"data: {json.dumps(final)}\n\n"
    except MaestroError as exc:  # the status line is already sent: report the error in the stream
        yield f"data: {json.dumps(exc.to_dict())}\n\n"
    yield "data: [DONE]\n\n"

"""Fake LLMs for tests, at Maestro's own interface (``LLMClient``).

``ScriptedLLM`` replays queued replies (globally or per deployment) and records every call in
``history``; ``FunctionLLM`` computes each reply with a function of the messages and the call. Both
return realistic usage (tokens counted from the text), stream word by word with usage on the last chunk,
and can raise the errors a real provider causes (rate limits with Retry-After, 5xx, rejected requests,
context too long) as the LiteLLM adapter would translate them, so routing, fallback, cooldown and
budget paths run for real. Shipped in the package so that every test suite (and plugin authors) use
the same fakes.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from maestro.core.errors import (
    ContextWindowExceeded,
    ModelCallFailed,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from maestro.router.types import Chunk, Completion, Message, ModelCall, Usage

Reply = str | Completion | ModelCallFailed


def count_tokens(text: str) -> int:
    """A realistic token count for fakes: about four characters per token."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def prompt_tokens(messages: list[Message]) -> int:
    return sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages)


def rate_limited(retry_after: float | None = 1.0, model: str = "fake") -> ModelRateLimited:
    return ModelRateLimited(
        f"rate limit reached for '{model}'", retry_after=retry_after, model=model, status_code=429
    )


def server_error(status_code: int = 503, model: str = "fake") -> ModelUnavailable:
    return ModelUnavailable(f"'{model}' returned {status_code}", model=model, status_code=status_code)


def bad_request(status_code: int = 400, model: str = "fake") -> ModelRequestRejected:
    return ModelRequestRejected(
        f"'{model}' rejected the request ({status_code})", model=model, status_code=status_code
    )


def context_too_long(model: str = "fake") -> ContextWindowExceeded:
    return ContextWindowExceeded(
        f"the prompt exceeds the context window of '{model}'", model=model, status_code=400
    )


class _FakeBase(ABC):
    """What both fakes share: history, latency, usage, streaming."""

    def __init__(self, *, latency_s: float = 0.0, stream_usage: bool = True) -> None:
        self.history: list[ModelCall] = []
        self.latency_s = latency_s
        self.stream_usage = stream_usage

    @abstractmethod
    def _reply(self, call: ModelCall) -> Reply:
        """The next reply for ``call``."""

    async def complete(self, call: ModelCall) -> Completion:
        self.history.append(call)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._finish(call, self._reply(call))

    async def stream(self, call: ModelCall) -> AsyncIterator[Chunk]:
        self.history.append(call)
        completion = self._finish(call, self._reply(call))
        words = completion.text.split(" ")
        for index, word in enumerate(words):
            if self.latency_s:
                await asyncio.sleep(self.latency_s / max(1, len(words)))
            yield Chunk(delta=word if index == 0 else " " + word)
        yield Chunk(
            finish_reason=completion.finish_reason, usage=completion.usage if self.stream_usage else None
        )

    @staticmethod
    def _finish(call: ModelCall, reply: Reply) -> Completion:
        if isinstance(reply, ModelCallFailed):
            reply.model = reply.model if reply.model != "fake" else call.deployment.name
            raise reply
        if isinstance(reply, Completion):
            return reply
        text = reply
        completion_tokens = count_tokens(text)
        finish = "stop"
        if completion_tokens > call.max_tokens:
            completion_tokens = call.max_tokens
            text = text[: call.max_tokens * 4]
            finish = "length"
        return Completion(
            text=text,
            model=call.deployment.name,
            usage=Usage(prompt_tokens=prompt_tokens(call.messages), completion_tokens=completion_tokens),
            finish_reason=finish,
        )


class ScriptedLLM(_FakeBase):
    """Replays queued replies: one shared queue, or one queue per deployment name.

    >>> llm = ScriptedLLM(["hello"], per_model={"gpt-4o-mini": [rate_limited()]})
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        per_model: Mapping[str, Iterable[Reply]] | None = None,
        latency_s: float = 0.0,
        stream_usage: bool = True,
    ) -> None:
        super().__init__(latency_s=latency_s, stream_usage=stream_usage)
        self._shared = deque(replies)
        self._per_model = {name: deque(queue) for name, queue in (per_model or {}).items()}

    def _reply(self, call: ModelCall) -> Reply:
        queue = self._per_model.get(call.deployment.name)
        if queue:
            return queue.popleft()
        if self._shared:
            return self._shared.popleft()
        raise AssertionError(
            f"ScriptedLLM has no reply left for '{call.deployment.name}' (call #{len(self.history)})"
        )

    @property
    def models_called(self) -> list[str]:
        return [call.deployment.name for call in self.history]


class FunctionLLM(_FakeBase):
    """Computes each reply: ``fn(messages, call) -> str | Completion`` (may raise ModelCallFailed)."""

    def __init__(
        self,
        fn: Callable[[list[Message], ModelCall], Reply],
        *,
        latency_s: float = 0.0,
        stream_usage: bool = True,
    ) -> None:
        super().__init__(latency_s=latency_s, stream_usage=stream_usage)
        self._fn = fn

    def _reply(self, call: ModelCall) -> Reply:
        return self._fn(call.messages, call)

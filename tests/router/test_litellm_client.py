"""``LiteLLMClient`` against recorded OpenAI HTTP.

A small OpenAI-compatible server (Starlette on uvicorn, in a thread on 127.0.0.1) replays recorded
``/v1/chat/completions`` responses (JSON and SSE) and records every request it receives, so litellm's
real HTTP path, retry loop and exception mapping run. No test touches the network beyond loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from maestro.core.errors import (
    ConfigurationError,
    ContextWindowExceeded,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from maestro.router.litellm_client import LiteLLMClient, retry_after_seconds
from maestro.router.types import Chunk, Completion, Deployment, ModelCall, Usage

KEY_ENV = "MAESTRO_TEST_FAKE_OPENAI_KEY"
KEY = "sk-test-maestro-fake"
MESSAGES = [{"role": "user", "content": "Say hello in two words."}]
T = TypeVar("T")

# ---- recorded OpenAI responses (gpt-4o-mini, Chat Completions API) --------------------------------------

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-BJk3Qx7ZlY0r2nX9aQpT5cW1sVfHd",
    "object": "chat.completion",
    "created": 1744032418,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there!", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 4,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_b376dfbbd5",
}

TOOL_CALL_COMPLETION: dict[str, Any] = {
    **COMPLETION,
    "id": "chatcmpl-BJk4Zr1mJ8dUo6s3VnKq0yTg2wLcE",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_Qm3b9XnTq2r8sKd1fVw7LcYh",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 61, "completion_tokens": 15, "total_tokens": 76},
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _stream_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-BJk5Hc2pVw9eTn4aXsGy7oRb1uZkM",
        "object": "chat.completion.chunk",
        "created": 1744032519,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_b376dfbbd5",
        "choices": choices,
        **extra,
    }


STREAM_WITH_USAGE = (
    _stream_chunk({"role": "assistant", "content": "", "refusal": None}, usage=None),
    _stream_chunk({"content": "Hello"}, usage=None),
    _stream_chunk({"content": " there!"}, usage=None),
    _stream_chunk({}, "stop", usage=None),
    _stream_chunk(
        None,
        usage={
            "prompt_tokens": 14,
            "completion_tokens": 3,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    ),
)
# An OpenAI-compatible server that ignores stream_options: no usage anywhere in the stream.
STREAM_WITHOUT_USAGE = (
    _stream_chunk({"role": "assistant", "content": ""}),
    _stream_chunk({"content": "Hello"}),
    _stream_chunk({"content": " there!"}),
    _stream_chunk({}, "stop"),
)


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


RATE_LIMITED = _error(
    "Rate limit reached for gpt-4o-mini in organization org-Fake123 on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1. Please try again in 1s.",
    "requests",
    "rate_limit_exceeded",
)
RATE_LIMIT_HEADERS = {
    "retry-after": "1",
    "x-ratelimit-limit-requests": "3",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "1s",
    "x-request-id": "req_7c1f0b8e2d5a4f6b9e3c1a0d2f4b6e8a",
}
SERVER_ERROR = _error(
    "The server had an error while processing your request. Sorry about that!", "server_error", None
)
BAD_REQUEST = _error(
    "Invalid value for 'temperature': expected a number between 0 and 2.",
    "invalid_request_error",
    "invalid_value",
    "temperature",
)
BAD_KEY = _error(
    "Incorrect API key provided: sk-test-*****fake. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    "invalid_request_error",
    "invalid_api_key",
)
FORBIDDEN = _error(
    "You are not allowed to sample from this model", "invalid_request_error", "model_not_allowed"
)
NO_MODEL = _error(
    "The model `gpt-4o-mini` does not exist or you do not have access to it.",
    "invalid_request_error",
    "model_not_found",
)
CONTEXT_TOO_LONG = _error(
    "This model's maximum context length is 128000 tokens. However, your messages resulted in 130437 "
    "tokens. Please reduce the length of the messages.",
    "invalid_request_error",
    "context_length_exceeded",
    "messages",
)

# ---- the fake server ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer: a JSON body, or SSE events (``sse``) followed by ``data: [DONE]``."""

    status: int = 200
    body: dict[str, Any] | None = None
    sse: tuple[dict[str, Any], ...] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """Replays scripted replies on ``POST <anything>/chat/completions`` and records the requests."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.base_url = ""
        self.app = Starlette(routes=[Route("/{prefix:path}/chat/completions", self._chat, methods=["POST"])])

    def script(self, *replies: Reply) -> None:
        self.replies.clear()
        self.requests.clear()
        self.replies.extend(replies)

    async def _chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append(Seen(time.monotonic(), request.url.path, dict(request.headers), body))
        reply = (
            self.replies.popleft() if self.replies else Reply(500, _error("no reply scripted", "test", None))
        )
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.sse is None:
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
        return StreamingResponse(
            _sse(reply.sse), status_code=reply.status, headers=reply.headers, media_type="text/event-stream"
        )


async def _sse(events: tuple[dict[str, Any], ...]) -> AsyncIterator[bytes]:
    for event in events:
        yield f"data: {json.dumps(event)}\n\n".encode()
    yield b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    config = uvicorn.Config(
        fake.app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
    )
    config.timeout_graceful_shutdown = 1
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="fake-openai", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the fake OpenAI server did not start"
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}"
    yield fake
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake server with an empty script, the test API key set, and non-loopback connections blocked."""
    server.script()
    monkeypatch.setenv(KEY_ENV, KEY)
    blocked: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            blocked.append(address)
            raise OSError(f"test network guard: connection to {address!r} blocked")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield server
    assert not blocked, f"the client tried to reach the network: {blocked}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# ---- helpers --------------------------------------------------------------------------------------------


def deployment(fake: FakeOpenAI, name: str = "fast", **overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "name": name,
        "model": "openai/gpt-4o-mini",
        "provider": "openai",
        "input_cost_per_token": 1.5e-7,
        "output_cost_per_token": 6e-7,
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "supports_tools": True,
        "supports_json_schema": True,
        "pii_allowed": False,
        "region": "us",
        "api_base": f"{fake.base_url}/{name}/v1",
        "api_key_env": KEY_ENV,
    }
    fields.update(overrides)
    return Deployment(**fields)


def model_call(d: Deployment, **overrides: Any) -> ModelCall:
    fields: dict[str, Any] = {"deployment": d, "messages": MESSAGES, "max_tokens": 64, "timeout_s": 10.0}
    fields.update(overrides)
    return ModelCall(**fields)


def run(client: LiteLLMClient, action: Callable[[LiteLLMClient], Awaitable[T]]) -> T:
    """Run ``action(client)`` in a fresh event loop, then close the client."""

    async def main() -> T:
        try:
            return await action(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def complete(client: LiteLLMClient, call: ModelCall) -> Completion:
    return run(client, lambda c: c.complete(call))


def stream(client: LiteLLMClient, call: ModelCall) -> list[Chunk]:
    async def collect(c: LiteLLMClient) -> list[Chunk]:
        return [chunk async for chunk in c.stream(call)]

    return run(client, collect)


# ---- success paths --------------------------------------------------------------------------------------


def test_complete_maps_text_usage_and_sends_the_request(fake: FakeOpenAI) -> None:
    fake.script(Reply(body=COMPLETION))
    d = deployment(fake)

    result = complete(
        LiteLLMClient([d]), model_call(d, temperature=0.2, response_format={"type": "json_object"})
    )

    assert result == Completion(
        text="Hello there!",
        model="gpt-4o-mini-2024-07-18",
        usage=Usage(prompt_tokens=14, completion_tokens=4),
        finish_reason="stop",
    )
    [request] = fake.requests
    assert request.path == "/fast/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == MESSAGES
    assert request.body["max_tokens"] == 64
    assert request.body["temperature"] == 0.2
    assert request.body["response_format"] == {"type": "json_object"}
    assert "stream" not in request.body and "tools" not in request.body


def test_complete_returns_tool_calls_as_plain_dicts(fake: FakeOpenAI) -> None:
    fake.script(Reply(body=TOOL_CALL_COMPLETION))
    d = deployment(fake)

    result = complete(LiteLLMClient([d]), model_call(d, tools=[WEATHER_TOOL]))

    assert result.text == ""
    assert result.finish_reason == "tool_calls"
    assert result.usage == Usage(prompt_tokens=61, completion_tokens=15)
    assert result.tool_calls == [
        {
            "id": "call_Qm3b9XnTq2r8sKd1fVw7LcYh",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert fake.requests[0].body["tools"] == [WEATHER_TOOL]


def test_complete_without_provider_usage_reports_none(fake: FakeOpenAI) -> None:
    fake.script(Reply(body={k: v for k, v in COMPLETION.items() if k != "usage"}))
    d = deployment(fake)

    result = complete(LiteLLMClient([d]), model_call(d))

    assert result.text == "Hello there!"
    assert result.usage is None


def test_stream_yields_deltas_then_the_provider_usage(fake: FakeOpenAI) -> None:
    fake.script(Reply(sse=STREAM_WITH_USAGE))
    d = deployment(fake)

    chunks = stream(LiteLLMClient([d]), model_call(d))

    assert "".join(c.delta for c in chunks) == "Hello there!"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [c.usage for c in chunks if c.usage] == [Usage(prompt_tokens=14, completion_tokens=3)]
    assert chunks[-1].usage == Usage(prompt_tokens=14, completion_tokens=3)
    [request] = fake.requests
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}


def test_stream_without_provider_usage_invents_none(fake: FakeOpenAI) -> None:
    # litellm token-counts a usage chunk of its own here; the client must not pass it on as reported.
    fake.script(Reply(sse=STREAM_WITHOUT_USAGE))
    d = deployment(fake)

    chunks = stream(LiteLLMClient([d]), model_call(d))

    assert "".join(c.delta for c in chunks) == "Hello there!"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert all(c.usage is None for c in chunks)


def test_mock_response_deployment_answers_without_any_http(fake: FakeOpenAI) -> None:
    d = deployment(fake, name="instant", params=(("mock_response", "hi"),))
    client = LiteLLMClient([d])

    async def both(c: LiteLLMClient) -> tuple[Completion, list[Chunk]]:
        done = await c.complete(model_call(d))
        return done, [chunk async for chunk in c.stream(model_call(d))]

    done, chunks = run(client, both)

    assert done.text == "hi"
    assert done.usage is not None  # litellm's mock reports fixed token counts
    assert "".join(c.delta for c in chunks) == "hi"
    assert fake.requests == []


# ---- retries, Retry-After, cooldowns, fallbacks ---------------------------------------------------------


def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeOpenAI) -> None:
    fake.script(Reply(429, RATE_LIMITED, headers=RATE_LIMIT_HEADERS), Reply(body=COMPLETION))
    d = deployment(fake)

    result = complete(LiteLLMClient([d], num_retries=1), model_call(d))

    assert result.text == "Hello there!"
    first, second = fake.requests
    assert second.at - first.at >= 1.0  # Retry-After: 1 (litellm adds up to 0.75 s of jitter)


def test_429_after_the_last_retry_raises_rate_limited_without_a_trailing_sleep(fake: FakeOpenAI) -> None:
    fake.script(*[Reply(429, RATE_LIMITED, headers=RATE_LIMIT_HEADERS)] * 2)
    d = deployment(fake)

    with pytest.raises(ModelRateLimited) as info:
        complete(LiteLLMClient([d], num_retries=1), model_call(d))
    raised_at = time.monotonic()

    err = info.value
    assert (err.retry_after, err.status_code, err.model, err.provider) == (1.0, 429, "fast", "openai")
    assert err.details["attempts"] == 2
    assert "retry after 1 s" in err.message and "fall back" in err.message
    assert isinstance(err.__cause__, Exception) and type(err.__cause__).__module__.startswith("litellm")
    assert len(fake.requests) == 2
    assert raised_at - fake.requests[-1].at < 0.9  # no Retry-After sleep after the final attempt


def test_5xx_is_retried_then_unavailable(fake: FakeOpenAI) -> None:
    fake.script(*[Reply(500, SERVER_ERROR)] * 3)
    d = deployment(fake)

    with pytest.raises(ModelUnavailable) as info:
        complete(LiteLLMClient([d], num_retries=1), model_call(d))

    assert info.value.status_code == 500
    assert info.value.retryable
    assert len(fake.requests) == 2  # num_retries + 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, BAD_REQUEST), (401, BAD_KEY), (403, FORBIDDEN), (404, NO_MODEL)],
    ids=["400", "401", "403", "404"],
)
def test_client_errors_are_rejected_after_exactly_one_request(
    fake: FakeOpenAI, status: int, body: dict[str, Any]
) -> None:
    fake.script(*[Reply(status, body)] * 3)
    d = deployment(fake)

    with pytest.raises(ModelRequestRejected) as info:
        complete(LiteLLMClient([d], num_retries=2), model_call(d))

    assert type(info.value) is ModelRequestRejected
    assert (info.value.status_code, info.value.model, info.value.provider) == (status, "fast", "openai")
    assert not info.value.retryable
    assert "Not retried" in info.value.message
    assert len(fake.requests) == 1


def test_context_length_exceeded_is_translated(fake: FakeOpenAI) -> None:
    fake.script(*[Reply(400, CONTEXT_TOO_LONG)] * 3)
    d = deployment(fake)

    with pytest.raises(ContextWindowExceeded) as info:
        complete(LiteLLMClient([d], num_retries=2), model_call(d))

    assert info.value.status_code == 400
    assert "128000 tokens" in info.value.message and "Shorten the messages" in info.value.message
    assert len(fake.requests) == 1


def test_timeout_is_unavailable(fake: FakeOpenAI) -> None:
    fake.script(Reply(body=COMPLETION, delay_s=1.5))
    d = deployment(fake)

    with pytest.raises(ModelUnavailable) as info:
        complete(LiteLLMClient([d], num_retries=0), model_call(d, timeout_s=0.3))
    raised_at = time.monotonic()

    assert raised_at - fake.requests[0].at < 1.2  # the server answers only after 1.5 s
    assert info.value.status_code is None
    assert "did not answer within 0.3 s" in info.value.message
    assert len(fake.requests) == 1


def test_stream_errors_are_translated_too(fake: FakeOpenAI) -> None:
    fake.script(Reply(401, BAD_KEY))
    d = deployment(fake)

    with pytest.raises(ModelRequestRejected) as info:
        stream(LiteLLMClient([d]), model_call(d))

    assert info.value.status_code == 401
    assert len(fake.requests) == 1


def test_litellm_neither_cools_down_nor_falls_back(fake: FakeOpenAI) -> None:
    # Unless cooldowns are disabled, litellm benches a deployment after a 401 and the next call fails
    # without a request; and a failing deployment must never be replaced by another one by litellm.
    primary = deployment(fake, "primary", fallbacks=("backup",))
    backup = deployment(fake, "backup")
    client = LiteLLMClient([primary, backup], num_retries=0)
    fake.script(Reply(401, BAD_KEY), Reply(body=COMPLETION), Reply(500, SERVER_ERROR), Reply(body=COMPLETION))

    async def calls(c: LiteLLMClient) -> list[str]:
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append((await c.complete(model_call(primary))).text)
            except (ModelRequestRejected, ModelUnavailable) as exc:
                outcomes.append(exc.code)
        return outcomes

    outcomes = run(client, calls)

    assert outcomes == ["model_request_rejected", "Hello there!", "model_unavailable"]
    assert [r.path for r in fake.requests] == ["/primary/v1/chat/completions"] * 3


# ---- configuration --------------------------------------------------------------------------------------


def test_missing_api_key_is_a_configuration_error_and_no_default_key_leaks(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-be-sent")
    d = deployment(fake)

    with pytest.raises(ConfigurationError, match=f"environment variable {KEY_ENV}"):
        complete(LiteLLMClient([d]), model_call(d))

    assert fake.requests == []


def test_unknown_deployment_and_duplicate_names_are_configuration_errors(fake: FakeOpenAI) -> None:
    known, other = deployment(fake, "known"), deployment(fake, "other")

    with pytest.raises(ConfigurationError, match="'other' is not registered"):
        complete(LiteLLMClient([known]), model_call(other))
    with pytest.raises(ConfigurationError, match="duplicate deployment name"):
        LiteLLMClient([known, known])


def test_constructing_the_client_does_not_import_litellm() -> None:
    code = textwrap.dedent(
        """
        import sys
        from maestro.router.litellm_client import LiteLLMClient
        from maestro.router.types import Deployment

        d = Deployment(
            name="x", model="openai/gpt-4o-mini", provider="openai", input_cost_per_token=0.0,
            output_cost_per_token=0.0, context_window=1000, max_output_tokens=100, supports_tools=False,
            supports_json_schema=False, pii_allowed=False, region="us",
        )
        LiteLLMClient([d])
        heavy = sorted(m for m in ("litellm", "openai") if m in sys.modules)
        assert not heavy, heavy
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ---- Retry-After parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "1"}, 1.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": formatdate(1_000_030, usegmt=True)}, 30.0),
        ({"retry-after": "0"}, None),
        ({"retry-after": "soon"}, None),
        ({"x-ratelimit-reset-requests": "1s"}, None),
        (None, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers, now=1_000_000) == expected

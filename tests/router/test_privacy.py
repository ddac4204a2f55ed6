"""PII never reaches a deployment not cleared for it (a real PIIGuard; asserts on what the fake received)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from maestro.core.errors import PIIRefused
from maestro.router.policy import RouteRequest
from maestro.router.privacy import PrivacyFilter
from maestro.router.service import ModelRouter
from maestro.router.testing import FunctionLLM, ScriptedLLM
from maestro.router.types import Message, ModelCall
from maestro.tools.pii import PIIGuard, PIIPromptGuard

RouterFactory = Callable[..., ModelRouter]
PROMPT = "Draft a reply to Jane Doe (jane.doe@example.com, +1 415 555 0134) about invoice 4471."


@pytest.fixture(scope="module")
def guard() -> PIIGuard:
    built = PIIGuard()
    built.warm_up()
    return built


def private_router(
    make_router: RouterFactory, guard: PIIGuard, llm: Any, mode: str, **kw: Any
) -> ModelRouter:
    router = make_router(llm, **kw)
    router._privacy = PrivacyFilter(PIIPromptGuard(guard), mode=mode)  # what the composition root wires
    return router


def req(prompt: str = PROMPT, **kw: Any) -> RouteRequest:
    base: dict[str, Any] = {"task": "chat", "tenant": "acme", "principal": "al"}
    base.update(kw)
    return RouteRequest(messages=[{"role": "user", "content": prompt}], **base)


def sent_text(call: ModelCall) -> str:
    return " ".join(str(m.get("content")) for m in call.messages)


def echo(messages: list[Message], call: ModelCall) -> str:
    return f"I will write to {messages[-1]['content']}"


def test_pseudonymised_for_uncleared_models_and_restored_for_cleared_callers(
    make_router: RouterFactory, guard: PIIGuard
) -> None:
    llm = FunctionLLM(echo)
    router = private_router(make_router, guard, llm, "pseudonymize")
    result = asyncio.run(router.complete(req(clearance="pii")))
    router.flush()
    sent = sent_text(llm.history[0])
    assert llm.history[0].deployment.name == "cheap" and not llm.history[0].deployment.pii_allowed
    for value in ("jane.doe@example.com", "415 555 0134", "Jane Doe"):
        assert value not in sent
    assert "<EMAIL_ADDRESS_1>" in sent and "<PERSON_1>" in sent
    assert "jane.doe@example.com" in result.text and "<EMAIL_ADDRESS_1>" not in result.text
    row = router.decisions.get(result.decision.id)
    assert row["pii"]["action"] == "pseudonymized"
    assert {"EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"} <= set(row["pii"]["types"])
    assert "jane" not in str(row).lower()


def test_callers_without_pii_clearance_keep_the_placeholders(
    make_router: RouterFactory, guard: PIIGuard
) -> None:
    router = private_router(make_router, guard, FunctionLLM(echo), "pseudonymize")
    result = asyncio.run(router.complete(req(clearance="internal")))
    assert "jane.doe@example.com" not in result.text and "<EMAIL_ADDRESS_1>" in result.text


def test_redact_mode_sends_type_tags(make_router: RouterFactory, guard: PIIGuard) -> None:
    llm = FunctionLLM(echo)
    router = private_router(make_router, guard, llm, "redact")
    result = asyncio.run(router.complete(req(clearance="pii")))
    assert "<EMAIL_ADDRESS>" in sent_text(llm.history[0]) and "jane.doe" not in result.text


def test_refuse_mode_routes_to_a_cleared_model(make_router: RouterFactory, guard: PIIGuard) -> None:
    llm = ScriptedLLM(["ok"])
    router = private_router(make_router, guard, llm, "refuse")
    result = asyncio.run(router.complete(req()))
    assert llm.models_called == ["onprem"]  # the only deployment with pii_allowed
    assert "jane.doe@example.com" in sent_text(llm.history[0])  # cleared: sent as is
    router.flush()
    assert router.decisions.get(result.decision.id)["pii"]["action"] == "cleared-only"


def test_refuse_mode_without_a_cleared_model_refuses(make_router: RouterFactory, guard: PIIGuard) -> None:
    llm = ScriptedLLM(["never"])
    router = private_router(make_router, guard, llm, "refuse")
    with pytest.raises(PIIRefused) as info:
        asyncio.run(router.complete(req(tenant="restricted")))
    assert "EMAIL_ADDRESS" in info.value.message and "pii_allowed" in info.value.message
    assert llm.history == []


def test_prompts_without_pii_and_cleared_plans_are_untouched(
    make_router: RouterFactory, guard: PIIGuard
) -> None:
    llm = ScriptedLLM(["a", "b"])
    router = private_router(make_router, guard, llm, "pseudonymize")
    asyncio.run(router.complete(req("What is the capital of France?")))
    assert sent_text(llm.history[0]) == "What is the capital of France?"
    asyncio.run(router.complete(req(data_class="pii")))  # only cleared deployments: never scanned
    assert "jane.doe@example.com" in sent_text(llm.history[1]) and llm.history[1].deployment.pii_allowed


def test_obfuscated_pii_is_caught_before_it_leaves(make_router: RouterFactory, guard: PIIGuard) -> None:
    llm = FunctionLLM(echo)
    router = private_router(make_router, guard, llm, "pseudonymize")
    sneaky = "mail ja\u200bne.d\u043ee@example.com the key AKIA" + "IOSFODNN7EXAMPLE"
    asyncio.run(router.complete(req(sneaky)))
    sent = sent_text(llm.history[0])
    assert "example.com" not in sent and "IOSFODNN7EXAMPLE" not in sent

"""ModelRouter end to end with fake LLMs at Maestro's interface and a real state DB."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.errors import (
    BudgetExceeded,
    ContextWindowExceeded,
    DeadlineExceeded,
    InvalidRequest,
    ModelRequestRejected,
    ModelUnavailable,
    NoEligibleModel,
    PayloadTooLarge,
    PolicyDenied,
    UnknownModel,
)
from maestro.core.schema import budget_reservations, decisions, from_nano
from maestro.router.policy import RouteRequest
from maestro.router.service import ModelRouter, RoutedCompletion
from maestro.router.testing import (
    FunctionLLM,
    ScriptedLLM,
    bad_request,
    context_too_long,
    count_tokens,
    rate_limited,
    server_error,
)
from maestro.router.types import Completion, ModelCall, Usage

RouterFactory = Callable[..., ModelRouter]


def req(prompt: str = "Say hello", **kw: Any) -> RouteRequest:
    base: dict[str, Any] = {"task": "chat", "tenant": "acme", "principal": "alice"}
    base.update(kw)
    return RouteRequest(messages=[{"role": "user", "content": prompt}], **base)


def run(router: ModelRouter, request: RouteRequest) -> RoutedCompletion:
    try:
        return asyncio.run(router.complete(request))
    finally:
        router.flush()  # settlements are written in the background


def decision_row(router: ModelRouter, decision_id: str) -> dict[str, Any]:
    return router.decisions.get(decision_id)


def test_cheapest_model_meeting_the_floor_is_chosen_and_recorded(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["hello there"])
    router = make_router(llm)
    result = run(router, req())
    assert result.model == "cheap"
    assert llm.models_called == ["cheap"]
    assert result.decision.fallbacks == ("mid", "pricey", "onprem")  # catalog first, then rank
    row = decision_row(router, result.decision.id)
    assert row["status"] == "succeeded"
    assert row["model_used"] == "cheap"
    assert row["prompt_tokens"] == result.usage.prompt_tokens
    expected = result.usage.prompt_tokens * 1e-7 + result.usage.completion_tokens * 4e-7
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-6)
    assert "Say hello" not in str(row)  # the prompt itself is never stored


def test_higher_floor_moves_to_the_cheapest_good_enough_model(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["patch"])
    result = run(make_router(llm), req(task="codegen.edit"))
    assert result.model == "mid"  # cheap (0.50) is below the 0.8 floor; mid is cheaper than pricey


def test_no_model_meeting_the_floor_picks_the_best_quality(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["answer"])
    result = run(make_router(llm), req(task="rag.answer"))
    # every model has the prior 0.5 < 0.99: the best predicted quality wins, ties broken by cost
    assert result.model == "onprem"


def test_cost_ceiling_picks_best_quality_within_it(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["docs"])
    router = make_router(llm)
    decision = router.decide(req(task="docs.write", max_tokens=200))
    # pricey: ~200*3e-5 = $0.006 <= $0.01 ceiling, best quality
    assert decision.chosen == "pricey"
    decision = router.decide(req(task="docs.write", max_tokens=1000))
    # pricey now costs ~$0.03 > ceiling; mid (~$0.004) is the best within it
    assert decision.chosen == "mid"


def test_fallback_order_follows_the_catalog_then_rank(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(per_model={"cheap": [server_error(503)], "mid": [rate_limited(None)], "pricey": ["ok"]})
    router = make_router(llm)
    result = run(router, req())
    assert llm.models_called == ["cheap", "mid", "pricey"]
    assert result.model == "pricey"
    row = decision_row(router, result.decision.id)
    assert [a["model"] for a in row["attempts"]] == ["cheap", "mid", "pricey"]
    assert [a["status"] for a in row["attempts"]] == ["error", "error", "ok"]
    assert row["attempts"][0]["status_code"] == 503


def test_every_provider_failing_tries_each_group_once_and_gives_one_error(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(per_model={m: [server_error(500)] * 5 for m in ("cheap", "mid", "pricey", "onprem")})
    router = make_router(llm)
    with pytest.raises(ModelUnavailable) as info:
        run(router, req())
    assert sorted(llm.models_called) == sorted(set(llm.models_called))  # each model at most once
    assert len(llm.models_called) == 4  # chosen + 3 fallbacks (max_fallbacks=3)
    assert "all 4 model(s) failed" in info.value.message
    row = decision_row(router, info.value.details["decision_id"])
    assert row["status"] == "failed" and row["error_code"] == "model_unavailable"
    # nothing is spent and nothing stays reserved
    status = router.budgets.status("tenant", "acme")
    assert status.spent_usd == 0 and status.reserved_usd == 0


@pytest.mark.parametrize("error", [bad_request(400), bad_request(401), context_too_long()])
def test_non_retryable_errors_never_fall_back_nor_cool_down(make_router: RouterFactory, error: Any) -> None:
    llm = ScriptedLLM(per_model={"cheap": [error, error, error], "mid": ["should not be called"]})
    router = make_router(llm)
    for _ in range(3):
        with pytest.raises(ModelRequestRejected) as info:
            run(router, req())
        assert info.value.status_code in (400, 401)
    assert llm.models_called == ["cheap"] * 3
    assert router.health.cooling_down() == {}
    if isinstance(error, ContextWindowExceeded):
        assert info.value.code == "context_window_exceeded"


def test_cooldown_after_repeated_failures_removes_the_model_from_candidates(
    make_router: RouterFactory,
) -> None:
    llm = ScriptedLLM(per_model={"cheap": [server_error(503), server_error(503)], "mid": ["one", "two"]})
    router = make_router(llm)  # allowed_fails=2, cooldown 60 s
    assert run(router, req()).model == "mid"
    assert router.health.cooling_down() == {}
    assert run(router, req()).model == "mid"
    cooling = router.health.cooling_down()
    assert set(cooling) == {"cheap"} and 0 < cooling["cheap"] <= 60
    decision = router.decide(req())
    assert decision.chosen == "mid"
    cheap = decision.candidate("cheap")
    assert not cheap.eligible and "cooling down" in cheap.reasons[0]


def test_retry_after_on_429_cools_the_model_down_at_once(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(per_model={"cheap": [rate_limited(retry_after=30)], "mid": ["ok"]})
    router = make_router(llm)
    run(router, req())
    assert 25 < router.health.cooling_down()["cheap"] <= 30


def test_success_resets_the_failure_count(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(per_model={"cheap": [server_error(), "ok", server_error(), "ok"], "mid": ["m1", "m2"]})
    router = make_router(llm)
    for _ in range(4):
        run(router, req())
    assert router.health.cooling_down() == {}


def test_override_needs_scope_and_reason_and_is_recorded(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["from pricey"])
    router = make_router(llm)
    with pytest.raises(PolicyDenied) as denied:
        run(router, req(model="pricey", override_reason="need the best"))
    assert "router:override" in denied.value.message
    with pytest.raises(InvalidRequest):
        run(router, req(model="pricey", scopes=frozenset({"router:override"})))
    with pytest.raises(UnknownModel):
        run(router, req(model="nope", scopes=frozenset({"router:override"}), override_reason="x"))
    assert llm.history == []
    result = run(
        router, req(model="pricey", scopes=frozenset({"router:override"}), override_reason="need the best")
    )
    assert result.model == "pricey"
    assert result.decision.fallbacks == ()
    row = decision_row(router, result.decision.id)
    assert row["override"] == {"model": "pricey", "reason": "need the best", "by": "alice"}


def test_override_cannot_bypass_data_clearance(make_router: RouterFactory) -> None:
    router = make_router(ScriptedLLM(["x"]))
    with pytest.raises(NoEligibleModel) as info:
        run(
            router,
            req(data_class="pii", model="cheap", scopes=frozenset({"router:override"}), override_reason="r"),
        )
    assert "not cleared for PII" in info.value.message


def test_pii_requests_only_reach_cleared_deployments(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["ok"])
    result = run(make_router(llm), req(data_class="pii"))
    assert llm.models_called == ["onprem"]
    assert result.decision.fallbacks == ()


def test_tenant_allow_list(make_router: RouterFactory) -> None:
    router = make_router(ScriptedLLM([]))
    decision = router.decide(req(tenant="restricted", task="codegen.edit"))
    assert decision.chosen == "cheap"
    assert [c.model for c in decision.candidates if c.eligible] == ["cheap"]


def test_context_window_and_output_limits_filter_candidates(make_router: RouterFactory) -> None:
    router = make_router(ScriptedLLM([]))
    long_prompt = "word " * 12_000  # ~20k estimated tokens: beyond cheap (16k) and onprem (8k)
    decision = router.decide(req(long_prompt))
    assert decision.chosen == "mid"
    assert any("context window" in r for r in decision.candidate("cheap").reasons)
    decision = router.decide(req(max_tokens=6000))
    assert decision.chosen == "mid"
    assert any("output limit" in r for r in decision.candidate("cheap").reasons)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (RouteRequest(task="chat", messages=[], tenant="t", principal="p"), InvalidRequest),
        (req("   "), InvalidRequest),
        (req("x" * 10_000_000), PayloadTooLarge),
        (
            RouteRequest(
                task="chat", messages=[{"role": "user", "content": "hi"}] * 100_000, tenant="t", principal="p"
            ),
            PayloadTooLarge,
        ),
        (req(max_tokens=1_000_000_000), InvalidRequest),
        (req(max_tokens=0), InvalidRequest),
        (req(task="unknown.task"), InvalidRequest),
        (
            RouteRequest(
                task="chat", messages=[{"role": "root", "content": "hi"}], tenant="t", principal="p"
            ),
            InvalidRequest,
        ),
    ],
)
def test_bad_input_is_refused_before_any_call_or_spend(
    make_router: RouterFactory, sqlite_engine: Engine, request_: RouteRequest, error: type[Exception]
) -> None:
    llm = ScriptedLLM(["never"])
    router = make_router(llm)
    with pytest.raises(error):
        run(router, request_)
    assert llm.history == []
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(budget_reservations)).scalar() == 0


def test_payload_too_large_maps_to_413() -> None:
    assert PayloadTooLarge.http_status == 413 and InvalidRequest.http_status == 422


def test_exhausted_budget_refuses_without_calling(make_router: RouterFactory, sqlite_engine: Engine) -> None:
    llm = ScriptedLLM(["never"])
    router = make_router(llm)
    router.budgets.set_limit("tenant", "acme", 0.0)
    with pytest.raises(BudgetExceeded):
        run(router, req())
    assert llm.history == []
    with sqlite_engine.connect() as conn:
        rows = conn.execute(sa.select(decisions.c.status)).scalars().all()
    assert rows == ["refused"]


def test_budget_too_small_for_fallbacks_keeps_cheaper_plan(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(per_model={"cheap": [server_error()], "onprem": [server_error()]})
    router = make_router(llm)
    # enough for cheap's (~$0.0002) and onprem's (~$0.0001) max cost, not mid's (~$0.002) or pricey's
    router.budgets.set_limit("tenant", "acme", 0.001)
    decision = router.decide(req())
    assert decision.fallbacks == ("onprem",)
    assert "remaining budget" in decision.candidate("mid").reasons[0]
    with pytest.raises(ModelUnavailable):
        run(router, req())
    assert llm.models_called == ["cheap", "onprem"]


def test_spend_equals_provider_reported_usage(make_router: RouterFactory) -> None:
    reported = Usage(prompt_tokens=1234, completion_tokens=567)
    llm = ScriptedLLM([Completion(text="x", model="cheap", usage=reported)] * 3)
    router = make_router(llm)
    for _ in range(3):
        run(router, req())
    status = router.budgets.status("tenant", "acme")
    assert status.spent_usd == pytest.approx(3 * (1234 * 1e-7 + 567 * 4e-7), rel=1e-9)
    assert status.reserved_usd == 0


def test_streaming_yields_deltas_and_costs_reported_usage(make_router: RouterFactory) -> None:
    router = make_router(ScriptedLLM(["one two three four"]))

    async def collect() -> tuple[list[str], RoutedCompletion]:
        deltas, result = [], None
        async for event in router.stream(req()):
            if event.kind == "delta":
                deltas.append(event.text)
            elif event.kind == "end":
                result = event.result
        assert result is not None
        return deltas, result

    deltas, result = asyncio.run(collect())
    router.flush()
    assert deltas == ["one", " two", " three", " four"]
    assert result.text == "one two three four"
    assert not result.usage_estimated
    assert result.usage.completion_tokens == count_tokens("one two three four")


def test_streaming_without_usage_is_charged_a_flagged_conservative_estimate(
    make_router: RouterFactory,
) -> None:
    text = "a fairly long answer " * 20
    router = make_router(ScriptedLLM([text], stream_usage=False))

    async def collect() -> RoutedCompletion:
        async for event in router.stream(req()):
            if event.kind == "end" and event.result is not None:
                return event.result
        raise AssertionError("no end event")

    result = asyncio.run(collect())
    router.flush()
    assert result.usage_estimated
    assert result.cost_usd > 0
    assert result.usage.completion_tokens >= count_tokens(text)  # never below a real tokenizer's count
    row = decision_row(router, result.decision.id)
    assert row["usage_estimated"] is True
    assert router.budgets.status("tenant", "acme").spent_usd == pytest.approx(result.cost_usd)


def test_abandoned_stream_releases_its_reservation(make_router: RouterFactory) -> None:
    router = make_router(ScriptedLLM(["one two three"]))

    async def first_delta() -> str:
        stream = router.stream(req())
        async for event in stream:
            if event.kind == "delta":
                await stream.aclose()  # type: ignore[attr-defined]
                return event.decision.id
        raise AssertionError("no delta")

    decision_id = asyncio.run(first_delta())
    assert router.budgets.status("tenant", "acme").reserved_usd == 0
    assert decision_row(router, decision_id)["status"] == "cancelled"


def test_overall_deadline_bounds_slow_providers(make_router: RouterFactory) -> None:
    llm = ScriptedLLM(["late", "late", "late", "late"], latency_s=0.5)
    router = make_router(llm, request_deadline_s=0.3)
    with pytest.raises(DeadlineExceeded) as info:
        run(router, req())
    assert "deadline of 0.3s" in info.value.message
    assert len(llm.history) == 1  # the deadline was spent on the first attempt
    assert router.budgets.status("tenant", "acme").reserved_usd == 0
    assert info.value.details["decision_id"]


def test_function_llm_sees_messages_and_call(make_router: RouterFactory) -> None:
    seen: list[ModelCall] = []

    def answer(messages: list[dict[str, Any]], call: ModelCall) -> str:
        seen.append(call)
        return f"echo: {messages[-1]['content']}"

    result = run(make_router(FunctionLLM(answer)), req("ping", max_tokens=50))
    assert result.text == "echo: ping"
    assert seen[0].max_tokens == 50 and seen[0].deployment.name == "cheap"


@pytest.mark.parametrize("write_behind", [True, False])
def test_budget_events_at_80_and_100_percent(make_router: RouterFactory, write_behind: bool) -> None:
    big = Usage(prompt_tokens=1000, completion_tokens=0)  # $0.0001 on cheap
    llm = ScriptedLLM([Completion(text="x", model="cheap", usage=big)] * 10)
    router = make_router(llm, write_behind=write_behind)
    router.budgets.set_limit("tenant", "acme", 0.001)
    returned = []
    for _ in range(8):
        returned += run(router, req("hi", max_tokens=10)).budget_events
    stored = router.budgets.events(scope_kind="tenant")
    assert [(e.scope_kind, e.threshold_pct) for e in stored] == [("tenant", 80)]
    assert from_nano(stored[0].used_nano) == pytest.approx(0.0008)
    # synchronous settlement hands the events to the caller too; write-behind only stores and logs them
    assert returned == (stored if not write_behind else [])


def test_write_behind_batches_settlements_and_flush_makes_them_visible(make_router: RouterFactory) -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=10)
    router = make_router(ScriptedLLM([Completion(text="x", model="cheap", usage=usage)] * 30))

    async def many() -> list[RoutedCompletion]:
        return list(await asyncio.gather(*(router.complete(req(f"q{i}")) for i in range(30))))

    results = asyncio.run(many())
    router.flush()
    status = router.budgets.status("tenant", "acme")
    assert status.reserved_usd == 0
    assert status.spent_usd == pytest.approx(sum(r.cost_usd for r in results))
    recorded = {d["id"] for d in router.decisions.list(tenant="acme", limit=100)}
    assert recorded == {r.decision.id for r in results}
    router.close()
    router.close()  # idempotent


def test_fifty_concurrent_requests_cannot_overspend(make_router: RouterFactory) -> None:
    """RELIABILITY #20 at the router: reservations are atomic, so only what the budget covers runs."""
    usage = Usage(prompt_tokens=5, completion_tokens=50)  # a provider reporting the full max_tokens
    llm = ScriptedLLM([Completion(text="x", model="pricey", usage=usage)] * 50, latency_s=0.02)
    router = make_router(llm)
    override = {"model": "pricey", "scopes": frozenset({"router:override"}), "override_reason": "bench"}
    router.budgets.set_limit("tenant", "acme", 0.01)
    # each call may cost up to ~$0.0015 on pricey (7 prompt tokens + 50 max tokens): 6 fit in $0.01
    request = req("hi", max_tokens=50, **override)
    max_cost = router.decide(request).candidate("pricey").est_cost_usd

    async def burst() -> list[RoutedCompletion | BaseException]:
        return list(
            await asyncio.gather(*(router.complete(request) for _ in range(50)), return_exceptions=True)
        )

    outcomes = asyncio.run(burst())
    router.flush()
    succeeded = [o for o in outcomes if isinstance(o, RoutedCompletion)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceeded | NoEligibleModel)]
    assert len(succeeded) + len(refused) == 50
    assert len(succeeded) == int(0.01 // max_cost)
    status = router.budgets.status("tenant", "acme")
    assert status.spent_usd == pytest.approx(sum(o.cost_usd for o in succeeded))  # recorded = reported usage
    assert status.spent_usd <= 0.01 + max_cost
    assert len(llm.history) == len(succeeded)

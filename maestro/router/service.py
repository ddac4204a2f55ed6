"""``ModelRouter``: decide, reserve budget, call with fallbacks under one deadline, settle, record.

The one entry point for every model call in Maestro (CLI ``ask``, the API, workcells). The order of
operations is what makes spending safe:

1. validate the request (size limits: 413/422 before any provider call, RELIABILITY.md #24);
2. decide (``policy.decide``) against the remaining budget and current cooldowns;
3. reserve the maximum cost of the planned attempts atomically (``BudgetStore.reserve``) — a refused
   request spends nothing;
4. try the chosen deployment, then each fallback, each at most once, all inside one overall deadline;
   a non-retryable error (400/401/...) stops at once with no fallback storm (#22, #23);
5. settle the reservation to the provider-reported usage, or to a conservative, flagged estimate when
   the provider reports none (#21); release it on failure;
6. persist the decision and its outcome.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from maestro.core.errors import (
    BudgetExceeded,
    DeadlineExceeded,
    InvalidRequest,
    MaestroError,
    ModelCallFailed,
    ModelUnavailable,
    NoEligibleModel,
    PayloadTooLarge,
    PIIRefused,
)
from maestro.core.schema import from_nano, to_nano
from maestro.router.budget import BudgetEvent, BudgetStore, Reservation
from maestro.router.budget_view import RemainingBudgetView
from maestro.router.catalog import Catalog
from maestro.router.decisions import DecisionLog, Outcome
from maestro.router.health import HealthTracker
from maestro.router.policy import Decision, RouteContext, RouteRequest, decide, require_chosen
from maestro.router.privacy import NO_PII, PrivacyFilter, PrivacyPlan
from maestro.router.prompt_router import (
    MarginRule,
    PromptEmbedder,
    PromptRouter,
    PromptRouterFile,
    prompt_text,
)
from maestro.router.settlement import Settlement, SettlementWriter, write_settlements
from maestro.router.types import Chunk, Completion, LLMClient, ModelCall, Usage
from maestro.router.weights import Weights, WeightsFile

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


@dataclass(frozen=True)
class RouterLimits:
    """Request limits and execution settings (from ``Settings``)."""

    max_prompt_bytes: int = 1_000_000
    max_messages: int = 2_048
    max_tokens_limit: int = 32_768
    default_max_tokens: int = 512
    deadline_s: float = 120.0
    max_fallbacks: int = 3
    budget_view_s: float = 1.0
    write_behind: bool = True


@dataclass(frozen=True)
class RoutedCompletion:
    """A finished routed call. ``budget_events`` is filled only when settlement is synchronous
    (``write_behind=False``); with write-behind the budget store logs the alerts when it writes them."""

    text: str
    model: str
    decision: Decision
    usage: Usage
    cost_usd: float
    usage_estimated: bool
    finish_reason: str | None
    tool_calls: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    budget_events: list[BudgetEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "decision_id": self.decision.id,
            "task": self.decision.task,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "estimated": self.usage_estimated,
            },
            "cost_usd": self.cost_usd,
            "finish_reason": self.finish_reason,
            "fallbacks_used": [a["model"] for a in self.attempts[:-1]],
        }


@dataclass(frozen=True)
class StreamEvent:
    """``start`` (decision made), ``delta`` (text), ``end`` (the finished call in ``result``)."""

    kind: Literal["start", "delta", "end"]
    decision: Decision
    text: str = ""
    result: RoutedCompletion | None = None


Observer = Callable[[Decision, Outcome], None]


@dataclass(frozen=True)
class _PromptScore:
    """The prompt router's P(success) per deployment for one prompt, the router version behind it and the
    task class's rule in that version (None: the weights' floor)."""

    quality: Mapping[str, float]
    version: str | None
    rule: MarginRule | None = None


_NO_SCORE = _PromptScore({}, None)


class ModelRouter:
    """Routes, budgets, executes and records model calls. Build it with ``router.factory.build_router``."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        weights: Weights,
        client: LLMClient,
        budgets: BudgetStore,
        decisions: DecisionLog,
        health: HealthTracker,
        limits: RouterLimits | None = None,
        environ: Mapping[str, str] | None = None,
        observer: Observer | None = None,
        privacy: PrivacyFilter | None = None,
        weights_file: WeightsFile | None = None,
        prompt_router: PromptRouter | None = None,
        prompt_embedder: PromptEmbedder | None = None,
        prompt_router_file: PromptRouterFile | None = None,
    ) -> None:
        self.catalog = catalog
        self._prompt_router = prompt_router  # per-prompt quality; needs ``prompt_embedder`` to embed prompts
        self._prompt_router_file = prompt_router_file  # reloads the prompt router when its file changes
        self._weights = weights
        self._weights_file = weights_file  # reloads the weights when their file changes
        self.client = client
        self.budgets = budgets
        self.decisions = decisions
        self.health = health
        self.limits = limits or RouterLimits()
        self._environ = environ
        self._observer = observer
        self._privacy = privacy
        self._prompt_embedder = prompt_embedder
        self._writer = SettlementWriter(budgets, decisions) if self.limits.write_behind else None
        self._budget_view = RemainingBudgetView(budgets, ttl_s=self.limits.budget_view_s)

    @property
    def weights(self) -> Weights:
        """The routing weights in force (re-read from their file when it changed, if one is watched)."""
        if self._weights_file is not None:
            self._weights = self._weights_file.current()
        return self._weights

    @property
    def prompt_router(self) -> PromptRouter | None:
        """The per-prompt router in force (re-read from its file when it changed, if one is watched)."""
        if self._prompt_router_file is not None:
            self._prompt_router = self._prompt_router_file.current()
        return self._prompt_router

    # -- deciding -------------------------------------------------------------------------------
    def decide(self, request: RouteRequest, *, fresh_budget: bool = True) -> Decision:
        """Validate and decide without calling a model or reserving budget.

        With ``fresh_budget=False`` the remaining budget may come from this process's view (up to
        ``RouterLimits.budget_view_s`` old); the reservation that follows is authoritative either way.
        """
        return self._decide(request, fresh_budget=fresh_budget)[0]

    def prompt_quality(self, request: RouteRequest) -> dict[str, float]:
        """The prompt router's P(success) per deployment for this prompt; empty without a prompt router,
        for a task class it has no entry for, and for an override (the caller chose the model)."""
        return dict(self._score(request).quality)

    def _score(self, request: RouteRequest) -> _PromptScore:
        """:meth:`prompt_quality` and the version of the prompt router that predicted it (one snapshot:
        a reload in between cannot pair one file's predictions with another's version)."""
        router, embedder = self.prompt_router, self._prompt_embedder
        if router is None or embedder is None or request.is_override or not router.covers(request.task):
            return _NO_SCORE
        text = prompt_text(request.messages)
        if not text.strip():
            return _NO_SCORE
        quality = router.predict(request.task, embedder.embed_query(router.embed_text(text)), text)
        if not quality:
            return _NO_SCORE
        return _PromptScore(quality, router.version, router.rule(request.task))

    def _decide(
        self, request: RouteRequest, *, fresh_budget: bool, score: _PromptScore | None = None
    ) -> tuple[Decision, bool]:
        """Decide against the current budget and cooldowns; ``score`` is the prompt router's prediction
        when the caller already has it (computed here otherwise)."""
        self.validate(request)
        if score is None:
            score = self._score(request)
        remaining, fresh = self._budget_view.remaining_nano(
            request.tenant, request.principal, fresh=fresh_budget
        )
        context = RouteContext(
            remaining_budget_usd=from_nano(remaining),
            cooling_down=self.health.cooling_down(),
            environ=self._environ,
            default_max_tokens=self.limits.default_max_tokens,
            max_fallbacks=self.limits.max_fallbacks,
            prompt_quality=score.quality,
            prompt_router=score.version,
        )
        weights = self.weights
        decision = decide(request, self.catalog, weights, context)
        if score.rule is None or decision.override is not None:
            return decision, fresh
        # a margin rule: among the eligible models the prompt router scored, the cheapest whose P(success)
        # is within the margin of the best one's; its P becomes the prompt's floor, so decide chooses it
        # (or a cheaper model the file does not score whose weights estimate is at least as high)
        scored = [c for c in decision.candidates if c.eligible and c.model in score.quality]
        if not scored:
            return decision, fresh
        best = max(c.predicted_quality for c in scored)
        within = [c for c in scored if c.predicted_quality >= score.rule.floor(best)]
        pick = min(within, key=lambda c: (c.est_cost_usd, -c.predicted_quality, c.model))
        floor = pick.predicted_quality
        context = replace(
            context,
            prompt_router=f"{score.version}; margin {score.rule.margin:.2f} below the best {best:.2f}",
        )
        return decide(request, self.catalog, weights.with_floor(request.task, floor), context), fresh

    def explain(self, request: RouteRequest) -> Decision:
        """``maestro route explain``: decide and record the decision as ``explained``."""
        decision = self.decide(request)
        self.decisions.record(decision, status="explained")
        return decision

    def validate(self, request: RouteRequest) -> None:
        """Refuse malformed or oversized requests before anything else happens."""
        limits = self.limits
        if not request.messages:
            raise InvalidRequest("the prompt is empty: send at least one message with content")
        if len(request.messages) > limits.max_messages:
            raise PayloadTooLarge(
                f"{len(request.messages)} messages exceed the limit of {limits.max_messages} "
                "(MAESTRO_MAX_MESSAGES)"
            )
        size = 0
        has_text = False
        for index, message in enumerate(request.messages):
            role = message.get("role")
            if role not in _ROLES:
                raise InvalidRequest(f"messages[{index}].role is {role!r}; use one of {sorted(_ROLES)}")
            content = message.get("content")
            text = content if isinstance(content, str) else "" if content is None else repr(content)
            size += len(text.encode("utf-8"))
            has_text = has_text or bool(text.strip())
        if size > limits.max_prompt_bytes:
            raise PayloadTooLarge(
                f"the prompt is {size:,} bytes; the limit is {limits.max_prompt_bytes:,} "
                "(MAESTRO_MAX_PROMPT_BYTES)"
            )
        if not has_text:
            raise InvalidRequest("the prompt is empty: every message's content is blank")
        if request.max_tokens is not None and not 0 < request.max_tokens <= limits.max_tokens_limit:
            raise InvalidRequest(
                f"max_tokens={request.max_tokens} is out of range: use 1..{limits.max_tokens_limit} "
                "(MAESTRO_MAX_TOKENS_LIMIT)"
            )

    # -- executing ------------------------------------------------------------------------------
    async def complete(self, request: RouteRequest) -> RoutedCompletion:
        """One routed, budgeted, recorded completion."""
        result: RoutedCompletion | None = None
        async for event in self._run(request, stream=False):
            if event.kind == "end":
                result = event.result
        assert result is not None
        return result

    async def stream(self, request: RouteRequest) -> AsyncIterator[StreamEvent]:
        """A routed completion as events; fallbacks happen only before the first token."""
        async for event in self._run(request, stream=True):
            yield event

    async def _run(self, request: RouteRequest, *, stream: bool) -> AsyncIterator[StreamEvent]:
        score = _NO_SCORE
        if self.prompt_router is not None:  # embedding the prompt takes milliseconds: off the event loop
            self.validate(request)
            score = await asyncio.to_thread(self._score, request)
        decision, fresh = self._decide(request, fresh_budget=False, score=score)
        privacy, request, decision = self._privacy_plan(request, decision, score)
        try:
            plan, reservation = self._plan_and_reserve(decision, privacy)
        except BudgetExceeded:
            if fresh:
                raise
            decision, _ = self._decide(request, fresh_budget=True, score=score)  # the view was stale
            plan, reservation = self._plan_and_reserve(decision, privacy)
        started = time.perf_counter()
        attempts: list[dict[str, Any]] = []
        finished = False
        try:
            yield StreamEvent("start", decision)
            deadline = started + self.limits.deadline_s
            error: MaestroError | None = None
            for model in plan:
                if model in self.health.cooling_down() and model != plan[0]:
                    attempts.append({"model": model, "status": "skipped", "reason": "cooling down"})
                    continue
                left = deadline - time.perf_counter()
                if left <= 0:
                    error = DeadlineExceeded(
                        f"the request's deadline of {self.limits.deadline_s:g}s passed before '{model}' "
                        "could be tried (MAESTRO_REQUEST_DEADLINE_S)",
                        model=model,
                    )
                    break
                call = self._call(request, decision, model, left, privacy)
                attempt_start = time.perf_counter()
                texts: list[str] = []
                completion: Completion | None = None
                try:
                    if stream:
                        async for piece in self._consume(call, deadline):
                            if isinstance(piece, str):
                                texts.append(piece)
                                yield StreamEvent("delta", decision, text=piece)
                            else:
                                completion = piece
                    else:
                        completion = await self._complete(call)
                except ModelCallFailed as exc:
                    attempts.append(_attempt_record(model, exc, attempt_start))
                    self.health.record_failure(model, exc)
                    error = exc
                    if texts:  # tokens already reached the caller: charge what was produced, no fallback
                        self._settle_partial(reservation, decision, model, texts)
                        break
                    if not exc.retryable:
                        break
                    continue
                assert completion is not None
                self.health.record_success(model)
                attempts.append({"model": model, "status": "ok", "ms": _ms(attempt_start)})
                restored = privacy.restore(completion.text, request, call.deployment.pii_allowed)
                if restored != completion.text:
                    completion = replace(completion, text=restored)
                result = self._settle(reservation, decision, call, completion, attempts, started, privacy)
                finished = True
                yield StreamEvent("end", decision, result=result)
                return
            finished = True
            self._fail(reservation, decision, attempts, started, error, privacy)
        finally:
            if not finished:  # the caller went away (or was cancelled) mid-call
                outcome = Outcome(
                    status="cancelled",
                    model_used=None,
                    attempts=attempts,
                    latency_ms=_ms(started),
                    pii=privacy.record(),
                )
                with self.budgets.engine.begin() as conn:
                    self.budgets.release(reservation, conn=conn)
                    self.decisions.record(decision, status="cancelled", outcome=outcome, conn=conn)
                self._budget_view.adjust(decision.tenant, decision.principal, reservation.amount_nano)

    async def _complete(self, call: ModelCall) -> Completion:
        try:
            async with asyncio.timeout(call.timeout_s):  # no extra task, unlike wait_for
                return await self.client.complete(call)
        except TimeoutError:
            raise _timed_out(call) from None

    async def _consume(self, call: ModelCall, deadline: float) -> AsyncIterator[str | Completion]:
        """Yield text deltas as they arrive, then the assembled Completion."""
        usage: Usage | None = None
        finish: str | None = None
        parts: list[str] = []
        iterator = aiter(self.client.stream(call))
        while True:
            left = deadline - time.perf_counter()
            try:
                if left <= 0:
                    raise TimeoutError
                async with asyncio.timeout(left):
                    chunk: Chunk = await anext(iterator)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise _timed_out(call) from None
            if chunk.delta:
                parts.append(chunk.delta)
                yield chunk.delta
            usage = chunk.usage or usage
            finish = chunk.finish_reason or finish
        yield Completion(text="".join(parts), model=call.deployment.name, usage=usage, finish_reason=finish)

    def _privacy_plan(
        self, request: RouteRequest, decision: Decision, score: _PromptScore
    ) -> tuple[PrivacyPlan, RouteRequest, Decision]:
        """Scan the prompt when a planned deployment is not cleared for PII; refuse, or plan protection."""
        if self._privacy is None or not self._privacy.needs_scan(request, decision, self.catalog):
            return NO_PII, request, decision
        plan = self._privacy.plan(self._privacy.inspect(request))
        if plan.action != "cleared-only":
            return plan, request, decision
        request = replace(request, data_class="pii")
        decision, _ = self._decide(request, fresh_budget=False, score=score)
        if decision.chosen is None:
            outcome = Outcome(
                status="refused", model_used=None, attempts=[], pii=plan.record(), error_code="pii_refused"
            )
            self.decisions.record(decision, status="refused", outcome=outcome)
            types = ", ".join(plan.protected.entity_types if plan.protected else ())
            raise PIIRefused(
                f"the prompt contains PII ({types}) and no model cleared for PII can serve task "
                f"'{decision.task}' for tenant '{decision.tenant}': add `pii_allowed: true` to a deployment "
                "in the catalog, or set MAESTRO_PII_MODE=pseudonymize to send placeholders instead",
                decision_id=decision.id,
                entity_types=list(plan.protected.entity_types if plan.protected else ()),
            )
        return plan, request, decision

    def _plan_and_reserve(
        self, decision: Decision, privacy: PrivacyPlan = NO_PII
    ) -> tuple[list[str], Reservation]:
        try:
            chosen = require_chosen(decision)
        except NoEligibleModel as exc:
            self.decisions.record(decision, status="refused")
            if any(c.reasons and c.reasons[-1].startswith("estimated max cost") for c in decision.candidates):
                raise BudgetExceeded(
                    f"the remaining budget of tenant '{decision.tenant}' / principal '{decision.principal}' "
                    "cannot cover this request on any eligible model; lower max_tokens or raise the budget "
                    "(`maestro budget set`)",
                    decision_id=decision.id,
                ) from exc
            raise
        plan = [chosen, *decision.fallbacks]
        costs = {m: decision.candidate(m).est_cost_usd for m in plan}
        try:
            reservation = self._reserve(decision, max(costs.values()))
        except BudgetExceeded:
            if len(plan) == 1:
                self.decisions.record(decision, status="refused")
                raise
            plan = [m for m in plan if costs[m] <= costs[chosen]]
            try:
                reservation = self._reserve(decision, costs[chosen])
            except BudgetExceeded:
                self.decisions.record(decision, status="refused")
                raise
        return plan, reservation

    def _reserve(self, decision: Decision, usd: float) -> Reservation:
        reservation = self.budgets.reserve(
            tenant=decision.tenant,
            principal=decision.principal,
            amount_nano=to_nano(usd),
            decision_id=decision.id,
        )
        self._budget_view.adjust(decision.tenant, decision.principal, -reservation.amount_nano)
        return reservation

    def _call(
        self, request: RouteRequest, decision: Decision, model: str, left: float, privacy: PrivacyPlan
    ) -> ModelCall:
        deployment = self.catalog.get(model)
        return ModelCall(
            deployment=deployment,
            messages=privacy.messages_for(request, deployment.pii_allowed),
            max_tokens=decision.candidate(model).max_tokens,
            timeout_s=left,
            temperature=request.temperature,
            response_format=request.response_format,
            tools=request.tools,
        )

    def _settle(
        self,
        reservation: Reservation,
        decision: Decision,
        call: ModelCall,
        completion: Completion,
        attempts: list[dict[str, Any]],
        started: float,
        privacy: PrivacyPlan,
    ) -> RoutedCompletion:
        estimated = completion.usage is None
        usage = completion.usage or Usage(
            prompt_tokens=decision.prompt_tokens_est,
            completion_tokens=_estimate_output_tokens(completion.text),
        )
        cost_nano = to_nano(call.deployment.cost_usd(usage.prompt_tokens, usage.completion_tokens))
        outcome = Outcome(
            status="succeeded",
            model_used=call.deployment.name,
            attempts=attempts,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_nano=cost_nano,
            usage_estimated=estimated,
            latency_ms=_ms(started),
            pii=privacy.record(),
        )
        settlement = Settlement(reservation=reservation, decision=decision, outcome=outcome)
        events: list[BudgetEvent] = []
        if self._writer is not None:
            self._writer.submit(settlement)  # written in a batch, off the caller's path
        else:
            events = write_settlements(self.budgets, self.decisions, [settlement])
        self._budget_view.adjust(decision.tenant, decision.principal, reservation.amount_nano - cost_nano)
        self._observe(decision, outcome)
        return RoutedCompletion(
            text=completion.text,
            model=call.deployment.name,
            decision=decision,
            usage=usage,
            cost_usd=from_nano(cost_nano),
            usage_estimated=estimated,
            finish_reason=completion.finish_reason,
            tool_calls=completion.tool_calls,
            attempts=attempts,
            budget_events=events,
        )

    def _settle_partial(
        self, reservation: Reservation, decision: Decision, model: str, texts: list[str]
    ) -> None:
        deployment = self.catalog.get(model)
        cost = deployment.cost_usd(decision.prompt_tokens_est, _estimate_output_tokens("".join(texts)))
        self.budgets.settle(reservation, actual_nano=to_nano(cost), estimated=True)

    def _fail(
        self,
        reservation: Reservation,
        decision: Decision,
        attempts: list[dict[str, Any]],
        started: float,
        error: MaestroError | None,
        privacy: PrivacyPlan,
    ) -> None:
        if error is None or (isinstance(error, ModelCallFailed) and error.retryable and len(attempts) > 1):
            summary = "; ".join(f"{a['model']}: {a.get('error', a.get('reason'))}" for a in attempts)
            error = ModelUnavailable(
                f"all {len(attempts)} model(s) failed for task '{decision.task}': {summary}",
                attempts=attempts,
            )
        error.details.setdefault("decision_id", decision.id)
        outcome = Outcome(
            status="failed",
            model_used=None,
            attempts=attempts,
            latency_ms=_ms(started),
            error_code=error.code,
            pii=privacy.record(),
        )
        with self.budgets.engine.begin() as conn:
            self.budgets.release(reservation, conn=conn)  # a no-op when a partial stream was settled
            self.decisions.record(decision, status="failed", outcome=outcome, conn=conn)
        self._budget_view.adjust(decision.tenant, decision.principal, reservation.amount_nano)
        self._observe(decision, outcome)
        raise error

    def flush(self) -> None:
        """Wait until every finished call's settlement, decision and ledger entry is written."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and stop background writing (the CLI and the server call this on the way out)."""
        if self._writer is not None:
            self._writer.close()

    def _observe(self, decision: Decision, outcome: Outcome) -> None:
        if self._observer is not None:
            self._observer(decision, outcome)


def _timed_out(call: ModelCall) -> ModelUnavailable:
    return ModelUnavailable(
        f"'{call.deployment.name}' did not answer within {call.timeout_s:.1f}s",
        model=call.deployment.name,
        provider=call.deployment.provider,
    )


def _estimate_output_tokens(text: str) -> int:
    """Conservative: one token per 3 bytes (real tokenizers average about 4), at least 1."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 3))


def _attempt_record(model: str, exc: ModelCallFailed, started: float) -> dict[str, Any]:
    return {
        "model": model,
        "status": "error",
        "error": exc.code,
        "status_code": exc.status_code,
        "message": exc.message[:300],
        "ms": _ms(started),
    }


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)

"""The routing decision: which deployment serves a request, which fall back, and why.

A pure function of the request, the catalog, the weights and a snapshot of the world (remaining budget,
cooldowns, which keys are set). It makes no I/O so it stays well under a millisecond.

1. Filter: every deployment is checked against the tenant's allow-list, the request's data class vs the
   deployment's clearance, credentials, cooldown, context window and output limit, required features
   (JSON schema, tools) and the remaining budget. Each failed check is a reason.
2. Choose: the cheapest eligible deployment whose predicted quality meets the task class's floor; if
   the task class has a cost ceiling, the best quality within it; if no deployment meets the floor, the
   best predicted quality. The predicted quality is the weights' estimate for the task class, or the
   prompt router's P(success) for this very prompt when the service passed one
   (``RouteContext.prompt_quality``). An override (scope ``router:override`` and a reason) replaces the
   choice but never the filter.
3. Fall back: the chosen deployment's catalog fallbacks that are eligible, then the other eligible
   deployments in rank order, up to ``max_fallbacks``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maestro.core.authority import Authority
from maestro.core.errors import InvalidRequest, NoEligibleModel, PolicyDenied
from maestro.core.ids import new_id
from maestro.router.catalog import Catalog
from maestro.router.types import DataClass, Deployment, Message
from maestro.router.weights import TASK_CLASSES, Weights

POLICY_REVISION = "route-v1"
OVERRIDE_SCOPE = "router:override"
EVAL_PIN_SCOPE = "eval:run"  # an authority pinned to a model by the eval harness (``Authority.pinned_model``)


@dataclass(frozen=True)
class RouteRequest:
    """What a caller wants routed. ``model`` None or "auto" lets the router choose."""

    task: str
    messages: list[Message]
    tenant: str
    principal: str
    scopes: frozenset[str] = frozenset()
    max_tokens: int | None = None
    data_class: DataClass = "public"
    requires_json: bool = False
    requires_tools: bool = False
    model: str | None = None
    override_reason: str | None = None
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    clearance: DataClass = "internal"  # what the caller may see: "pii" gets pseudonymised values restored

    @classmethod
    def for_authority(
        cls, authority: Authority, *, task: str, messages: list[Message], **kw: Any
    ) -> RouteRequest:
        """A request on behalf of a run's authority (tenant, principal, scopes, clearance from it).

        An authority pinned to a model (the eval harness pins each run to the model under test) routes
        every request to it as an override, unless the caller names a model itself."""
        scopes = authority.scopes
        if authority.pinned_model and "model" not in kw:
            kw.update(
                model=authority.pinned_model,
                override_reason=f"pinned to {authority.pinned_model} by {authority.principal.name}",
            )
            if EVAL_PIN_SCOPE in scopes:  # the harness measures a model: a pin, not a user's override
                scopes = scopes | {OVERRIDE_SCOPE}
        return cls(
            task=task,
            messages=messages,
            tenant=authority.tenant,
            principal=authority.principal.name,
            scopes=scopes,
            clearance=authority.clearance,
            **kw,
        )

    @property
    def is_override(self) -> bool:
        return self.model not in (None, "", "auto")


@dataclass(frozen=True)
class RouteContext:
    """The state of the world the decision sees; built by the service just before deciding."""

    remaining_budget_usd: float | None = None
    cooling_down: Mapping[str, float] = field(default_factory=dict)  # model -> seconds left
    environ: Mapping[str, str] | None = None
    default_max_tokens: int = 512
    max_fallbacks: int = 3
    prompt_quality: Mapping[str, float] = field(default_factory=dict)  # model -> P(success), this prompt
    prompt_router: str | None = None  # version of the prompt router that predicted ``prompt_quality``


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    eligible: bool
    reasons: tuple[str, ...]
    predicted_quality: float
    est_cost_usd: float
    meets_floor: bool
    max_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "eligible": self.eligible,
            "reasons": list(self.reasons),
            "predicted_quality": round(self.predicted_quality, 6),
            "est_cost_usd": round(self.est_cost_usd, 12),
        }


@dataclass(frozen=True)
class Decision:
    """One routing choice, as persisted and shown by ``maestro route explain``."""

    id: str
    task: str
    tenant: str
    principal: str
    chosen: str | None
    fallbacks: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    policy_version: str
    weights_version: str
    override: dict[str, str] | None
    prompt_sha256: str
    prompt_tokens_est: int
    max_tokens: int

    def candidate(self, model: str) -> Candidate:
        return next(c for c in self.candidates if c.model == model)

    def explain(self) -> dict[str, Any]:
        """The ``route explain --json`` shape from DESIGN.md."""
        return {
            "decision_id": self.id,
            "task": self.task,
            "chosen": self.chosen,
            "fallbacks": list(self.fallbacks),
            "candidates": [c.to_dict() for c in self.candidates],
            "policy_version": self.policy_version,
            "weights_version": self.weights_version,
        }


def estimate_tokens(messages: list[Message]) -> int:
    """A conservative token count: 3 bytes of UTF-8 per token plus 4 per message for the template."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            text = content
        elif content is None:
            text = ""
        else:
            text = json.dumps(content, ensure_ascii=False)
        total += math.ceil(len(text.encode("utf-8")) / 3) + 4
    return total


def prompt_digest(messages: list[Message]) -> str:
    """SHA-256 of the messages: decisions record this, never the prompt itself."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def decide(request: RouteRequest, catalog: Catalog, weights: Weights, context: RouteContext) -> Decision:
    """Choose a deployment for ``request``. Raises InvalidRequest/PolicyDenied for a bad override."""
    if request.task not in TASK_CLASSES or not weights.knows(request.task):
        raise InvalidRequest(
            f"unknown task class '{request.task}': use one of {', '.join(TASK_CLASSES)}", task=request.task
        )
    override = _check_override(request, catalog)
    prompt_tokens = estimate_tokens(request.messages)
    floor = weights.floor(request.task)
    candidates = tuple(
        _assess(d, request, catalog, weights, context, prompt_tokens, floor) for d in catalog.all()
    )
    eligible = [c for c in candidates if c.eligible]
    if override is not None:
        chosen = next((c for c in eligible if c.model == request.model), None)
        fallbacks: tuple[str, ...] = ()
    else:
        ranked = _rank(eligible, weights.cost_ceilings.get(request.task))
        chosen = ranked[0] if ranked else None
        fallbacks = _fallbacks(chosen, ranked, catalog, context.max_fallbacks)
    return Decision(
        id=new_id("dec"),
        task=request.task,
        tenant=request.tenant,
        principal=request.principal,
        chosen=chosen.model if chosen else None,
        fallbacks=fallbacks,
        candidates=candidates,
        policy_version=f"{POLICY_REVISION}+{catalog.version}",
        weights_version=weights.version,
        override=override,
        prompt_sha256=prompt_digest(request.messages),
        prompt_tokens_est=prompt_tokens,
        max_tokens=request.max_tokens or context.default_max_tokens,
    )


def require_chosen(decision: Decision) -> str:
    """The chosen model, or NoEligibleModel explaining why every candidate was filtered out."""
    if decision.chosen is not None:
        return decision.chosen
    if decision.override is not None:
        target = decision.override["model"]
        why = "; ".join(decision.candidate(target).reasons)
        raise NoEligibleModel(
            f"the requested model '{target}' cannot serve this request: {why}", decision_id=decision.id
        )
    why = "; ".join(f"{c.model}: {', '.join(c.reasons)}" for c in decision.candidates)
    raise NoEligibleModel(
        f"no model can serve task '{decision.task}' for tenant '{decision.tenant}': {why}",
        decision_id=decision.id,
    )


def _check_override(request: RouteRequest, catalog: Catalog) -> dict[str, str] | None:
    if not request.is_override:
        return None
    assert request.model is not None
    catalog.get(request.model)  # UnknownModel for a name not in the catalog
    if OVERRIDE_SCOPE not in request.scopes:
        raise PolicyDenied(
            f"choosing a model ('{request.model}') needs the '{OVERRIDE_SCOPE}' scope, which principal "
            f"'{request.principal}' does not have; use model 'auto' or ask an admin for the scope",
            scope=OVERRIDE_SCOPE,
        )
    reason = (request.override_reason or "").strip()
    if not reason:
        raise InvalidRequest(
            f"a model override ('{request.model}') needs a reason (CLI: --reason, API: override_reason)"
        )
    return {"model": request.model, "reason": reason[:500], "by": request.principal}


def _assess(
    deployment: Deployment,
    request: RouteRequest,
    catalog: Catalog,
    weights: Weights,
    context: RouteContext,
    prompt_tokens: int,
    floor: float,
) -> Candidate:
    max_tokens = request.max_tokens or min(context.default_max_tokens, deployment.max_output_tokens)
    cost = deployment.cost_usd(prompt_tokens, max_tokens)
    predicted = context.prompt_quality.get(deployment.name)
    quality = predicted if predicted is not None else weights.estimate(request.task, deployment.name).quality
    blockers = _ineligibility(deployment, request, catalog, context, prompt_tokens, max_tokens, cost)
    meets = quality >= floor
    source = f" (prompt router {context.prompt_router})" if predicted is not None else ""
    verdict = f"quality {quality:.2f}{source} {'>=' if meets else '<'} floor {floor:.2f}"
    return Candidate(
        model=deployment.name,
        eligible=not blockers,
        reasons=tuple(blockers) if blockers else (verdict,),
        predicted_quality=quality,
        est_cost_usd=cost,
        meets_floor=meets,
        max_tokens=max_tokens,
    )


def _ineligibility(
    d: Deployment,
    request: RouteRequest,
    catalog: Catalog,
    context: RouteContext,
    prompt_tokens: int,
    max_tokens: int,
    cost: float,
) -> list[str]:
    reasons = []
    if not catalog.tenant_allows(request.tenant, d.name):
        reasons.append(f"not allowed for tenant '{request.tenant}'")
    if request.data_class == "pii" and not d.pii_allowed:
        reasons.append("not cleared for PII (pii_allowed: false)")
    missing = Catalog.credentials_missing(d, context.environ)
    if missing:
        reasons.append(f"no credentials: {missing} is not set")
    cooling = context.cooling_down.get(d.name)
    if cooling:
        reasons.append(f"cooling down for {cooling:.0f}s after failures")
    if max_tokens > d.max_output_tokens:
        reasons.append(f"max_tokens {max_tokens} exceeds the model's output limit {d.max_output_tokens}")
    if prompt_tokens + max_tokens > d.context_window:
        reasons.append(
            f"~{prompt_tokens} prompt tokens + {max_tokens} max_tokens exceed the context window "
            f"{d.context_window}"
        )
    if request.requires_json and not d.supports_json_schema:
        reasons.append("no JSON-schema output")
    if request.requires_tools and not d.supports_tools:
        reasons.append("no tool calling")
    if context.remaining_budget_usd is not None and cost > context.remaining_budget_usd:
        reasons.append(
            f"estimated max cost ${cost:.6f} exceeds the remaining budget ${context.remaining_budget_usd:.6f}"
        )
    return reasons


def _rank(eligible: list[Candidate], ceiling: float | None) -> list[Candidate]:
    if ceiling is not None:
        within = sorted(
            (c for c in eligible if c.est_cost_usd <= ceiling),
            key=lambda c: (-c.predicted_quality, c.est_cost_usd, c.model),
        )
        above = sorted(
            (c for c in eligible if c.est_cost_usd > ceiling), key=lambda c: (c.est_cost_usd, c.model)
        )
        return within + above
    good = sorted(
        (c for c in eligible if c.meets_floor), key=lambda c: (c.est_cost_usd, -c.predicted_quality, c.model)
    )
    weak = sorted(
        (c for c in eligible if not c.meets_floor),
        key=lambda c: (-c.predicted_quality, c.est_cost_usd, c.model),
    )
    return good + weak


def _fallbacks(
    chosen: Candidate | None, ranked: list[Candidate], catalog: Catalog, limit: int
) -> tuple[str, ...]:
    if chosen is None or limit == 0:
        return ()
    eligible = {c.model for c in ranked}
    order: list[str] = [m for m in catalog.get(chosen.model).fallbacks if m in eligible]
    order += [c.model for c in ranked if c.model not in order]
    return tuple(m for m in order if m != chosen.model)[:limit]

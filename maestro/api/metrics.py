"""Prometheus metrics, one registry per app (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from maestro.core.schema import from_nano
from maestro.router.decisions import Outcome
from maestro.router.policy import Decision


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    http_requests: Counter
    http_seconds: Histogram
    model_calls: Counter
    model_cost: Counter
    model_tokens: Counter

    def observe_outcome(self, decision: Decision, outcome: Outcome) -> None:
        """Router observer: count each routed call, its cost and its tokens."""
        model = outcome.model_used or decision.chosen or "none"
        self.model_calls.labels(model=model, task=decision.task, status=outcome.status).inc()
        if outcome.cost_nano:
            self.model_cost.labels(model=model).inc(from_nano(outcome.cost_nano))
        if outcome.prompt_tokens:
            self.model_tokens.labels(model=model, kind="prompt").inc(outcome.prompt_tokens)
        if outcome.completion_tokens:
            self.model_tokens.labels(model=model, kind="completion").inc(outcome.completion_tokens)


def create_metrics() -> Metrics:
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        http_requests=Counter(
            "maestro_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        ),
        http_seconds=Histogram(
            "maestro_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
        ),
        model_calls=Counter(
            "maestro_model_calls", "Routed model calls", ["model", "task", "status"], registry=registry
        ),
        model_cost=Counter("maestro_model_cost_usd", "Model spend in USD", ["model"], registry=registry),
        model_tokens=Counter("maestro_model_tokens", "Model tokens", ["model", "kind"], registry=registry),
    )

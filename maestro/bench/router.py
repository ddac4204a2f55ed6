"""``maestro bench router``: Maestro's routing overhead against a bare ``litellm.Router`` call.

Both sides call the same instant fake deployment (LiteLLM's ``mock_response``: no network, no model), so
the difference is what Maestro adds per request: validation, the decision, the atomic budget
reservation and settlement, the persisted decision record and its signed ledger entry (on an isolated
SQLite state DB). Rounds
alternate between the two sides so drift on a busy machine hits both. Also reports the decision alone
and the local model's generation speed.

**A configured prompt router** (``MAESTRO_PROMPT_ROUTER_PATH``). The measured router is built on the
bench's own catalog (one fake deployment) and weights, which the configured prompt router was not fitted
for, so the figures above are always **without** a prompt router (``prompt_router_configured`` says
whether one was set). Beside them, when one is set, the bench loads and checks it as a server would
(against the real catalog and the configured embedder, ``MAESTRO_EMBEDDER``) and measures what it adds
to a decision: a second router on the bench catalog whose prompt router has the configured file's
predictors for one task class it covers (``chat`` if it does) under the fake deployment's name, same
embedder, same embedded characters. ``decision_with_prompt_router_p50/p95_ms`` time its ``decide``
(embedding the prompt, the predictors and the decision; the embedding model's load is a warm-up call,
not timed). A file that does not load stops the bench with its error, as it stops ``maestro serve``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from maestro.bench.report import BenchReport, percentile
from maestro.core.ledger import Ledger, load_signing_key
from maestro.core.settings import Settings
from maestro.router.factory import (
    build_router,
    load_configured_prompt_router,
    load_routing_config,
    open_state_db,
)
from maestro.router.policy import RouteRequest
from maestro.router.prompt_router import PromptEmbedder, PromptRouter
from maestro.router.service import ModelRouter

BENCH_DEPLOYMENT = "bench-fake"

BENCH_CATALOG = """
version: 1
deployments:
  - name: bench-fake
    model: openai/bench-fake
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.00000015
    output_cost_per_token: 0.0000006
    context_window: 128000
    max_output_tokens: 4096
    params: {mock_response: "Hello from the instant fake deployment."}
"""
BENCH_WEIGHTS = """
version: bench
task_classes:
  chat: {floor: 0.1, models: {bench-fake: {quality: 0.9, samples: 1, interval: [0.8, 0.95]}}}
"""
MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]


def bench_router(settings: Settings, *, quick: bool = False) -> BenchReport:
    """Run the benchmark in an isolated data dir; ``quick`` uses fewer iterations."""
    rounds = 60 if quick else 400
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)  # as `maestro serve` runs
    try:
        return _run(settings, rounds=rounds, quick=quick)
    finally:
        sys.setswitchinterval(previous_interval)


def _run(settings: Settings, *, rounds: int, quick: bool) -> BenchReport:
    embedder = configured_prompt_embedder(settings)
    configured: PromptRouter | None = None
    if embedder is not None:  # checked first, as a server checks it: a bad file stops the bench at once
        catalog, _ = load_routing_config(settings)
        configured = load_configured_prompt_router(settings, catalog, embedder)
    with tempfile.TemporaryDirectory(prefix="maestro-bench-") as tmp:
        root = Path(tmp)
        (root / "catalog.yaml").write_text(BENCH_CATALOG)
        (root / "weights.yaml").write_text(BENCH_WEIGHTS)
        isolated = settings.model_copy(
            update={
                "data_dir": root / "var",
                "database_url": None,
                "catalog_path": root / "catalog.yaml",
                "weights_path": root / "weights.yaml",
                "tenant_budget_usd": 1_000_000.0,
                "principal_budget_usd": 1_000_000.0,
                "prompt_router_path": None,  # fitted for another catalog: measured beside, not in, this one
            }
        )
        engine = open_state_db(isolated)
        ledger = Ledger(engine, load_signing_key(isolated))  # the production path: every decision is evidence
        router = build_router(isolated, engine=engine, environ={}, ledger=ledger)
        report = BenchReport("router")
        report.metrics["gil_switch_interval_ms"] = settings.gil_switch_interval_ms
        report.metrics["prompt_router_configured"] = float(settings.prompt_router_path is not None)
        try:
            _decision(router, report, rounds * 5)
            asyncio.run(_end_to_end(router, report, rounds))
            if embedder is not None and configured is not None:
                _decision_with_prompt_router(configured, embedder, isolated, engine, ledger, report, rounds)
        finally:
            router.close()
            engine.dispose()
        _local_model(settings, report, max_tokens=32 if quick else 128)
    return report


def configured_prompt_embedder(settings: Settings) -> PromptEmbedder | None:
    """The embedder a server gives the prompt router (``maestro.api.container`` builds the same one), or
    None when ``MAESTRO_PROMPT_ROUTER_PATH`` is unset. Uncached: prompts are never stored."""
    if settings.prompt_router_path is None:
        return None
    from maestro.retrieval.embeddings import HashingEmbedder, MiniLMEmbedder

    return HashingEmbedder() if settings.embedder == "hashing" else MiniLMEmbedder()


def _decision_with_prompt_router(
    configured: PromptRouter,
    embedder: PromptEmbedder,
    isolated: Settings,
    engine: Any,
    ledger: Ledger,
    report: BenchReport,
    rounds: int,
) -> None:
    """``decide`` with the configured prompt router's predictors (re-keyed to the fake deployment)."""
    covered = [t for t in configured.task_classes if configured.covers(t)]
    if not covered:
        report.metrics["prompt_router_tasks"] = 0.0
        return
    task = "chat" if "chat" in covered else covered[0]
    predictor = next(iter(configured.task_classes[task].values()))
    path = Path(isolated.data_dir) / "prompt-router.json"
    PromptRouter(
        version=configured.version,
        embedder=configured.embedder,
        dim=configured.dim,
        embed_chars=configured.embed_chars,
        task_classes={"chat": {BENCH_DEPLOYMENT: predictor}},
    ).write(path)
    scored = build_router(
        isolated.model_copy(update={"prompt_router_path": path}),
        engine=engine,
        environ={},
        ledger=ledger,
        prompt_embedder=embedder,
    )
    try:
        request = _request()
        decision = scored.decide(request)  # loads the embedding model: a warm-up, not timed
        if not any(
            f"(prompt router {configured.version})" in r for r in decision.candidate(BENCH_DEPLOYMENT).reasons
        ):
            raise RuntimeError("the bench's prompt router did not score the request")
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            scored.decide(request)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        scored.close()
    report.metrics["prompt_router_tasks"] = float(len(covered))
    report.metrics["decision_with_prompt_router_p50_ms"] = percentile(samples, 50)
    report.metrics["decision_with_prompt_router_p95_ms"] = percentile(samples, 95)


def _request() -> RouteRequest:
    return RouteRequest(task="chat", messages=MESSAGES, tenant="bench", principal="bench", max_tokens=64)


def _decision(router: ModelRouter, report: BenchReport, n: int) -> None:
    request = _request()
    for _ in range(50):
        router.decide(request)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        router.decide(request)
        samples.append((time.perf_counter() - started) * 1000)
    report.metrics["decision_p50_ms"] = percentile(samples, 50)
    report.metrics["decision_p95_ms"] = percentile(samples, 95)
    report.target("decision_p95_ms", report.metrics["decision_p95_ms"], at_most=1.0)


async def _end_to_end(router: ModelRouter, report: BenchReport, rounds: int) -> None:
    from maestro.router._litellm import load_litellm

    litellm = load_litellm()
    deployment = router.catalog.get(BENCH_DEPLOYMENT)
    bare = litellm.Router(
        model_list=[
            {
                "model_name": deployment.name,
                "litellm_params": {
                    "model": deployment.model,
                    "api_base": deployment.api_base,
                    **dict(deployment.params),
                },
            }
        ],
        num_retries=0,
    )
    request = _request()

    async def maestro_call() -> Any:
        return await router.complete(request)

    async def bare_call() -> Any:
        return await bare.acompletion(model=deployment.name, messages=MESSAGES, max_tokens=64)

    for _ in range(20):  # warm up both paths (imports, connections, caches)
        await maestro_call()
        await bare_call()
    ours: list[float] = []
    theirs: list[float] = []
    for index in range(rounds):
        order = (maestro_call, bare_call) if index % 2 == 0 else (bare_call, maestro_call)
        for call in order:
            started = time.perf_counter()
            await call()
            elapsed = (time.perf_counter() - started) * 1000
            (ours if call is maestro_call else theirs).append(elapsed)
    report.metrics["e2e_p50_ms"] = percentile(ours, 50)
    report.metrics["e2e_p95_ms"] = percentile(ours, 95)
    report.baseline["litellm_router_p50_ms"] = percentile(theirs, 50)
    report.baseline["litellm_router_p95_ms"] = percentile(theirs, 95)
    ratio = report.metrics["e2e_p50_ms"] / report.baseline["litellm_router_p50_ms"]
    report.metrics["e2e_ratio_p50"] = ratio
    report.metrics["e2e_ratio_p95"] = report.metrics["e2e_p95_ms"] / report.baseline["litellm_router_p95_ms"]
    report.metrics["overhead_p50_ms"] = (
        report.metrics["e2e_p50_ms"] - report.baseline["litellm_router_p50_ms"]
    )
    report.target("e2e_ratio_p50", ratio, at_most=1.15)


def _local_model(settings: Settings, report: BenchReport, *, max_tokens: int) -> None:
    from maestro.router.local_model import measure_tokens_per_second, register_local_provider
    from maestro.router.types import LocalModelOptions

    handler = register_local_provider(
        LocalModelOptions(
            model_path=str(settings.local_model_path) if settings.local_model_path else None,
            n_ctx=settings.local_context,
            n_threads=settings.local_threads,
        )
    )
    speed = measure_tokens_per_second(handler, max_tokens=max_tokens)
    for key, value in speed.items():
        report.metrics[f"local_{key}"] = float(value)

"""``maestro bench router|codegen|cypher`` with ``MAESTRO_PROMPT_ROUTER_PATH`` set.

They used to refuse to start (their routers were built without an embedder). Now codegen and cypher
route as a server routes, through the configured prompt router; the router bench measures its own
catalog without it and the configured file's cost to a decision beside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maestro.bench.codegen import bench_codegen, load_problems, oracle_client
from maestro.core.settings import Settings
from maestro.retrieval.embeddings import HashingEmbedder
from maestro.router.policy import RouteRequest
from maestro.router.prompt_router import ConstantPredictor, PromptRouter
from maestro.router.testing import FunctionLLM

MAESTRO = str(Path(sys.executable).with_name("maestro"))
LOCAL = "local/smollm2-135m"
MINI = "gpt-4o-mini"


def write_router(path: Path, *, task: str, version: str = "bench-pr-1") -> Path:
    """The shipped catalog's local model is sure to succeed, gpt-4o-mini is not (hashing embedder)."""
    embedder = HashingEmbedder()
    PromptRouter(
        version=version,
        embedder=embedder.name,
        dim=embedder.dim,
        task_classes={task: {LOCAL: ConstantPredictor(0.99), MINI: ConstantPredictor(0.2)}},
    ).write(path)
    return path


@pytest.fixture
def with_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """gpt-4o-mini is eligible (credentials set); the clients below are scripted, nothing is sent."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")


def test_codegen_auto_is_routed_by_the_configured_prompt_router(
    settings: Settings, tmp_path: Path, with_openai_key: None
) -> None:
    del with_openai_key
    problems = load_problems()
    plain_client = oracle_client(problems)
    plain = bench_codegen(settings, model="auto", limit=2, client=plain_client, progress=False)
    assert isinstance(plain_client, FunctionLLM)
    # the weights: local 0.05 < floor 0.70 <= gpt-4o-mini 0.70, the cheapest that meets it
    assert {call.deployment.name for call in plain_client.history} == {MINI}
    assert plain.metrics["prompt_router_configured"] == 0.0

    configured = settings.model_copy(
        update={
            "embedder": "hashing",
            "prompt_router_path": write_router(tmp_path / "pr.json", task="codegen.edit"),
        }
    )
    client = oracle_client(problems)
    report = bench_codegen(configured, model="auto", limit=2, client=client, progress=False)
    assert isinstance(client, FunctionLLM)
    assert {call.deployment.name for call in client.history} == {LOCAL}  # P 0.99 >= floor: the cheapest
    assert report.metrics["pass_at_1"] == 1.0
    assert report.metrics["prompt_router_configured"] == 1.0


def test_cypher_bench_builds_its_runner_with_the_configured_prompt_router(
    settings: Settings, tmp_path: Path, with_openai_key: None
) -> None:
    del with_openai_key
    from maestro.bench.cypher import _build_runner

    configured = settings.model_copy(
        update={"embedder": "hashing", "prompt_router_path": write_router(tmp_path / "pr.json", task="chat")}
    )
    runner, close = _build_runner(configured, FunctionLLM(lambda messages, call: "ok"))
    try:
        request = RouteRequest(
            task="chat", messages=[{"role": "user", "content": "hello"}], tenant="t", principal="p"
        )
        decision = asyncio.run(runner.router.complete(request)).decision
    finally:
        close()
    assert decision.chosen == LOCAL
    assert "(prompt router bench-pr-1)" in decision.candidate(LOCAL).reasons[0]


def _bench_router_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    environment.update(MAESTRO_DATA_DIR=str(tmp_path / "var"), MAESTRO_EMBEDDER="hashing", **env)
    return subprocess.run(
        [MAESTRO, "bench", "router", "--quick", "--json"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_the_router_bench_measures_without_the_prompt_router_and_its_cost_beside(tmp_path: Path) -> None:
    done = _bench_router_cli(
        tmp_path, MAESTRO_PROMPT_ROUTER_PATH=str(write_router(tmp_path / "pr.json", task="chat"))
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["prompt_router_configured"] == 1.0 and metrics["prompt_router_tasks"] == 1.0
    assert 0 < metrics["decision_p50_ms"] <= metrics["decision_p95_ms"]  # the bench catalog, no prompt router
    assert 0 < metrics["decision_with_prompt_router_p50_ms"] <= metrics["decision_with_prompt_router_p95_ms"]
    assert "e2e_ratio_p50" in metrics

    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "maestro.prompt-router"')
    refused = _bench_router_cli(tmp_path, MAESTRO_PROMPT_ROUTER_PATH=str(broken))
    assert refused.returncode != 0 and "not valid JSON" in refused.stderr  # as `maestro serve` refuses it

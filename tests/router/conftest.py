"""Router test fixtures: a small priced catalog, weights, and a router on a real state DB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from maestro.core.settings import Settings
from maestro.router.factory import build_router
from maestro.router.service import ModelRouter
from maestro.router.types import LLMClient

TEST_CATALOG = """
version: 1
deployments:
  - name: cheap
    model: openai/cheap-model
    api_key_env: TEST_KEY
    input_cost_per_token: 0.0000001
    output_cost_per_token: 0.0000004
    context_window: 16000
    max_output_tokens: 4000
    supports_tools: true
    supports_json_schema: true
    fallbacks: [mid]
  - name: mid
    model: anthropic/mid-model
    api_key_env: TEST_KEY
    input_cost_per_token: 0.000001
    output_cost_per_token: 0.000004
    context_window: 100000
    max_output_tokens: 8000
    supports_tools: true
    supports_json_schema: true
    fallbacks: [pricey]
  - name: pricey
    model: openai/pricey-model
    api_key_env: TEST_KEY
    input_cost_per_token: 0.00001
    output_cost_per_token: 0.00003
    context_window: 200000
    max_output_tokens: 8000
    supports_tools: true
    supports_json_schema: true
  - name: onprem
    model: openai/onprem-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.0000002
    output_cost_per_token: 0.0000002
    context_window: 8000
    max_output_tokens: 2000
    supports_tools: false
    supports_json_schema: false
    pii_allowed: true
    region: local
tenants:
  restricted:
    allow: [cheap]
"""

TEST_WEIGHTS = """
version: "test-1"
prior: 0.5
task_classes:
  chat:
    floor: 0.6
    models:
      cheap: {quality: 0.70, samples: 100, interval: [0.60, 0.80]}
      mid: {quality: 0.85, samples: 100, interval: [0.80, 0.90]}
      pricey: {quality: 0.95, samples: 100, interval: [0.90, 0.99]}
      onprem: {quality: 0.40, samples: 100, interval: [0.30, 0.50]}
  codegen.edit:
    floor: 0.8
    models:
      cheap: {quality: 0.50, samples: 100, interval: [0.40, 0.60]}
      mid: {quality: 0.82, samples: 100, interval: [0.75, 0.88]}
      pricey: {quality: 0.93, samples: 100, interval: [0.88, 0.97]}
      onprem: {quality: 0.20, samples: 100, interval: [0.10, 0.30]}
  rag.answer:
    floor: 0.99
    models: {}
  docs.write:
    floor: 0.5
    cost_ceiling_usd: 0.01
    models:
      cheap: {quality: 0.60, samples: 10, interval: [0.50, 0.70]}
      mid: {quality: 0.80, samples: 10, interval: [0.70, 0.90]}
      pricey: {quality: 0.95, samples: 10, interval: [0.90, 0.99]}
"""

ENVIRON = {"TEST_KEY": "sk-test"}


@pytest.fixture
def router_settings(tmp_path: Path) -> Settings:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(TEST_CATALOG)
    weights = tmp_path / "weights.yaml"
    weights.write_text(TEST_WEIGHTS)
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "var",
        catalog_path=catalog,
        weights_path=weights,
        tenant_budget_usd=100.0,
        principal_budget_usd=50.0,
        allowed_fails=2,
        cooldown_s=60,
    )


RouterFactory = Callable[..., ModelRouter]


@pytest.fixture
def make_router(router_settings: Settings, sqlite_engine: Engine) -> RouterFactory:
    """Build a router on the test catalog with the given fake client (SQLite state DB)."""

    def factory(client: LLMClient, *, engine: Engine | None = None, **overrides: object) -> ModelRouter:
        settings = router_settings.model_copy(update=overrides) if overrides else router_settings
        return build_router(settings, engine=engine or sqlite_engine, client=client, environ=ENVIRON)

    return factory

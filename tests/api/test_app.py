"""The FastAPI app: health, readiness, metrics, OpenAPI (in-process, real SQLite state DB)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from maestro.api.main import create_app
from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings
from maestro.router.testing import ScriptedLLM


def test_health_ready_metrics_openapi(settings: Settings) -> None:
    with TestClient(create_app(settings, client=ScriptedLLM())) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["database"] is True and "local/smollm2-135m" in body["models"]
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'maestro_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics.text
        spec = client.get("/openapi.json").json()
        assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_not_ready_without_any_callable_model(settings: Settings, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "version: 1\ndeployments:\n  - name: hosted\n    model: openai/gpt-4o-mini\n"
        "    api_key_env: MAESTRO_TEST_ABSENT_KEY\n"
    )
    weights = tmp_path / "weights.yaml"
    weights.write_text('version: "1"\ntask_classes:\n  chat: {floor: 0.5}\n')
    configured = settings.model_copy(update={"catalog_path": catalog, "weights_path": weights})
    with TestClient(create_app(configured, client=ScriptedLLM())) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["models"] == []


def test_bad_catalog_fails_before_serving(settings: Settings, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("version: 1\ndeployments:\n  - name: a\n    model: openai/a\n")
    with pytest.raises(ConfigurationError, match="no price"):
        create_app(settings.model_copy(update={"catalog_path": catalog}))

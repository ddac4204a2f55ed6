"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from maestro.api.deps import ServicesDep
from maestro.core.db import is_ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready to serve: the state DB answers at the newest schema and a model can be called."""
    catalog = services.router.catalog
    callable_models = [d.name for d in catalog.all() if catalog.credentials_missing(d) is None]
    checks: dict[str, Any] = {
        "database": is_ready(services.engine),
        "models": callable_models,
    }
    ok = bool(checks["database"]) and bool(callable_models)
    return JSONResponse(
        status_code=200 if ok else 503, content={"status": "ready" if ok else "not ready", **checks}
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(services: ServicesDep) -> Response:
    """Prometheus text exposition."""
    assert services.metrics is not None
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

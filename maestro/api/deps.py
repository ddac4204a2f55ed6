"""FastAPI dependencies: the app's services, reached through ``request.app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from maestro.api.metrics import Metrics
from maestro.core.settings import Settings
from maestro.router.service import ModelRouter


@dataclass
class Services:
    """Everything the routes need, built once in the app's lifespan."""

    settings: Settings
    engine: Engine
    router: ModelRouter
    metrics: Metrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

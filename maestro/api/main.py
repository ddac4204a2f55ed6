"""The FastAPI application factory: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from maestro import __version__
from maestro.api.container import build_services
from maestro.api.errors import ERROR_RESPONSES, install_error_handlers
from maestro.api.metrics import create_metrics
from maestro.api.routes import approvals, chat, decisions, evals, health, keys, ledger, rag, runs
from maestro.core.settings import Settings
from maestro.router.factory import load_routing_config
from maestro.router.types import LLMClient


def create_app(settings: Settings, *, client: LLMClient | None = None) -> FastAPI:
    """Build the app. Configuration errors surface here, before the server binds its port."""
    load_routing_config(settings)  # fail fast on a bad catalog or weights file
    metrics = create_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings, client=client, metrics=metrics)
        app.state.services = services
        if settings.broker_url is None:  # in-process runs: continue the ones a dead server left behind
            from maestro.workers.dispatch import InProcessDispatcher

            runs = services.dispatcher(background=True)
            app.state.run_dispatcher = runs
            if isinstance(runs, InProcessDispatcher):
                runs.start()
        stop_schedule = asyncio.Event()
        schedule = None
        if settings.eval_scheduler and settings.broker_url is None:  # with a broker, Celery beat schedules it
            from maestro.api.eval_cycle import start_scheduler

            schedule = start_scheduler(services, settings, stop_schedule)
        try:
            yield
        finally:
            stop_schedule.set()
            if schedule is not None:
                schedule.cancel()  # a cycle in flight stops here; its eval run resumes with --resume
                await asyncio.gather(schedule, return_exceptions=True)
            dispatcher = getattr(app.state, "run_dispatcher", None)  # set by the runs routes on first use
            if dispatcher is not None:
                await dispatcher.aclose()  # background runs finish (or are cut short) before the DB closes
            services.close()  # write what the router still queues, release the vector store

    app = FastAPI(title="Maestro", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    for area in (chat, decisions, evals, keys, ledger, approvals, rag, runs):
        app.include_router(area.router, responses=ERROR_RESPONSES)

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.http_requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.http_seconds.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    return app

"""The weekly eval cycle wired to this deployment's services and settings, and its in-process schedule.

``run_cycle`` is what ``maestro eval weekly``, the Celery beat task (``maestro worker --beat``) and the
in-process scheduler of ``maestro serve`` (``MAESTRO_EVAL_SCHEDULER=true``, no broker) all call: the
eval harness's bot principal runs ``MAESTRO_EVAL_SUITE`` on ``MAESTRO_EVAL_MODELS`` (default: every
catalog deployment), writes the report under ``MAESTRO_EVAL_REPORT_DIR`` and proposes the weights.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from maestro.core.settings import Settings

if TYPE_CHECKING:
    from maestro.api.container import Services
    from maestro.evals.runner import Progress
    from maestro.evals.weekly import CycleResult

__all__ = ["report_dir", "run_cycle", "select_models", "start_scheduler"]

logger = logging.getLogger(__name__)


async def run_cycle(
    services: Services,
    settings: Settings,
    tenant: str | None,
    *,
    suite: str | None = None,
    models: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> CycleResult:
    """The weekly cycle with this deployment's settings (the CLI, the in-process schedule and Celery)."""
    from maestro.evals.propose import WeightsTarget
    from maestro.evals.weekly import weekly_cycle

    runner = services.eval_runner(services.eval_authority(tenant))
    return await weekly_cycle(
        runner,
        suite=suite or settings.eval_suite,
        models=select_models(services, settings, models),
        report_dir=report_dir(settings),
        target=WeightsTarget.from_settings(settings),
        pr_tools=services.repo_tools(),
        limit=limit if limit is not None else settings.eval_limit,
        concurrency=settings.eval_concurrency,
        min_samples=settings.eval_min_samples,
        progress=progress,
    )


def select_models(services: Services, settings: Settings, models: str | None) -> list[str]:
    text = models if models is not None else settings.eval_models
    names = [m.strip() for m in text.split(",") if m.strip()]
    return names or [d.name for d in services.router.catalog.all()]


def report_dir(settings: Settings) -> Path:
    return settings.eval_report_dir or settings.data_dir / "reports"


def start_scheduler(services: Services, settings: Settings, stop: asyncio.Event) -> asyncio.Task[None]:
    """The in-process weekly schedule as a background task (ends when ``stop`` is set)."""
    from maestro.evals.store import EvalStore
    from maestro.evals.weekly import run_schedule

    async def cycle() -> object:
        result = await run_cycle(services, settings, None)
        logger.info("weekly eval cycle finished: %s", result.to_dict()["eval_run"]["run"]["id"])
        return result

    return asyncio.create_task(
        run_schedule(
            EvalStore(services.engine),
            settings.default_tenant,
            settings.eval_schedule,
            cycle,
            suite=settings.eval_suite,
            stop=stop,
        ),
        name="maestro-eval-schedule",
    )

"""The weekly cycle and its schedule: run the suite, write the report, propose the weights.

``weekly_cycle`` is one turn of the loop ML ops owns: ``EvalRunner.run`` (every configured model on
the suite), ``build_report`` against the previous run of the suite (written as Markdown and HTML), then
``propose_weights`` - a PR through the PR backend when a weights repository is configured, else the local
weights file - only if some estimate moved beyond its interval. Celery beat calls it weekly
(``maestro worker --beat``; ``workers/app.py``), and so does ``maestro serve`` with
``MAESTRO_EVAL_SCHEDULER=true`` (``run_schedule``: the in-process default). Both read the cron
expression ``MAESTRO_EVAL_SCHEDULE`` and measure "due" from the last finished run's start, so a machine
that was off at the due time runs the cycle when it comes back, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro.core.schedule import due_in, parse_cron
from maestro.evals.propose import Proposal, WeightsTarget, propose_weights
from maestro.evals.report import report_for
from maestro.evals.runner import EvalRunner, Progress, RunSummary
from maestro.evals.store import EvalStore

__all__ = ["CycleResult", "run_schedule", "weekly_cycle"]

logger = logging.getLogger(__name__)


@dataclass
class CycleResult:
    summary: RunSummary
    report_md: Path
    report_html: Path
    proposal: Proposal | None
    regressions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval_run": self.summary.to_dict(),
            "report": {"markdown": str(self.report_md), "html": str(self.report_html)},
            "regressions": list(self.regressions),
            "weights": self.proposal.to_dict() if self.proposal else None,
        }


async def weekly_cycle(
    runner: EvalRunner,
    *,
    suite: str,
    models: Sequence[str],
    report_dir: Path,
    target: WeightsTarget,
    pr_tools: Any = None,
    limit: int | None = None,
    concurrency: int = 2,
    min_samples: int = 10,
    progress: Progress | None = None,
) -> CycleResult:
    env, store = runner.env, runner.store
    tenant = env.authority.tenant
    summary = await runner.run(suite, models, limit=limit, concurrency=concurrency, progress=progress)
    rows = store.results(tenant, summary.run.id)
    report = report_for(store, tenant, summary.run)
    md, page = await asyncio.to_thread(report.write, report_dir)
    proposal = await asyncio.to_thread(
        propose_weights,
        settings=env.settings,
        authority=env.authority,
        catalog=env.router.catalog,
        rows=rows,
        eval_runs=[summary.run.id],
        target=target,
        open_pr=target.repo is not None,
        pr_tools=pr_tools,
        record=runner.record,
        min_samples=min_samples,
    )
    return CycleResult(summary, md, page, proposal, [f"{r.task}/{r.model}" for r in report.regressions])


async def run_schedule(
    store: EvalStore,
    tenant: str,
    expression: str,
    cycle: Callable[[], Awaitable[object]],
    *,
    suite: str,
    stop: asyncio.Event,
    max_sleep_s: float = 3600.0,
) -> None:
    """The in-process scheduler: sleep until the cycle is due, run it, repeat until ``stop`` is set.

    A failing cycle is logged and tried again an hour later (never in a tight loop)."""
    parse_cron(expression)  # refuse a bad expression at start-up
    while not stop.is_set():
        last = store.latest_finished(tenant, suite)
        wait = due_in(expression, last.started_at if last else None).total_seconds()
        if wait <= 0:
            try:
                await cycle()
            except Exception:
                logger.exception("the weekly eval cycle failed; trying again in an hour")
                await _sleep(stop, min(max_sleep_s, 3600.0))
            continue
        await _sleep(stop, min(wait, max_sleep_s))


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.01))
    except TimeoutError:
        pass

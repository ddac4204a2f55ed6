"""Celery tasks: thin adapters that take ids and call the runner (STYLE #12).

``maestro.run.execute(run_id, tenant)`` is the only run task. A new run and a run whose approval was
just decided are both ``queued``; the API/CLI records the decision itself, synchronously (an atomic
grant: a second or concurrent decision is refused there), and only the resume goes through the broker.

Each delivery claims the run (``queued``/``running`` -> ``running``, ``attempts + 1``):

* a delivery for a run that is already waiting or finished does nothing (a duplicate);
* a redelivery for a run left ``running`` by a killed worker continues it from the last checkpoint
  (effects already recorded are not repeated);
* a delivery past ``1 + MAESTRO_MAX_REDELIVERIES`` (the task keeps killing its worker) fails the run
  with ``dead_lettered`` and pushes the task's payload onto the Redis list ``maestro.dead``, so it is
  never retried forever.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maestro.core.clock import utcnow
from maestro.workers.app import DEAD_LETTER_KEY, EXECUTE_TASK, WEEKLY_EVAL_TASK, CeleryApp

if TYPE_CHECKING:
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.core.settings import Settings

__all__ = ["DeadLetters", "WorkerRuntime", "register_tasks"]

logger = logging.getLogger("maestro.workers")

RunnerFactory = Callable[[], "tuple[WorkcellRunner, Callable[[], None]]"]
"""Builds the runner of one worker process, and what closes it (flushes the router, disposes the DB)."""


class DeadLetters:
    """The dead-letter queue: a Redis list of JSON task payloads (newest first)."""

    def __init__(self, redis_url: str, key: str = DEAD_LETTER_KEY) -> None:
        self._url = redis_url
        self.key = key

    def _client(self) -> Any:
        import redis

        return redis.Redis.from_url(self._url, socket_connect_timeout=5, socket_timeout=5)

    def push(self, payload: dict[str, Any]) -> None:
        with self._client() as client:
            client.lpush(self.key, json.dumps(payload, sort_keys=True))

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._client() as client:
            raw = client.lrange(self.key, 0, limit - 1)
        return [json.loads(item) for item in raw]


class WorkerRuntime:
    """What the tasks of one worker process share: the runner (built on first use in each process, so a
    prefork child never inherits its parent's DB connections) and the dead-letter queue."""

    def __init__(self, settings: Settings, runner_factory: RunnerFactory) -> None:
        self.settings = settings
        self._factory = runner_factory
        self._runner: WorkcellRunner | None = None
        self._close: Callable[[], None] | None = None
        self._pid = 0
        self.dead_letters = DeadLetters(str(settings.broker_url))

    def runner(self) -> WorkcellRunner:
        if self._runner is None or self._pid != os.getpid():
            self._runner, self._close = self._factory()
            self._pid = os.getpid()
        return self._runner

    def warm(self, **_: Any) -> None:
        """Build this process's runner now (at pool-process start, outside any task's time limit)."""
        self.runner()

    def close(self, **_: Any) -> None:
        """Close this process's runner (connected to Celery's process/worker shutdown signals)."""
        if self._close is not None and self._pid == os.getpid():
            self._close()
        self._runner, self._close = None, None

    def execute(self, run_id: str, tenant: str, *, task_id: str | None = None) -> dict[str, Any]:
        """One delivery of ``maestro.run.execute``; returns a JSON summary (logged, not stored)."""
        runner = self.runner()
        run = runner.claim(run_id, tenant=tenant, redelivery=True)
        if run is None:
            current = runner.runs.get(run_id, tenant=tenant)
            logger.info("run %s is %s: duplicate delivery ignored", run_id, current.status)
            return {"run_id": run_id, "status": current.status, "skipped": True}
        limit = self.settings.max_redeliveries
        if run.attempts > 1 + limit:
            self.dead_letters.push(
                {
                    "task": EXECUTE_TASK,
                    "task_id": task_id,
                    "args": [run_id, tenant],
                    "run_id": run_id,
                    "tenant": tenant,
                    "workcell": run.workcell,
                    "deliveries": run.attempts,
                    "at": utcnow().isoformat(),
                }
            )
            dead = runner.dead_letter(run, limit=limit)
            logger.error("run %s dead-lettered after %d deliveries", run_id, run.attempts)
            return {"run_id": run_id, "status": dead.status, "dead_lettered": True}
        if run.attempts > 1:
            logger.warning(
                "run %s redelivered (delivery %d): continuing from its checkpoint", run_id, run.attempts
            )
        done = asyncio.run(runner.drive(run))
        return {"run_id": run_id, "status": done.status}


def register_tasks(
    app: CeleryApp,
    runtime: WorkerRuntime,
    *,
    weekly: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Add Maestro's tasks to ``app`` (the worker's app; a dispatcher only sends by name). ``weekly``
    runs one eval cycle (built by the API layer: the workers layer does not import the eval harness)."""
    signals = importlib.import_module("celery.signals")
    signals.worker_process_init.connect(runtime.warm, weak=False)  # prefork: each pool process
    signals.worker_process_shutdown.connect(runtime.close, weak=False)
    signals.worker_shutdown.connect(runtime.close, weak=False)

    def execute(self: Any, run_id: str, tenant: str) -> dict[str, Any]:
        return runtime.execute(run_id, tenant, task_id=self.request.id)

    app.task(name=EXECUTE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(execute)
    if weekly is not None:

        def weekly_eval() -> dict[str, Any]:
            summary = weekly()
            logger.info("weekly eval cycle done: %s", summary.get("eval_run", {}).get("run", {}).get("id"))
            return summary

        # acked early: a cycle is resumable (``maestro eval run --resume``), and redelivering a
        # multi-hour task after the visibility timeout would start it twice
        limit = runtime.settings.eval_task_time_limit_s
        app.task(name=WEEKLY_EVAL_TASK, acks_late=False, time_limit=limit, soft_time_limit=limit * 0.95)(
            weekly_eval
        )

"""The Celery app factory: ``create_celery_app(settings)`` (nothing is built at import time).

The configuration is the one RELIABILITY.md #25-27 asks for: late acknowledgement (a task is acked
when it finishes, so a worker killed mid-task leaves it to be redelivered), ``task_reject_on_worker_lost``
(a pool process killed mid-task requeues its task instead of acking it), one task prefetched per process,
JSON only, hard and soft time limits from ``MAESTRO_TASK_TIME_LIMIT_S``, and the Redis transport's
visibility timeout from ``MAESTRO_BROKER_VISIBILITY_TIMEOUT_S``. The visibility timeout must be longer
than the hard time limit (``check_broker_config``): otherwise Redis hands a task that is still running to
a second worker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from maestro.core.errors import ConfigurationError, MaestroError
from maestro.core.schedule import parse_cron

if TYPE_CHECKING:
    from maestro.core.settings import Settings

CeleryApp = Any
"""A ``celery.Celery`` (Celery ships no type information; it is imported only when an app is built)."""

__all__ = [
    "DEAD_LETTER_KEY",
    "EXECUTE_TASK",
    "RUNS_QUEUE",
    "WEEKLY_EVAL_TASK",
    "BrokerUnavailable",
    "CeleryApp",
    "celery_config",
    "check_broker_config",
    "create_celery_app",
]

RUNS_QUEUE = "maestro.runs"
"""The queue run tasks go to (``maestro worker`` consumes it)."""
DEAD_LETTER_KEY = "maestro.dead"
"""The Redis list that holds the payloads of tasks delivered more than 1 + MAESTRO_MAX_REDELIVERIES times."""
WEEKLY_EVAL_TASK = "maestro.eval.weekly"
"""``maestro.eval.weekly()``: one weekly eval cycle (suite, report, weights proposal); Celery beat sends it
on ``MAESTRO_EVAL_SCHEDULE`` when a worker runs with ``--beat``."""
EXECUTE_TASK = "maestro.run.execute"
"""``maestro.run.execute(run_id, tenant)``: advance a queued run (a new one, or one whose approval was
just decided) until it ends or waits; a redelivery continues a run left ``running`` by a dead worker."""


class BrokerUnavailable(MaestroError):
    """The broker at MAESTRO_BROKER_URL did not take the task (down, unreachable, refused)."""

    code = "broker_unavailable"
    exit_code = 1
    http_status = 503


def check_broker_config(settings: Settings) -> None:
    """Refuse a broker configuration that could run one task twice (RELIABILITY #26)."""
    url = settings.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        raise ConfigurationError(
            f"MAESTRO_BROKER_URL must be a Redis URL (redis://host:port/db), got {_safe(url)!r}: "
            "Maestro's workers rely on the Redis transport's visibility timeout and dead-letter list"
        )
    _check_limits(settings.broker_visibility_timeout_s, settings.task_time_limit_s)


def _check_limits(visibility_s: float, time_limit_s: float) -> None:
    if visibility_s <= time_limit_s:
        raise ConfigurationError(
            f"MAESTRO_BROKER_VISIBILITY_TIMEOUT_S ({visibility_s:g}s) must be greater than "
            f"MAESTRO_TASK_TIME_LIMIT_S ({time_limit_s:g}s): Redis redelivers a task that is still running "
            "once the visibility timeout passes, and it would run twice. Raise the visibility timeout or "
            "lower the task time limit.",
            visibility_timeout_s=visibility_s,
            task_time_limit_s=time_limit_s,
        )


def check_app_limits(app: CeleryApp) -> None:
    """The same check on a built app's effective configuration (run at worker start-up)."""
    options: dict[str, Any] = dict(app.conf.broker_transport_options or {})
    visibility = float(options.get("visibility_timeout", 3600))  # kombu's Redis default
    limit = app.conf.task_time_limit
    if limit is None:
        raise ConfigurationError(
            "the Celery app has no task_time_limit: set MAESTRO_TASK_TIME_LIMIT_S below "
            "MAESTRO_BROKER_VISIBILITY_TIMEOUT_S"
        )
    _check_limits(visibility, float(limit))


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings Maestro runs with (see the module docstring)."""
    limit = settings.task_time_limit_s
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # sweep for tasks whose worker died often enough to redeliver soon after the timeout passes
            "unacked_restore_interval": max(1.0, min(10.0, settings.broker_visibility_timeout_s / 4)),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5.0,
            "socket_timeout": 30.0,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5.0,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_time_limit": limit,
        "task_soft_time_limit": max(limit * 0.9, limit - 60.0),
        "task_ignore_result": True,  # the run's record in the state DB is the result
        "task_default_queue": RUNS_QUEUE,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0.0,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        "worker_hijack_root_logger": False,
        "worker_proc_alive_timeout": 120.0,  # a pool process builds its services before taking tasks
        "worker_send_task_events": False,
        # Celery beat (``maestro worker --beat``): the weekly eval cycle; beat's state file in data_dir
        "beat_schedule": {
            "weekly-eval": {"task": WEEKLY_EVAL_TASK, "schedule": parse_cron(settings.eval_schedule)}
        },
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
        "task_routes": {EXECUTE_TASK: {"queue": RUNS_QUEUE}, WEEKLY_EVAL_TASK: {"queue": RUNS_QUEUE}},
    }


def create_celery_app(settings: Settings) -> CeleryApp:
    """A Celery app for ``settings`` (checked first); tasks are added by ``tasks.register_tasks``."""
    check_broker_config(settings)
    celery = importlib.import_module("celery")
    app = celery.Celery("maestro", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def _safe(url: str) -> str:
    """The URL without its password (for messages)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url

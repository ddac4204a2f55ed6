"""Cron expressions for Maestro's schedules (the weekly eval cycle), as Celery crontabs.

One parser serves both schedulers: Celery beat (``workers/app.py`` puts the crontab in
``beat_schedule``) and the in-process default (``evals/weekly.run_schedule`` asks ``due_in``). Celery is
imported when a schedule is parsed, never at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from maestro.core.clock import utcnow
from maestro.core.errors import ConfigurationError

__all__ = ["due_in", "parse_cron"]


def parse_cron(expression: str, *, setting: str = "MAESTRO_EVAL_SCHEDULE") -> Any:
    """A five-field cron expression (minute hour day-of-month month day-of-week, UTC) as a Celery
    ``crontab``; a bad expression is a ConfigurationError naming ``setting``."""
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigurationError(
            f"{setting} {expression!r} is not a cron expression of five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * 1'"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    crontab = importlib.import_module("celery.schedules").crontab
    try:
        schedule = crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
        schedule.remaining_estimate(utcnow())  # every field is parsed by now
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"{setting} {expression!r}: {exc}") from None
    return schedule


def due_in(expression: str, last_run: datetime | None, *, now: Callable[[], datetime] = utcnow) -> timedelta:
    """How long until a schedule last run at ``last_run`` is due again (<= 0: due now; never run: now)."""
    if last_run is None:
        return timedelta(0)
    schedule = parse_cron(expression)
    schedule.nowfun = now
    remaining: timedelta = schedule.remaining_estimate(last_run)
    return remaining

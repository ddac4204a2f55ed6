"""The weekly eval on Celery beat: the schedule in the app's configuration and the task a worker runs.

The task itself is run through Celery's own call path (``app.tasks[name].apply()``: the task's code in
this process, as a worker would run it) with the cycle callback the worker builds; the full cycle is
tested in tests/evals/test_weekly_cycle.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings
from maestro.workers.app import WEEKLY_EVAL_TASK, create_celery_app
from maestro.workers.tasks import WorkerRuntime, register_tasks


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "var", broker_url="redis://127.0.0.1:6379/15", **kw
    )


def test_beat_sends_the_weekly_eval_on_the_configured_cron(tmp_path: Path) -> None:
    app = create_celery_app(_settings(tmp_path, eval_schedule="30 4 * * 0"))
    entry = app.conf.beat_schedule["weekly-eval"]
    assert entry["task"] == WEEKLY_EVAL_TASK
    schedule = entry["schedule"]
    assert schedule.hour == {4} and schedule.minute == {30} and schedule.day_of_week == {0}
    assert app.conf.beat_schedule_filename == str(tmp_path / "var" / "celerybeat-schedule")
    with pytest.raises(ConfigurationError, match="MAESTRO_EVAL_SCHEDULE"):
        create_celery_app(_settings(tmp_path, eval_schedule="every monday"))


def test_a_worker_runs_the_weekly_task_with_its_own_time_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, eval_task_time_limit_s=7200)
    app = create_celery_app(settings)
    cycles: list[int] = []

    def weekly() -> dict[str, Any]:
        cycles.append(1)
        return {"eval_run": {"run": {"id": "eval_x"}}}

    def no_runner() -> Any:
        raise AssertionError("the weekly task does not build the run runner")

    register_tasks(app, WorkerRuntime(settings, no_runner), weekly=weekly)
    task = app.tasks[WEEKLY_EVAL_TASK]
    assert task.time_limit == 7200 and not task.acks_late
    assert task.apply().get() == {"eval_run": {"run": {"id": "eval_x"}}}
    assert cycles == [1]

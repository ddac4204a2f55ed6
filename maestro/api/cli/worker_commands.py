"""``maestro worker``: a Celery worker that executes workcell runs (needs MAESTRO_BROKER_URL).

Plugins: ``--import MODULE`` (repeatable; or MAESTRO_WORKER_IMPORTS, comma- or space-separated) imports
modules at start-up, before the first task. A module can register workcells (``register(Workcell)``) and
may define two hooks, each called once per worker process:

* ``llm_client(settings) -> LLMClient``: the model client the worker's router uses (tests pass a
  ``FunctionLLM`` from ``maestro.router.testing`` this way; a ``ScriptedLLM``'s queue would be copied into
  every pool process, so prefer a function of the messages);
* ``runner_tools(settings) -> Mapping[str, Any]``: extra entries for the runs' ``ctx.tools``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from maestro.api.cli.common import app, settings_from_env
from maestro.api.cli.output import reported

if TYPE_CHECKING:
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.core.settings import Settings

IMPORTS_ENV = "MAESTRO_WORKER_IMPORTS"


@app.command("worker")
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Pool processes (default: the number of CPUs).")
    ] = None,
    pool: Annotated[
        Literal["prefork", "solo", "threads"], typer.Option(help="Celery pool (prefork isolates crashes).")
    ] = "prefork",
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help=f"Plugin module to import at start-up (also ${IMPORTS_ENV})."),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    hostname: Annotated[str | None, typer.Option(help="Worker node name (default maestro-PID@host).")] = None,
    beat: Annotated[
        bool, typer.Option("--beat", help="Also run Celery beat: the weekly eval on MAESTRO_EVAL_SCHEDULE.")
    ] = False,
) -> None:
    """Execute workcell runs from the broker at MAESTRO_BROKER_URL (Celery, acks late, dead-letters)."""
    from maestro.core.errors import ConfigurationError

    settings = settings_from_env()
    with reported(as_json=False):
        if not settings.broker_url:
            raise ConfigurationError(
                "`maestro worker` needs MAESTRO_BROKER_URL (e.g. redis://127.0.0.1:6379/0); without a "
                "broker, runs execute in-process and no worker is needed"
            )
        modules = _plugins([*(imports or []), *os.environ.get(IMPORTS_ENV, "").replace(",", " ").split()])
        celery_app = _build_app(settings, modules)
    _configure_logging(loglevel)
    name = hostname or f"maestro-{os.getpid()}@{socket.gethostname()}"
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        f"--hostname={name}",
    ]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if beat:  # one worker per deployment runs beat (two would send every schedule twice)
        argv.append("--beat")
    celery_app.worker_main(argv)


def _plugins(names: list[str]) -> list[ModuleType]:
    from maestro.core.errors import ConfigurationError

    modules = []
    for name in dict.fromkeys(names):  # once each, in order
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            raise ConfigurationError(
                f"worker plugin {name!r} (--import / {IMPORTS_ENV}) could not be imported: {exc}"
            ) from exc
    return modules


def _build_app(settings: Settings, modules: list[ModuleType]) -> Any:
    """The worker's Celery app: configuration checked, broker reachable, tasks registered."""
    from maestro.workers.app import BrokerUnavailable, check_app_limits, create_celery_app
    from maestro.workers.tasks import WorkerRuntime, register_tasks

    celery_app = create_celery_app(settings)
    check_app_limits(celery_app)
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:  # kombu raises its transport's own errors; all mean "not reachable"
        raise BrokerUnavailable(
            f"cannot reach the broker at MAESTRO_BROKER_URL: {type(exc).__name__}: {str(exc).rstrip('.')}. "
            "Start Redis or fix MAESTRO_BROKER_URL."
        ) from exc
    register_tasks(
        celery_app,
        WorkerRuntime(settings, _runner_factory(settings, modules)),
        weekly=_weekly_cycle(settings, modules),
    )
    return celery_app


def _runner_factory(
    settings: Settings, modules: list[ModuleType]
) -> Callable[[], tuple[WorkcellRunner, Callable[[], None]]]:
    def build() -> tuple[WorkcellRunner, Callable[[], None]]:
        from maestro.api.container import build_services

        client = next((m.llm_client(settings) for m in modules if hasattr(m, "llm_client")), None)
        services = build_services(settings, client=client)
        runner = services.runner()
        for module in modules:
            if hasattr(module, "runner_tools"):
                extra: dict[str, Any] = dict(module.runner_tools(settings))
                runner.tools.update(extra)
        return runner, services.close

    return build


def _weekly_cycle(settings: Settings, modules: list[ModuleType]) -> Callable[[], dict[str, Any]]:
    """One weekly eval cycle in this worker process (the task Celery beat sends)."""

    def cycle() -> dict[str, Any]:
        from maestro.api.container import build_services
        from maestro.api.eval_cycle import run_cycle

        client = next((m.llm_client(settings) for m in modules if hasattr(m, "llm_client")), None)
        services = build_services(settings, client=client)
        try:
            result: dict[str, Any] = asyncio.run(run_cycle(services, settings, None)).to_dict()
        finally:
            services.close()
        return result

    return cycle


def _configure_logging(level: str) -> None:
    from maestro.tools.pii.logredact import install_log_redaction

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()

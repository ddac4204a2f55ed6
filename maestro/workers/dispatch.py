"""How a queued run gets executed: the ``RunDispatcher`` port and its two adapters.

* ``InProcessDispatcher`` (the default): the run advances in this process. ``background=False`` (the
  CLI) advances it inline, with a live listener; ``background=True`` (the API server) starts an asyncio
  task on the server's loop and returns at once. No broker redelivers a run whose process died, so a
  background dispatcher recovers them when it starts (``start()``, or its first ``submit``): runs left
  ``queued``/``running`` for longer than the run deadline continue from their last checkpoint
  (``WorkcellRunner.recover``; also ``maestro runs recover``).
* ``CeleryDispatcher`` (``MAESTRO_BROKER_URL`` set): sends ``maestro.run.execute(run_id, tenant)`` to the
  broker; a ``maestro worker`` advances the run. If the broker does not take the task, the run is
  failed with ``broker_unavailable`` (nothing stays silently queued, RELIABILITY #27) and the caller
  gets ``BrokerUnavailable`` naming MAESTRO_BROKER_URL.

Either way the caller follows the run through its stored events (``follow_run``): the SSE stream does,
and so does ``maestro run`` when a broker executes the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from maestro.agents.runtime.store import SETTLED, RunStore
from maestro.workers.app import EXECUTE_TASK, RUNS_QUEUE, BrokerUnavailable, CeleryApp, create_celery_app

if TYPE_CHECKING:
    from maestro.agents.runtime.context import Listener
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.agents.runtime.store import RunRecord
    from maestro.core.settings import Settings

__all__ = [
    "FINAL_EVENTS",
    "CeleryDispatcher",
    "InProcessDispatcher",
    "RunDispatcher",
    "build_dispatcher",
    "follow_run",
]

logger = logging.getLogger("maestro.dispatch")

FINAL_EVENTS = frozenset({"end", "waiting"})
"""The event a run emits when it stops: it ended (``end``) or waits for an approval (``waiting``)."""


class RunDispatcher(Protocol):
    """Has a queued run advanced (a new run, or one whose approval was just decided)."""

    @property
    def mode(self) -> str:
        """``in-process`` or ``celery``."""
        ...

    async def submit(self, run: RunRecord, *, listener: Listener | None = None) -> RunRecord:
        """Advance ``run`` (queued); returns the run as known when this returns.

        ``listener`` receives live events when the run advances in this call (in-process, inline);
        otherwise follow the stored events with ``follow_run``.
        """
        ...

    async def aclose(self) -> None:
        """Let runs started in the background finish (briefly), then stop them."""
        ...


class InProcessDispatcher:
    """Runs advance in this process: inline (CLI) or as asyncio tasks on the running loop (API)."""

    mode = "in-process"

    def __init__(self, runner: WorkcellRunner, *, background: bool = False, grace_s: float = 5.0) -> None:
        self.runner = runner
        self.background = background
        self.grace_s = grace_s
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovery: asyncio.Task[Any] | None = None

    def start(self) -> None:
        """Recover the runs a dead process left behind, in the background (once; API server start-up)."""
        if self._recovery is None:
            self._recovery = self._spawn(self._recover(), name="runs:recover")

    def _spawn(self, work: Any, *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _recover(self) -> None:
        try:
            recovered = await self.runner.recover()
        except Exception:  # recovery must not take the server down; the runs stay as they were
            logger.exception("the in-process dispatcher could not recover the runs left behind")
            return
        for run in recovered:
            logger.warning("run %s recovered: %s", run.id, run.status)

    async def submit(self, run: RunRecord, *, listener: Listener | None = None) -> RunRecord:
        if not self.background:
            return await self.runner.advance(run.id, tenant=run.tenant, listener=listener)
        self.start()
        self._spawn(self._advance(run, listener), name=f"run:{run.id}")
        return run

    async def _advance(self, run: RunRecord, listener: Listener | None) -> None:
        try:
            await self.runner.advance(run.id, tenant=run.tenant, listener=listener)
        except Exception:  # the run itself records its failures; this is a bug in the runtime
            logger.exception("run %s: the in-process dispatcher could not advance it", run.id)

    async def aclose(self) -> None:
        if self._tasks:
            pending = set(self._tasks)
            _, still = await asyncio.wait(pending, timeout=self.grace_s)
            for task in still:  # cut short: the run stays 'running' until a recovery continues it
                logger.warning("run task %s still running at shutdown: cancelled", task.get_name())
                task.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
        await self.runner.aclose()  # this loop's checkpointer

    async def wait(self) -> None:
        """Wait for the background runs started so far (tests)."""
        if self._tasks:
            await asyncio.gather(*set(self._tasks), return_exceptions=True)


class CeleryDispatcher:
    """Runs advance on Celery workers (``maestro worker``) through the broker at MAESTRO_BROKER_URL."""

    mode = "celery"

    def __init__(self, settings: Settings, runner: WorkcellRunner, *, app: CeleryApp | None = None) -> None:
        self.settings = settings
        self.runner = runner
        self.app = app if app is not None else create_celery_app(settings)  # checks the configuration

    def send(self, run: RunRecord) -> str:
        """Enqueue the run's task; ``BrokerUnavailable`` (after failing the run) if the broker refuses it."""
        from kombu.exceptions import OperationalError

        try:
            result = self.app.send_task(EXECUTE_TASK, args=[run.id, run.tenant], queue=RUNS_QUEUE)
        except (OperationalError, OSError) as exc:
            error = {
                "code": BrokerUnavailable.code,
                "message": "the broker at MAESTRO_BROKER_URL did not take the run's task: "
                + type(exc).__name__,
            }
            self.runner.abandon(run, error)
            raise BrokerUnavailable(
                f"the broker at MAESTRO_BROKER_URL ({_host(self.settings.broker_url)}) did not take run "
                f"{run.id}: {str(exc).rstrip('.')}. Start Redis or fix MAESTRO_BROKER_URL; "
                "the run was marked failed.",
                run_id=run.id,
            ) from exc
        return str(result.id)

    async def submit(self, run: RunRecord, *, listener: Listener | None = None) -> RunRecord:
        await asyncio.to_thread(self.send, run)
        return self.runner.runs.get(run.id, tenant=run.tenant)

    async def aclose(self) -> None:
        return None


def build_dispatcher(
    settings: Settings, runner: WorkcellRunner, *, background: bool = False
) -> RunDispatcher:
    """Celery when MAESTRO_BROKER_URL is set (its configuration checked here), else in-process."""
    if settings.broker_url:
        return CeleryDispatcher(settings, runner)
    return InProcessDispatcher(runner, background=background)


async def follow_run(
    runs: RunStore,
    run_id: str,
    *,
    tenant: str,
    after: int = 0,
    poll_s: float = 0.2,
    settle_grace_s: float = 2.0,
) -> AsyncIterator[dict[str, Any] | None]:
    """The run's stored events after ``after``, then new ones as they come, until it ends or waits.

    Yields each event (``{"seq", "kind", "payload", "at"}``) and ``None`` whenever a poll found nothing
    (callers send keep-alives on those). Stops once the run is settled (waiting or ended) and its final
    event (``end`` / ``waiting``) was the last one yielded — or ``settle_grace_s`` after it settled.
    ``NotFound`` for another tenant's run.
    """
    runs.get(run_id, tenant=tenant)  # tenant isolation: another tenant's run id is not found
    last_seq, last_kind = after, ""
    settled_at: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        batch = await asyncio.to_thread(runs.events, run_id, after=last_seq, limit=500)
        for event in batch:
            last_seq, last_kind = int(event["seq"]), str(event["kind"])
            yield event
        if len(batch) == 500:
            continue
        status = (await asyncio.to_thread(runs.get, run_id, tenant=tenant)).status
        if status in SETTLED:
            if last_kind in FINAL_EVENTS and batch:
                return
            if settled_at is None:
                settled_at = loop.time()
            elif loop.time() - settled_at >= settle_grace_s or last_kind in FINAL_EVENTS:
                return
        else:
            settled_at = None
        yield None
        await asyncio.sleep(poll_s)


def _host(url: str | None) -> str:
    if not url:
        return "unset"
    rest = url.split("://", 1)[-1]
    return rest.rsplit("@", 1)[-1]

"""Settling finished calls: the budget charge, the decision record and its ledger entry, written together.

The reservation is always taken synchronously before a call (that is what prevents overspending). The
settlement after a successful call can be written in the caller's path (``write_behind=False``) or by
a background writer that batches settlements into one transaction (the default), the way metering
systems record usage: the answer is not delayed by bookkeeping, and until the batch commits the money
stays reserved at the call's maximum, so budgets never under-count.

``flush()`` waits until everything submitted is written; the CLI and the server call ``close()`` on the
way out. A process killed with settlements still queued leaves their reservations ``reserved``:
``BudgetStore.reap_stale`` (``maestro budget reap``) charges them at their reserved maximum.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from maestro.core.errors import MaestroError
from maestro.router.budget import BudgetEvent, BudgetStore, Reservation
from maestro.router.decisions import DecisionLog, Outcome
from maestro.router.policy import Decision

logger = logging.getLogger("maestro.router.settlement")

_RETRIES = 5


@dataclass(frozen=True)
class Settlement:
    """One finished call to write."""

    reservation: Reservation
    decision: Decision
    outcome: Outcome


EventSink = Callable[[list[BudgetEvent]], None]


class _Marker:
    """Queue control items: flush now, or stop."""


_FLUSH = _Marker()
_STOP = _Marker()


def write_settlements(
    budgets: BudgetStore, decisions: DecisionLog, batch: list[Settlement]
) -> list[BudgetEvent]:
    """Write a batch in one transaction: charge each reservation, record each decision (and its evidence)."""
    events: list[BudgetEvent] = []
    with budgets.engine.begin() as conn:
        for item in batch:
            events += budgets.settle(
                item.reservation,
                actual_nano=item.outcome.cost_nano or 0,
                estimated=item.outcome.usage_estimated,
                conn=conn,
            )
        decisions.record_many([(item.decision, item.outcome, True) for item in batch], conn=conn)
    return events


class SettlementWriter:
    """A background thread that writes submitted settlements in batches."""

    def __init__(
        self,
        budgets: BudgetStore,
        decisions: DecisionLog,
        *,
        on_events: EventSink | None = None,
        max_batch: int = 256,
        linger_s: float = 0.0,
    ) -> None:
        self._budgets = budgets
        self._decisions = decisions
        self._on_events = on_events
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: queue.Queue[Settlement | _Marker] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(self, item: Settlement) -> None:
        if self._closed:
            raise RuntimeError("the settlement writer is closed")
        self._ensure_started()
        self._queue.put(item)

    def flush(self) -> None:
        """Block until every submitted settlement is written (or given up after retries and logged)."""
        if self._thread is not None:
            self._queue.put(_FLUSH)  # ends the current linger: write now
            self._queue.join()

    def close(self) -> None:
        """Flush and stop the thread. Idempotent."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="maestro-settlements", daemon=True)
                thread.start()
                self._thread = thread
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _FLUSH:
                self._queue.task_done()
                continue
            if first is _STOP:
                self._queue.task_done()
                return
            assert isinstance(first, Settlement)
            batch, markers, stop = self._collect(first)
            try:
                self._write(batch)
            finally:
                for _ in range(len(batch) + markers):
                    self._queue.task_done()
            if stop:
                return

    def _collect(self, first: Settlement) -> tuple[list[Settlement], int, bool]:
        """Gather what is already queued, waiting up to ``linger_s`` for more (default 0: timed waits
        wake this thread often and cost the event loop more than larger batches save)."""
        batch = [first]
        markers = 0
        deadline = time.monotonic() + self._linger_s
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(item, Settlement):
                batch.append(item)
                continue
            markers += 1
            return batch, markers, item is _STOP
        return batch, markers, False

    def _write(self, batch: list[Settlement]) -> None:
        for attempt in range(1, _RETRIES + 1):
            try:
                events = write_settlements(self._budgets, self._decisions, batch)
            except (sa.exc.SQLAlchemyError, MaestroError) as exc:
                if attempt == _RETRIES:
                    logger.error(
                        "could not write %d settlement(s) after %d attempts (%s): their reservations stay "
                        "held at the maximum until `maestro budget reap`; decisions %s",
                        len(batch),
                        attempt,
                        exc,
                        [item.decision.id for item in batch],
                    )
                    return
                time.sleep(0.05 * 2**attempt)
                continue
            if events and self._on_events is not None:
                self._on_events(events)
            return

"""What a node gets through LangGraph's runtime context: the run's authority and Maestro's services.

Nodes never build their own clients; they call the context, which checks the run's caps and leaves
evidence:

* ``complete`` routes a model call on behalf of the run's authority (per-run budget and deadline checked
  first; the cost is added to the run; a ``model`` event is emitted). With ``stream=True`` it goes
  through ``ModelRouter.stream``: the live listener gets every text delta as a ``token`` event, while
  the store gets them coalesced (one ``token`` event per ~100 ms or 64 characters), so a long answer
  does not cost a DB write per token.
* ``tool_call`` runs a tool under the tool policy (``Authorizer.guard_tool``), between ``tool`` events
  (``phase`` start / end, with timing, and the error's code when it failed). Argument values are never
  put in events: only their names.
* ``effect`` runs an external side effect at most once per ``(run, node, key)``: a node replayed after a
  resume, or a task redelivered by the broker, gets the recorded result back instead of acting again.
  Pass ``key`` to the external system as its idempotency key too, so a crash between acting and
  recording cannot duplicate it either.
* ``approve`` asks a human (an approval of the run's workcell) and pauses the run with LangGraph's
  ``interrupt()``; the run resumes with the decision. The approval request itself is an effect, so the
  node's replay on resume does not ask twice.
* ``emit`` publishes a streaming event (stored, and passed to the live listener).

Events reach the live listener at once and the store in batches: the context buffers them (and the cost
of its model calls) and ``flush`` writes the batch in one transaction. The runner flushes before
LangGraph saves anything of the run's thread (``EventFence``: a node's events are stored before the node
is recorded as done) and with every status change (the last events commit with it). A process that
dies mid-node loses only that node's buffered events, and the node runs again on recovery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langgraph.types import interrupt

from maestro.agents.runtime.store import PendingEvent, RunStore
from maestro.core.approvals import ApprovalStore
from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer
from maestro.core.errors import BudgetExceeded, MaestroError
from maestro.router.policy import RouteRequest
from maestro.router.service import ModelRouter, RoutedCompletion

__all__ = ["Listener", "RunCaps", "RunContext", "RunTimedOut", "TokenCoalescer"]

Listener = Callable[[str, dict[str, Any]], None]
T = TypeVar("T")

TOKEN_FLUSH_S = 0.1
TOKEN_FLUSH_CHARS = 64


class RunTimedOut(MaestroError):
    code = "run_timed_out"
    http_status = 504


class TokenCoalescer:
    """Joins text deltas into stored ``token`` events: one per ``flush_s`` seconds or ``flush_chars``."""

    def __init__(
        self,
        store: Callable[[str], object],
        *,
        flush_s: float = TOKEN_FLUSH_S,
        flush_chars: int = TOKEN_FLUSH_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._flush_s = flush_s
        self._flush_chars = flush_chars
        self._clock = clock
        self._parts: list[str] = []
        self._size = 0
        self._since = clock()

    def add(self, delta: str) -> None:
        if not self._parts:
            self._since = self._clock()
        self._parts.append(delta)
        self._size += len(delta)
        if self._size >= self._flush_chars or self._clock() - self._since >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            text = "".join(self._parts)
            self._parts, self._size = [], 0
            self._store(text)


@dataclass(frozen=True)
class RunCaps:
    budget_usd: float | None = None  # what this run may spend on model calls
    deadline_s: float = 600.0  # wall-clock limit of one start/resume


@dataclass
class RunContext:
    run_id: str
    workcell: str
    authority: Authority
    router: ModelRouter
    runs: RunStore
    approvals: ApprovalStore
    caps: RunCaps = field(default_factory=RunCaps)
    listener: Listener | None = None
    tools: Mapping[str, Any] = field(default_factory=dict)
    authorizer: Authorizer | None = None  # the tool policy; ``tool_call`` refuses nothing without one
    stream_tokens: bool = False  # what ``complete`` does when its caller does not say
    started: float = field(default_factory=time.monotonic)
    spent_usd: float = 0.0
    _pending: list[PendingEvent] = field(default_factory=list, init=False, repr=False)
    _unbilled_usd: float = field(default=0.0, init=False, repr=False)
    last_seq: int | None = None  # the run's last stored event number, when known (saves reading it)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- events ----------------------------------------------------------------------------------------

    def emit(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Queue an event for the store (numbered when flushed) and pass it to the live listener."""
        data = dict(payload)
        self._store(kind, data)
        self.live(kind, data)

    def _store(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:  # a sync node may emit from LangGraph's executor thread
            self._pending.append(PendingEvent(kind, data, self.runs.now()))

    def take_pending(self) -> tuple[list[PendingEvent], float]:
        """The events and model cost not stored yet; the caller stores them (or ``restore_pending``)."""
        with self._lock:
            events, cost = self._pending, self._unbilled_usd
            self._pending, self._unbilled_usd = [], 0.0
        return events, cost

    def restore_pending(self, events: list[PendingEvent], cost: float) -> None:
        """Put back what ``take_pending`` returned when it could not be stored (ahead of newer events)."""
        with self._lock:
            self._pending[:0] = events
            self._unbilled_usd += cost

    def pending_only(self, kinds: frozenset[str]) -> bool:
        """True when every queued event is of one of ``kinds`` and no cost is queued."""
        with self._lock:
            return not self._unbilled_usd and all(event.kind in kinds for event in self._pending)

    def flush(self) -> None:
        """Store the queued events (and add the queued cost to the run) in one transaction."""
        events, cost = self.take_pending()
        if not events and not cost:
            return
        try:
            self.last_seq = self.runs.append_events(
                self.run_id, events, add_cost_usd=cost, after=self.last_seq
            )
        except BaseException:
            self.restore_pending(events, cost)
            raise

    def live(self, kind: str, data: dict[str, Any]) -> None:
        """Pass an event to the live listener only (the caller stores it)."""
        if self.listener is not None:
            self.listener(kind, data)

    # -- caps ------------------------------------------------------------------------------------------

    def check_caps(self) -> None:
        if time.monotonic() - self.started > self.caps.deadline_s:
            raise RunTimedOut(
                f"run {self.run_id} passed its {self.caps.deadline_s:g}s deadline", run_id=self.run_id
            )
        if self.caps.budget_usd is not None and self.spent_usd >= self.caps.budget_usd:
            raise BudgetExceeded(
                f"run {self.run_id} spent ${self.spent_usd:.6f} of its ${self.caps.budget_usd:.6f} budget",
                run_id=self.run_id,
            )

    # -- model calls -----------------------------------------------------------------------------------

    async def complete(
        self, *, task: str, messages: list[dict[str, Any]], stream: bool | None = None, **kw: Any
    ) -> RoutedCompletion:
        """One routed model call under the run's authority.

        ``stream`` (default: the context's ``stream_tokens``) emits ``token`` events as the text arrives.
        """
        self.check_caps()
        request = RouteRequest.for_authority(self.authority, task=task, messages=messages, **kw)
        streaming = self.stream_tokens if stream is None else stream
        result = await (self._stream(request) if streaming else self.router.complete(request))
        self.spent_usd += result.cost_usd
        with self._lock:
            self._unbilled_usd += result.cost_usd  # added to the run with the next flush
        self.emit(
            "model",
            {
                "task": task,
                "model": result.model,
                "decision_id": result.decision.id,
                "cost_usd": result.cost_usd,
            },
        )
        return result

    async def _stream(self, request: RouteRequest) -> RoutedCompletion:
        coalescer = TokenCoalescer(lambda text: self._store("token", {"text": text}))
        result: RoutedCompletion | None = None
        try:
            async for event in self.router.stream(request):
                if event.kind == "delta" and event.text:
                    self.live("token", {"text": event.text})
                    coalescer.add(event.text)
                elif event.kind == "end":
                    result = event.result
        finally:
            coalescer.flush()  # what reached the listener is stored too, even when the call failed
        assert result is not None  # the router ends a stream with "end" or raises
        return result

    # -- tools -----------------------------------------------------------------------------------------

    async def tool_call(
        self,
        name: str,
        args: Mapping[str, Any],
        act: Callable[[], Awaitable[T]],
        *,
        provenance: Mapping[str, Any] | None = None,
    ) -> T:
        """Run tool ``name`` if the tool policy allows it with ``args``; ``tool`` events around it.

        A refusal raises ``PolicyDenied`` (recorded in the ledger by the authorizer) before ``act`` runs.
        Side effects belong in ``effect`` (inside ``act``), which makes them happen once.
        """
        self.check_caps()
        if self.authorizer is not None:
            self.authorizer.guard_tool(self.authority, name, args, provenance=provenance)
        self.emit("tool", {"tool": name, "phase": "start", "arg_names": sorted(str(k) for k in args)})
        started = time.perf_counter()
        try:
            result = await act()
        except MaestroError as exc:
            self.emit("tool", _tool_end(name, started, error={"code": exc.code, "message": exc.message}))
            raise
        except Exception as exc:  # reported by type only (its text may carry the tool's data), re-raised
            self.emit("tool", _tool_end(name, started, error={"code": type(exc).__name__}))
            raise
        self.emit("tool", _tool_end(name, started))
        return result

    # -- effects and approvals -------------------------------------------------------------------------

    async def effect(self, node: str, key: str, act: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``act`` once per ``(run, node, key)`` and return its (JSON-serialisable) result."""
        done, result = self.runs.effect(self.run_id, node, key)
        if done:
            return result
        self.emit("effect", {"node": node, "key": key})
        return self.runs.record_effect(self.run_id, node, key, await act())

    async def approve(
        self, node: str, *, action: str, resource: Mapping[str, Any], reason: str
    ) -> dict[str, Any]:
        """Pause the run until a human with ``approve:<workcell>`` decides; return the decision.

        The decision is ``{"approved": bool, "approval_id": str, "decided_by": str, "note": str | None}``.
        """

        async def ask() -> dict[str, Any]:
            approval = self.approvals.request(
                self.authority, workcell=self.workcell, action=action, resource=resource, reason=reason
            )
            self.emit("approval", {"node": node, "action": action, "approval_id": approval.id})
            return {"approval_id": approval.id}

        asked = await self.effect(node, f"approval:{action}", ask)
        decision: dict[str, Any] = interrupt(
            {
                "approval_id": asked["approval_id"],
                "action": action,
                "resource": dict(resource),
                "reason": reason,
            }
        )
        return decision


def _tool_end(name: str, started: float, *, error: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "tool": name,
        "phase": "end",
        "ok": error is None,
        "ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if error is not None:
        payload["error"] = error
    return payload

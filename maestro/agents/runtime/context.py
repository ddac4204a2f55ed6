"""What a node gets through LangGraph's runtime context: the run's authority and Maestro's services.

Nodes never build their own clients; they call the context, which checks the run's caps and leaves
evidence:

* ``complete`` routes a model call on behalf of the run's authority (per-run budget and deadline checked
  first; the cost is added to the run; a ``model`` event is emitted).
* ``effect`` runs an external side effect at most once per ``(run, node, key)``: a node replayed after a
  resume, or a task redelivered by the broker, gets the recorded result back instead of acting again.
  Pass ``key`` to the external system as its idempotency key too, so a crash between acting and
  recording cannot duplicate it either.
* ``approve`` asks a human (an approval of the run's workcell) and pauses the run with LangGraph's
  ``interrupt()``; the run resumes with the decision. The approval request itself is an effect, so the
  node's replay on resume does not ask twice.
* ``emit`` publishes a streaming event (stored, and passed to the live listener).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph.types import interrupt

from maestro.agents.runtime.store import RunStore
from maestro.core.approvals import ApprovalStore
from maestro.core.authority import Authority
from maestro.core.errors import BudgetExceeded, MaestroError
from maestro.router.policy import RouteRequest
from maestro.router.service import ModelRouter, RoutedCompletion

__all__ = ["RunCaps", "RunContext"]

Listener = Callable[[str, dict[str, Any]], None]


class RunTimedOut(MaestroError):
    code = "run_timed_out"
    http_status = 504


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
    started: float = field(default_factory=time.monotonic)
    spent_usd: float = 0.0

    # -- events ----------------------------------------------------------------------------------------

    def emit(self, kind: str, payload: Mapping[str, Any]) -> None:
        data = dict(payload)
        self.runs.append_event(self.run_id, kind, data)
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

    async def complete(self, *, task: str, messages: list[dict[str, Any]], **kw: Any) -> RoutedCompletion:
        """One routed model call under the run's authority."""
        self.check_caps()
        request = RouteRequest.for_authority(self.authority, task=task, messages=messages, **kw)
        result = await self.router.complete(request)
        self.spent_usd += result.cost_usd
        self.runs.add_cost(self.run_id, result.cost_usd)
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

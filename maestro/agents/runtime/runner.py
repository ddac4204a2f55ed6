"""Start, resume and record workcell runs (in-process; the Celery worker calls the same functions).

``start`` authorises the workcell's action for the caller, records the run, and executes its graph with a
checkpoint per step; a node that asks for approval pauses the run (status ``waiting``). ``decide`` records
a human's decision on that approval (the policy: ``approve:<workcell>``, same tenant, never the requester,
never a bot; a second or concurrent decision is refused) and resumes the run from its checkpoint, in this
process or another, under the *requester's* authority. Every start, pause, decision and end is a ledger
entry; every node, model call, effect and approval is a run event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from maestro.agents.runtime.checkpoints import open_checkpointer
from maestro.agents.runtime.context import Listener, RunCaps, RunContext
from maestro.agents.runtime.registry import Workcell, get_workcell
from maestro.agents.runtime.store import ACTIVE, RunRecord, RunStore
from maestro.core.approvals import ApprovalStore
from maestro.core.authority import Authority, Principal
from maestro.core.authorize import Authorizer
from maestro.core.errors import InvalidRequest, MaestroError, NotFound
from maestro.core.ids import new_id
from maestro.router.service import ModelRouter

if TYPE_CHECKING:
    from maestro.core.settings import Settings

__all__ = ["WorkcellRunner", "authority_from_snapshot", "authority_snapshot"]

Recorder = Callable[[str, dict[str, Any]], None]


def authority_snapshot(authority: Authority) -> dict[str, Any]:
    p = authority.principal
    return {
        "principal_id": p.id,
        "tenant": p.tenant,
        "name": p.name,
        "kind": p.kind,
        "roles": list(p.roles),
        "scopes": sorted(authority.scopes),
        "clearance": authority.clearance,
        "budget_usd": authority.budget_usd,
    }


def authority_from_snapshot(snapshot: Mapping[str, Any], run_id: str) -> Authority:
    principal = Principal(
        id=str(snapshot["principal_id"]),
        tenant=str(snapshot["tenant"]),
        name=str(snapshot["name"]),
        kind=snapshot["kind"],
        roles=tuple(snapshot.get("roles") or ()),
        scopes=frozenset(snapshot.get("scopes") or ()),
    )
    return Authority(
        principal=principal,
        scopes=frozenset(snapshot.get("scopes") or ()),
        clearance=snapshot.get("clearance", "internal"),
        budget_usd=snapshot.get("budget_usd"),
        run_id=run_id,
    )


class WorkcellRunner:
    def __init__(
        self,
        settings: Settings,
        *,
        router: ModelRouter,
        runs: RunStore,
        approvals: ApprovalStore,
        authorizer: Authorizer,
        record: Recorder | None = None,
        tools: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.router = router
        self.runs = runs
        self.approvals = approvals
        self.authorizer = authorizer
        self._record = record
        self.tools = dict(tools or {})

    # -- starting --------------------------------------------------------------------------------------

    def prepare(
        self, name: str, payload: Mapping[str, Any], authority: Authority, *, thread_id: str | None = None
    ) -> RunRecord:
        """Authorise, validate the input and record a queued run (the broker path enqueues it after this)."""
        workcell = get_workcell(name)
        authority.check_live()
        self.authorizer.authorize(
            authority, workcell.action, {"kind": "workcell", "tenant": authority.tenant, "id": workcell.name}
        )
        workcell.initial_state(payload)  # refuse bad input before anything is recorded
        if thread_id is not None:
            self._check_thread(thread_id, authority)
        run = self.runs.create(
            workcell=workcell.name,
            authority=authority_snapshot(authority),
            input=dict(payload),
            thread_id=thread_id,
            run_id=new_id("run"),
        )
        self._ledger("run.started", run, {})
        return run

    async def start(
        self,
        name: str,
        payload: Mapping[str, Any],
        authority: Authority,
        *,
        thread_id: str | None = None,
        listener: Listener | None = None,
        caps: RunCaps | None = None,
    ) -> RunRecord:
        run = self.prepare(name, payload, authority, thread_id=thread_id)
        return await self.execute(run.id, tenant=run.tenant, listener=listener, caps=caps)

    async def execute(
        self, run_id: str, *, tenant: str, listener: Listener | None = None, caps: RunCaps | None = None
    ) -> RunRecord:
        """Run a queued run's graph from its input (what a worker does with a queued run)."""
        run = self.runs.transition(run_id, tenant=tenant, to="running", expect={"queued"}, attempt=True)
        workcell = get_workcell(run.workcell)
        return await self._drive(
            run, workcell, workcell.initial_state(run.input), listener, caps, refused=False
        )

    def _check_thread(self, thread_id: str, authority: Authority) -> None:
        previous = self.runs.list(tenant=authority.tenant, thread_id=thread_id, limit=1000)
        if not previous:
            raise NotFound(f"no conversation thread {thread_id!r} in this tenant", thread_id=thread_id)
        if any(r.status in ACTIVE for r in previous):
            raise InvalidRequest(
                f"thread {thread_id!r} has a run in progress: wait for it or decide its approval"
            )

    # -- approvals -------------------------------------------------------------------------------------

    async def decide(
        self,
        run_id: str,
        approver: Authority,
        *,
        approve: bool,
        note: str | None = None,
        listener: Listener | None = None,
        caps: RunCaps | None = None,
    ) -> RunRecord:
        """Grant or refuse the run's pending approval, then resume the run from its checkpoint."""
        run = self.runs.get(run_id, tenant=approver.tenant)
        if run.status != "waiting" or run.approval_id is None:
            raise InvalidRequest(
                f"run {run_id} is {run.status}: there is no approval to decide", run_id=run_id
            )
        decided = (
            self.approvals.grant(run.approval_id, approver, note)
            if approve
            else self.approvals.refuse(run.approval_id, approver, note)
        )  # atomic: a second or concurrent decision gets ApprovalConflict here
        run = self.runs.transition(run_id, tenant=run.tenant, to="running", expect={"waiting"}, attempt=True)
        resume = {
            "approved": approve,
            "approval_id": decided.id,
            "decided_by": decided.decided_by,
            "note": note,
        }
        workcell = get_workcell(run.workcell)
        return await self._drive(run, workcell, Command(resume=resume), listener, caps, refused=not approve)

    # -- driving the graph -----------------------------------------------------------------------------

    async def _drive(
        self,
        run: RunRecord,
        workcell: Workcell,
        payload: Any,
        listener: Listener | None,
        caps: RunCaps | None,
        *,
        refused: bool,
    ) -> RunRecord:
        authority = authority_from_snapshot(run.authority, run.id)
        caps = caps or RunCaps(budget_usd=authority.budget_usd, deadline_s=self.settings.run_deadline_s)
        ctx = RunContext(
            run_id=run.id,
            workcell=workcell.name,
            authority=authority,
            router=self.router,
            runs=self.runs,
            approvals=self.approvals,
            caps=caps,
            listener=listener,
            tools=self.tools,
        )
        config: Any = {
            "configurable": {"thread_id": run.thread_id},
            "recursion_limit": workcell.recursion_limit,
        }
        interrupt_value: dict[str, Any] | None = None
        try:
            async with open_checkpointer(self.settings) as saver:
                graph = workcell.build().compile(checkpointer=saver)
                async with asyncio.timeout(caps.deadline_s):
                    async for mode, chunk in graph.astream(
                        payload, config, context=ctx, stream_mode=["updates", "custom"]
                    ):
                        if mode == "custom":
                            ctx.emit("custom", chunk if isinstance(chunk, dict) else {"value": chunk})
                            continue
                        updates: dict[str, Any] = chunk if isinstance(chunk, dict) else {}
                        for node, update in updates.items():
                            if node == "__interrupt__":
                                interrupt_value = dict(update[0].value)
                            else:
                                ctx.emit("node", {"node": node})
                state = (await graph.aget_state(config)).values
        except MaestroError as exc:
            return self._fail(run, exc.to_dict()["error"], ctx)
        except GraphRecursionError:
            error = {"code": "recursion_limit", "message": f"the run passed {workcell.recursion_limit} steps"}
            return self._fail(run, error, ctx)
        except TimeoutError:
            error = {"code": "run_timed_out", "message": f"the run passed its {caps.deadline_s:g}s deadline"}
            return self._fail(run, error, ctx)
        if interrupt_value is not None:
            approval_id = interrupt_value.get("approval_id")
            waiting = self.runs.transition(
                run.id, tenant=run.tenant, to="waiting", expect={"running"}, approval_id=approval_id
            )
            self._ledger(
                "run.waiting", waiting, {"approval_id": approval_id, "action": interrupt_value.get("action")}
            )
            return waiting
        output = workcell.output(state)
        status: Literal["succeeded", "rejected"] = "rejected" if refused else "succeeded"
        done = self.runs.transition(run.id, tenant=run.tenant, to=status, expect={"running"}, output=output)
        ctx.emit("end", {"status": status})
        self._ledger(f"run.{status}", done, {})
        return done

    def _fail(self, run: RunRecord, error: dict[str, Any], ctx: RunContext) -> RunRecord:
        failed = self.runs.transition(run.id, tenant=run.tenant, to="failed", expect={"running"}, error=error)
        ctx.emit("error", error)
        self._ledger("run.failed", failed, {"error_code": error.get("code")})
        return failed

    def _ledger(self, kind: str, run: RunRecord, extra: Mapping[str, Any]) -> None:
        if self._record is not None:
            self._record(
                kind,
                {
                    "tenant": run.tenant,
                    "principal_id": run.principal_id,
                    "run_id": run.id,
                    "workcell": run.workcell,
                    "status": run.status,
                    "cost_usd": run.cost_usd,
                    **extra,
                },
            )

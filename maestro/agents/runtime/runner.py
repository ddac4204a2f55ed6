"""Start, resume and record workcell runs; the in-process dispatcher and the Celery worker call the same
functions.

A run moves ``queued -> running -> waiting -> queued -> running -> succeeded | rejected | failed``:

* ``prepare`` authorises the workcell's action for the caller, validates the input and records a
  ``queued`` run (the API and CLI call it synchronously, so a refusal is the caller's error).
* ``advance`` claims a queued run (``queued -> running``, one more delivery in ``attempts``) and drives
  its graph with a checkpoint per step. What it drives is read from the checkpoint, so the same call
  starts a run, resumes it after a decision, and continues it after a crash: if this run never touched
  its thread, from its input; if it is paused at an approval that has been decided, with the decision;
  otherwise from the last checkpoint (a node cut short re-runs; its effects come back from the effect
  log instead of happening again). A node that asks for approval pauses the run (``waiting``).
* ``record_decision`` records a human's decision on the pending approval (the policy:
  ``approve:<workcell>``, same tenant, never the requester, never a bot; the grant is one conditional
  update, so a second or concurrent decision is refused) and re-queues the run (``waiting -> queued``);
  ``decide`` does that and then advances it in this process. The run resumes under the *requester's*
  authority, in this process or another.
* A broker redelivery claims a ``running`` run too (``advance(..., redelivery=True)``): the worker that
  held it is gone (its hard time limit is below the broker's visibility timeout), so it continues from the
  last checkpoint. ``dead_letter`` ends a run that keeps killing its workers.
* ``recover`` does for in-process mode what the broker's redelivery does for Celery: runs left ``queued``
  or ``running`` for longer than the run deadline (no live process can still be driving them) are
  claimed (one recoverer wins) and continued from their last checkpoint.

Every start, pause, decision and end is a ledger entry; every node, model call, token, tool call, effect
and approval is a run event. A run's ``run.*`` ledger entry is written in the transaction that records
the run or changes its status (``record`` is called with that connection), so the status and its
evidence commit together. Per event loop the runner keeps one open checkpointer and each workcell's
compiled graph (``CheckpointSession``); a run's events are buffered and written in one transaction
before each save of a node's writes, before a checkpoint save that would record something they describe
(not for ``node_start`` events alone: their node is not done yet), and with each status change (see
``context``). The runner knows its run's last event number after its first write (from the start for a
run it created) and does not read it again for each batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from maestro.agents.runtime.checkpoints import CheckpointSession
from maestro.agents.runtime.context import Listener, RunCaps, RunContext
from maestro.agents.runtime.registry import Workcell, get_workcell
from maestro.agents.runtime.store import ACTIVE, PendingEvent, RunRecord, RunStatus, RunStore, Within
from maestro.core.approvals import ApprovalStore
from maestro.core.authority import Authority, Principal
from maestro.core.authorize import Authorizer
from maestro.core.errors import ApprovalConflict, InvalidRequest, MaestroError, NotFound
from maestro.core.ids import new_id
from maestro.router.service import ModelRouter

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from maestro.core.settings import Settings

__all__ = ["DEAD_LETTERED", "WorkcellRunner", "authority_from_snapshot", "authority_snapshot"]


class Recorder(Protocol):
    """Appends a ledger entry; with ``conn``, in that (the caller's) transaction of the state DB."""

    def __call__(self, kind: str, payload: dict[str, Any], /, *, conn: Connection | None = None) -> None: ...


logger = logging.getLogger("maestro.runs")

DEAD_LETTERED = "dead_lettered"
RUN_KEY = "maestro_run_id"  # checkpoint metadata: which run wrote the checkpoint


@dataclass(frozen=True)
class _Plan:
    """What to feed the graph: ``payload`` (``None`` continues from the last checkpoint), or nothing
    (``finished``: the graph already ended; ``paused``: still waiting for an undecided approval)."""

    payload: Any = None
    refused: bool = False
    finished: bool = False
    paused: dict[str, Any] | None = None


class _NodeEvents:
    """``node_start`` when a node begins (from LangGraph's ``tasks`` stream) and ``node`` (with its time)
    when it ends without pausing or failing: emitted just before its writes are saved (``saving``, the
    ``EventFence`` hook, which then stores the buffered events), so a node recorded as done always has
    its ``node`` event stored; from the ``tasks`` stream for a node that wrote nothing."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._started: dict[str, tuple[str, float]] = {}

    def task(self, chunk: Any) -> None:
        if not isinstance(chunk, dict) or "name" not in chunk:
            return
        task_id, node = str(chunk.get("id")), str(chunk["name"])
        if "input" in chunk:
            self._started[task_id] = (node, time.perf_counter())
            self.ctx.emit("node_start", {"node": node})
        elif not chunk.get("error") and not chunk.get("interrupts"):
            self._ended(task_id)

    def saving(self, task_id: str | None, writes: Sequence[tuple[str, Any]]) -> None:
        if task_id is None and self.ctx.pending_only(_NOT_DONE):
            return  # a checkpoint: only the starts of nodes it does not record as done are queued
        if task_id is not None and not any(channel in _STOPS for channel, _ in writes):
            self._ended(task_id)
        self.ctx.flush()

    def _ended(self, task_id: str) -> None:
        started = self._started.pop(task_id, None)
        if started is not None:
            node, t0 = started
            self.ctx.emit("node", {"node": node, "ms": round((time.perf_counter() - t0) * 1000, 3)})


_STOPS = frozenset({"__error__", "__interrupt__"})  # a task's writes when it failed or paused
_NOT_DONE = frozenset({"node_start"})  # events that need not be stored before a checkpoint save


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
        "pinned_model": authority.pinned_model,
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
        pinned_model=snapshot.get("pinned_model"),
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
        stream_tokens: bool = True,
    ) -> None:
        self.settings = settings
        self.stream_tokens = stream_tokens
        self.router = router
        self.runs = runs
        self.approvals = approvals
        self.authorizer = authorizer
        self._record = record
        self.tools = dict(tools or {})
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CheckpointSession] = (
            weakref.WeakKeyDictionary()
        )

    def with_tools(self, **tools: Any) -> WorkcellRunner:
        """A runner sharing this one's settings, router, stores, policy and ledger, with ``tools``
        replacing entries of its tools (the eval harness gives the repository workcells its own scratch
        remote). Runs it starts are ordinary runs; a resume elsewhere gets the deployment's tools."""
        return WorkcellRunner(
            self.settings,
            router=self.router,
            runs=self.runs,
            approvals=self.approvals,
            authorizer=self.authorizer,
            record=self._record,
            tools={**self.tools, **tools},
            stream_tokens=self.stream_tokens,
        )

    def _session(self) -> CheckpointSession:
        """This event loop's checkpointer and compiled graphs (opened on first use)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            session = self._sessions[loop] = CheckpointSession(self.settings)
        return session

    async def aclose(self) -> None:
        """Close this event loop's checkpointer (a loop that ends without it closes it on shutdown)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.aclose()

    # -- starting --------------------------------------------------------------------------------------

    def prepare(
        self, name: str, payload: Mapping[str, Any], authority: Authority, *, thread_id: str | None = None
    ) -> RunRecord:
        """Authorise, validate the input and record a queued run (a dispatcher then advances it)."""
        return self._prepare(name, payload, authority, thread_id=thread_id, claimed=False)[0]

    def _prepare(
        self,
        name: str,
        payload: Mapping[str, Any],
        authority: Authority,
        *,
        thread_id: str | None,
        claimed: bool,
    ) -> tuple[RunRecord, Any]:
        """``prepare``; ``claimed``: record the run already claimed by this process (``running``,
        one delivery), for ``start``. Returns the run and its first state."""
        workcell = get_workcell(name)
        authority.check_live()
        self.authorizer.authorize(
            authority, workcell.action, {"kind": "workcell", "tenant": authority.tenant, "id": workcell.name}
        )
        first = workcell.initial_state(payload)  # refuse bad input before anything is recorded
        if thread_id is not None:
            self._check_thread(thread_id, authority)
        run = self.runs.create(
            workcell=workcell.name,
            authority=authority_snapshot(authority),
            input=dict(payload),
            thread_id=thread_id,
            run_id=new_id("run"),
            claimed=claimed,
            within=self._ledger("run.started", {}),
        )
        return run, first

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
        """``prepare`` then ``advance`` in this process.

        The run is recorded already claimed (``running``: no other process can know it yet, so the
        separate ``queued -> running`` claim would protect nothing), and it starts from its input
        without reading its thread's last checkpoint (a run that did not exist cannot have written it).
        """
        run, first = self._prepare(name, payload, authority, thread_id=thread_id, claimed=True)
        return await self.drive(run, listener=listener, caps=caps, start=first)

    async def execute(
        self, run_id: str, *, tenant: str, listener: Listener | None = None, caps: RunCaps | None = None
    ) -> RunRecord:
        """Run a queued run's graph (``advance`` without redelivery)."""
        return await self.advance(run_id, tenant=tenant, listener=listener, caps=caps)

    def _check_thread(self, thread_id: str, authority: Authority) -> None:
        previous = self.runs.list(tenant=authority.tenant, thread_id=thread_id, limit=1000)
        if not previous:
            raise NotFound(f"no conversation thread {thread_id!r} in this tenant", thread_id=thread_id)
        if any(r.status in ACTIVE for r in previous):
            raise InvalidRequest(
                f"thread {thread_id!r} has a run in progress: wait for it or decide its approval"
            )

    # -- claiming and advancing ------------------------------------------------------------------------

    def claim(
        self, run_id: str, *, tenant: str, redelivery: bool = False, stale_for_s: float | None = None
    ) -> RunRecord | None:
        """``queued`` (or, for a broker redelivery, ``running``) -> ``running``, counting the delivery.

        ``None`` when the run is waiting or finished: a duplicate delivery has nothing to do.
        ``stale_for_s``: only a run last updated longer ago than that (``recover``).
        """
        expect = {"queued", "running"} if redelivery else {"queued"}
        try:
            return self.runs.transition(
                run_id, tenant=tenant, to="running", expect=expect, attempt=True, stale_for_s=stale_for_s
            )
        except ApprovalConflict:
            return None

    async def recover(self, *, older_than_s: float | None = None) -> list[RunRecord]:
        """Continue the runs a dead process left ``queued`` or ``running`` (in-process mode).

        A run qualifies when its last update is older than ``older_than_s`` (default: the run deadline,
        MAESTRO_RUN_DEADLINE_S, past which a live process would have failed it). Each is claimed with a
        conditional update on that age (of two recoverers one wins), then driven from its last
        checkpoint: a node cut short re-runs and its recorded effects come back from the effect log. A
        run recovered more than ``1 + MAESTRO_MAX_REDELIVERIES`` times is failed (``dead_lettered``).
        Returns the runs as they ended up.
        """
        older = self.settings.run_deadline_s if older_than_s is None else older_than_s
        recovered: list[RunRecord] = []
        statuses: tuple[RunStatus, ...] = ("running", "queued")
        for status in statuses:
            for run in self.runs.stale(status=status, older_than_s=older):
                claimed = self.claim(run.id, tenant=run.tenant, redelivery=True, stale_for_s=older)
                if claimed is None:  # someone else recovered it, or it moved on meanwhile
                    continue
                if claimed.attempts > 1 + self.settings.max_redeliveries:
                    recovered.append(self.dead_letter(claimed, limit=self.settings.max_redeliveries))
                    continue
                logger.warning(
                    "run %s was left %s (last update %s): continuing it from its checkpoint",
                    run.id,
                    status,
                    run.updated_at.isoformat(),
                )
                recovered.append(await self.drive(claimed))
        return recovered

    async def advance(
        self,
        run_id: str,
        *,
        tenant: str,
        listener: Listener | None = None,
        caps: RunCaps | None = None,
        redelivery: bool = False,
    ) -> RunRecord:
        """Claim the run and drive it until it ends or waits; returns the run as it then is."""
        run = self.claim(run_id, tenant=tenant, redelivery=redelivery)
        if run is None:
            return self.runs.get(run_id, tenant=tenant)
        return await self.drive(run, listener=listener, caps=caps)

    def dead_letter(self, run: RunRecord, *, limit: int) -> RunRecord:
        """Fail a claimed run that was delivered more than ``1 + limit`` times (it keeps killing workers)."""
        error = {
            "code": DEAD_LETTERED,
            "message": f"run {run.id} was delivered {run.attempts} times, more than 1 + "
            f"MAESTRO_MAX_REDELIVERIES ({limit}): its task went to the dead-letter queue",
        }
        return self._fail(run, error, None)

    def abandon(self, run: RunRecord, error: dict[str, Any]) -> RunRecord:
        """Fail a run that was never picked up (e.g. the broker refused the task): ``queued -> failed``."""
        return self._fail(run, error, None, expect=frozenset({"queued"}))

    # -- approvals -------------------------------------------------------------------------------------

    def record_decision(
        self, run_id: str, approver: Authority, *, approve: bool, note: str | None = None
    ) -> RunRecord:
        """Grant or refuse the run's pending approval and re-queue the run; a dispatcher resumes it."""
        run = self.runs.get(run_id, tenant=approver.tenant)
        if run.approval_id is None:
            raise InvalidRequest(
                f"run {run_id} is {run.status}: there is no approval to decide", run_id=run_id
            )
        if run.status != "waiting":  # decided already (the run resumed): a decision is final
            raise ApprovalConflict(
                f"run {run_id} is {run.status}: its approval {run.approval_id} was already decided",
                run_id=run_id,
                status=run.status,
            )
        if approve:  # atomic: a second or concurrent decision gets ApprovalConflict here
            self.approvals.grant(run.approval_id, approver, note)
        else:
            self.approvals.refuse(run.approval_id, approver, note)
        return self.runs.transition(
            run_id, tenant=run.tenant, to="queued", expect={"waiting"}, reset_attempts=True
        )

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
        """``record_decision`` then resume the run from its checkpoint in this process."""
        run = self.record_decision(run_id, approver, approve=approve, note=note)
        return await self.advance(run.id, tenant=run.tenant, listener=listener, caps=caps)

    # -- driving the graph -----------------------------------------------------------------------------

    async def drive(
        self,
        run: RunRecord,
        *,
        listener: Listener | None = None,
        caps: RunCaps | None = None,
        start: Any = None,
    ) -> RunRecord:
        """Drive a claimed (``running``) run until it ends or waits for an approval.

        ``start``: the first state of a run created by ``start`` (what to do is then known: no plan is
        read from the checkpoint)."""
        workcell = get_workcell(run.workcell)
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
            authorizer=self.authorizer,
            stream_tokens=self.stream_tokens,
            last_seq=0 if start is not None else None,  # a run ``start`` created has no events yet
        )
        config: Any = {
            "configurable": {"thread_id": run.thread_id},
            "recursion_limit": workcell.recursion_limit,
            "metadata": {RUN_KEY: run.id},
        }
        session = self._session()
        try:
            fence = await session.open()
            graph = session.graph(workcell)
            nodes = _NodeEvents(ctx)
            with fence.guarding(run.thread_id, nodes.saving):  # events are stored before each save
                if start is not None:
                    plan = _Plan(payload=start)
                else:
                    plan = await self._plan(graph, config, run, workcell)
                paused, state = plan.paused, None
                if not plan.finished and paused is None:
                    async with asyncio.timeout(caps.deadline_s):
                        paused = await self._stream(graph, plan.payload, config, nodes)
                if paused is None:  # the final state (a paused run's is not needed)
                    state = (await graph.aget_state(config)).values
        except MaestroError as exc:
            return self._fail(run, exc.to_dict()["error"], ctx)
        except GraphRecursionError:
            error = {"code": "recursion_limit", "message": f"the run passed {workcell.recursion_limit} steps"}
            return self._fail(run, error, ctx)
        except TimeoutError:
            error = {"code": "run_timed_out", "message": f"the run passed its {caps.deadline_s:g}s deadline"}
            return self._fail(run, error, ctx)
        except Exception as exc:  # a bug in a node: the run fails visibly instead of staying "running"
            logger.exception("run %s (%s) failed in its graph", run.id, run.workcell)
            error = {"code": "internal_error", "message": f"{type(exc).__name__} in the {run.workcell} graph"}
            return self._fail(run, error, ctx)
        if paused is not None:
            return self._pause(run, paused, ctx)
        assert state is not None  # read above
        output = workcell.output(state)
        status: Literal["succeeded", "rejected"] = "rejected" if plan.refused else "succeeded"
        ledger = self._ledger(f"run.{status}", {})
        return self._settle(
            run, ctx, to=status, final=[("end", {"status": status})], ledger=ledger, output=output
        )

    def _settle(
        self,
        run: RunRecord,
        ctx: RunContext | None,
        *,
        to: RunStatus,
        final: list[tuple[str, dict[str, Any]]],
        ledger: Within,
        expect: frozenset[str] = frozenset({"running"}),
        **values: Any,
    ) -> RunRecord:
        """Change the run's status with its buffered events, its cost, ``final`` events and its
        ``ledger`` entry in one transaction; then tell the live listener about ``final``.
        ``ApprovalConflict`` if the run is not in ``expect`` (the buffered events are then stored on
        their own, and no ledger entry is written)."""
        pending, cost = ctx.take_pending() if ctx is not None else ([], 0.0)
        now = self.runs.now()
        events = [*pending, *(PendingEvent(kind, payload, now) for kind, payload in final)]
        try:
            settled = self.runs.transition(
                run.id,
                tenant=run.tenant,
                to=to,
                expect=expect,
                events=events,
                add_cost_usd=cost,
                after=ctx.last_seq if ctx is not None else None,
                within=ledger,
                **values,
            )
        except ApprovalConflict:
            if ctx is not None:
                ctx.restore_pending(pending, cost)
                ctx.flush()
            raise
        except BaseException:  # nothing was written (e.g. the ledger refused): the events stay buffered
            if ctx is not None:
                ctx.restore_pending(pending, cost)
            raise
        if ctx is not None:
            for kind, payload in final:
                ctx.live(kind, payload)
        return settled

    async def _plan(self, graph: Any, config: Any, run: RunRecord, workcell: Workcell) -> _Plan:
        """Start, resume or continue: read from the thread's last checkpoint (see the module docstring)."""
        snapshot = await graph.aget_state(config)
        if (snapshot.metadata or {}).get(RUN_KEY) != run.id:
            return _Plan(payload=workcell.initial_state(run.input))  # this run has not touched its thread
        if snapshot.interrupts:
            asked = dict(snapshot.interrupts[0].value)
            approval = self.approvals.get(str(asked.get("approval_id")), tenant=run.tenant)
            if approval.status == "pending":
                return _Plan(paused=asked)
            approved = approval.status == "granted"
            decision = {
                "approved": approved,
                "approval_id": approval.id,
                "decided_by": approval.decided_by,
                "note": approval.decision_note,
            }
            return _Plan(payload=Command(resume=decision), refused=not approved)
        refused = self._refused(run)
        if snapshot.next:
            return _Plan(payload=None, refused=refused)  # a redelivery: continue from the last checkpoint
        return _Plan(finished=True, refused=refused)  # the graph ended before the status was recorded

    def _refused(self, run: RunRecord) -> bool:
        if run.approval_id is None:
            return False
        return self.approvals.get(run.approval_id, tenant=run.tenant).status in {"refused", "expired"}

    async def _stream(
        self, graph: Any, payload: Any, config: Any, nodes: _NodeEvents
    ) -> dict[str, Any] | None:
        """Run the graph, turning its stream into run events; returns the interrupt's value if it paused."""
        paused: dict[str, Any] | None = None
        async for mode, chunk in graph.astream(
            payload,
            config,
            context=nodes.ctx,
            stream_mode=["tasks", "updates", "custom"],
            durability="sync",  # each step's checkpoint is stored before the next step starts: a crash
            # mid-node resumes from the step before it, and the state read after the run is the last one
        ):
            if mode == "custom":
                nodes.ctx.emit("custom", chunk if isinstance(chunk, dict) else {"value": chunk})
            elif mode == "tasks":
                nodes.task(chunk)
            elif isinstance(chunk, dict) and "__interrupt__" in chunk:
                paused = dict(chunk["__interrupt__"][0].value)
        return paused

    def _pause(self, run: RunRecord, asked: Mapping[str, Any], ctx: RunContext) -> RunRecord:
        approval_id = asked.get("approval_id")
        final = [("waiting", {"approval_id": approval_id, "action": asked.get("action")})]
        ledger = self._ledger("run.waiting", {"approval_id": approval_id, "action": asked.get("action")})
        return self._settle(run, ctx, to="waiting", final=final, ledger=ledger, approval_id=approval_id)

    def _fail(
        self,
        run: RunRecord,
        error: dict[str, Any],
        ctx: RunContext | None,
        *,
        expect: frozenset[str] = frozenset({"running"}),
    ) -> RunRecord:
        final = [("error", error), ("end", {"status": "failed"})]
        ledger = self._ledger("run.failed", {"error_code": error.get("code")})
        try:
            return self._settle(run, ctx, to="failed", final=final, ledger=ledger, expect=expect, error=error)
        except ApprovalConflict:  # someone else settled the run meanwhile (e.g. dead-lettered it)
            return self.runs.get(run.id, tenant=run.tenant)

    def _ledger(self, kind: str, extra: Mapping[str, Any]) -> Within:
        """Writes the ledger entry ``kind`` of the run as written, in the transaction that writes it."""
        record = self._record

        def within(conn: Connection, run: RunRecord) -> None:
            if record is not None:
                payload = {
                    "tenant": run.tenant,
                    "principal_id": run.principal_id,
                    "run_id": run.id,
                    "workcell": run.workcell,
                    "status": run.status,
                    "cost_usd": run.cost_usd,
                    **extra,
                }
                record(kind, payload, conn=conn)

        return within

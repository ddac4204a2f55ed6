"""Workcell runs over HTTP: start, list, inspect, approve or reject, and follow as Server-Sent Events.

* ``POST /v1/workcells/{name}/runs`` authorises the workcell's action for the caller (the runner's
  ``prepare``), records a queued run and hands it to the dispatcher: in this server's loop, or to a Celery
  worker when MAESTRO_BROKER_URL is set. 202 with the run record.
* ``POST /v1/runs/{id}/approve|reject`` records the decision synchronously (``approve:<workcell>``, never
  the requester, never a bot; one decision only: 409 for the second) and hands the resume to the
  dispatcher.
* ``GET /v1/runs/{id}/events`` streams the run's events (``id:`` = the event's seq) from ``Last-Event-ID``
  or ``?after=`` and follows new ones until the run ends or waits for an approval.

Reads need ``runs:read``. The tenant is the caller's: another tenant's run id is a 404.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from maestro.api.deps import CurrentAuthority, ServicesDep
from maestro.core.authority import Authority
from maestro.core.errors import InvalidRequest
from maestro.workers.dispatch import RunDispatcher, follow_run

router = APIRouter(prefix="/v1", tags=["runs"])

KEEPALIVE_S = 15.0
"""Seconds between keep-alive comments on an idle event stream."""
POLL_S = 0.2
"""How often the event stream looks for new events."""

RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Status = Literal["queued", "running", "waiting", "succeeded", "failed", "rejected"]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(default_factory=dict, description="The workcell's input.")
    thread_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,80}$", description="Continue this conversation thread."
    )


class RunPublic(BaseModel):
    id: str
    workcell: str
    principal_id: str
    thread_id: str
    status: Status
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    approval_id: str | None
    cost_usd: float
    attempts: int
    created_at: str
    updated_at: str


class RunList(BaseModel):
    runs: list[RunPublic]
    next_offset: int | None = Field(description="Pass as ?offset= for the next page; null on the last.")


class WorkcellPublic(BaseModel):
    name: str
    description: str
    action: str


class WorkcellList(BaseModel):
    workcells: list[WorkcellPublic]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")


def _public(record: Any) -> RunPublic:
    doc = record.to_dict()
    doc.pop("tenant", None)
    return RunPublic(**doc)


def _read(services: ServicesDep, authority: Authority, run_id: str | None = None) -> None:
    resource: dict[str, Any] = {"kind": "run", "tenant": authority.tenant}
    if run_id is not None:
        resource["id"] = run_id
    services.authorizer.authorize(authority, "runs.read", resource)


def _dispatcher(request: Request, services: ServicesDep) -> RunDispatcher:
    """One dispatcher per app (its background runs are awaited at shutdown)."""
    dispatcher: RunDispatcher | None = getattr(request.app.state, "run_dispatcher", None)
    if dispatcher is None:
        dispatcher = services.dispatcher(background=True)
        request.app.state.run_dispatcher = dispatcher
    return dispatcher


@router.get("/workcells", response_model=WorkcellList)
def list_workcells(services: ServicesDep, authority: CurrentAuthority) -> WorkcellList:
    """The workcells this installation knows (entry points ``maestro.workcells``)."""
    from maestro.agents.runtime.registry import workcells

    _read(services, authority)
    return WorkcellList(
        workcells=[
            WorkcellPublic(name=w.name, description=w.description, action=w.action)
            for w in workcells().values()
        ]
    )


@router.post(
    "/workcells/{name}/runs",
    status_code=202,
    response_model=RunPublic,
    responses={404: {"description": "no such workcell"}, 503: {"description": "broker unavailable"}},
)
async def start_run(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    body: RunCreate,
    request: Request,
    services: ServicesDep,
    authority: CurrentAuthority,
) -> RunPublic:
    """Start a run of ``name`` as the caller; it executes in the background (follow ``/events``)."""
    runner = services.runner()
    run = runner.prepare(name, body.input, authority, thread_id=body.thread_id)
    return _public(await _dispatcher(request, services).submit(run))


@router.get("/runs", response_model=RunList)
def list_runs(
    services: ServicesDep,
    authority: CurrentAuthority,
    status: Annotated[Status | None, Query()] = None,
    workcell: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RunList:
    """The caller's tenant's runs, newest first."""
    from maestro.agents.runtime.store import RunStore

    _read(services, authority)
    found = RunStore(services.engine).list(
        tenant=authority.tenant, status=status, workcell=workcell, limit=limit + 1, offset=offset
    )
    more = len(found) > limit
    return RunList(runs=[_public(r) for r in found[:limit]], next_offset=offset + limit if more else None)


@router.get("/runs/{run_id}", response_model=RunPublic, responses={404: {"description": "no such run"}})
def get_run(run_id: RunId, services: ServicesDep, authority: CurrentAuthority) -> RunPublic:
    from maestro.agents.runtime.store import RunStore

    _read(services, authority, run_id)
    return _public(RunStore(services.engine).get(run_id, tenant=authority.tenant))


async def _decide(
    run_id: str, approve: bool, body: Decision, request: Request, services: ServicesDep, authority: Authority
) -> RunPublic:
    runner = services.runner()
    run = runner.record_decision(run_id, authority, approve=approve, note=body.note)
    return _public(await _dispatcher(request, services).submit(run))


_DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "needs approve:<workcell>; never the requester, never a bot"},
    404: {"description": "no such run"},
    409: {"description": "already decided"},
}


@router.post(
    "/runs/{run_id}/approve", status_code=202, response_model=RunPublic, responses=_DECISION_RESPONSES
)
async def approve_run(
    run_id: RunId, body: Decision, request: Request, services: ServicesDep, authority: CurrentAuthority
) -> RunPublic:
    """Grant the run's pending approval; the run resumes in the background."""
    return await _decide(run_id, True, body, request, services, authority)


@router.post(
    "/runs/{run_id}/reject", status_code=202, response_model=RunPublic, responses=_DECISION_RESPONSES
)
async def reject_run(
    run_id: RunId, body: Decision, request: Request, services: ServicesDep, authority: CurrentAuthority
) -> RunPublic:
    """Refuse the run's pending approval; the run ends 'rejected' without acting."""
    return await _decide(run_id, False, body, request, services, authority)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "no such run"}},
)
def run_events(
    run_id: RunId,
    request: Request,
    services: ServicesDep,
    authority: CurrentAuthority,
    after: Annotated[int, Query(ge=0, description="Replay events with seq > after.")] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The run's events as ``text/event-stream``; stops when the run ends or waits for an approval."""
    from maestro.agents.runtime.store import RunStore

    _read(services, authority, run_id)
    store = RunStore(services.engine)
    store.get(run_id, tenant=authority.tenant)  # 404 before the stream starts
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise InvalidRequest("Last-Event-ID must be an event seq (a non-negative integer)")
        after = int(last_event_id)
    stream = _sse(request, store, run_id, tenant=authority.tenant, after=after)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(request: Request, store: Any, run_id: str, *, tenant: str, after: int) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    idle_since = time.monotonic()
    async for event in follow_run(store, run_id, tenant=tenant, after=after, poll_s=POLL_S):
        if event is None:
            if await request.is_disconnected():
                return
            if time.monotonic() - idle_since >= KEEPALIVE_S:
                idle_since = time.monotonic()
                yield ": keep-alive\n\n"
            continue
        idle_since = time.monotonic()
        data = json.dumps(event, separators=(",", ":"), default=str)
        yield f"id: {event['seq']}\nevent: {event['kind']}\ndata: {data}\n\n"

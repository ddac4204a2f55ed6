"""The runs API in-process: start (202), follow over SSE, approve/reject, list, tenancy; a real app and DB.

The test workcell drafts a plan with a streamed model call (``FunctionLLM``, the only fake), asks for an
approval, then calls a tool and performs an effect (a line appended to a file) exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell, register, unregister
from maestro.agents.runtime.state import BaseState
from maestro.api.main import create_app
from maestro.api.routes import runs as runs_routes
from maestro.core.errors import InvalidRequest
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM


class CellState(BaseState, total=False):
    target: str
    out: str
    pause_s: float
    plan: str
    approved: bool
    done: str


async def draft(state: CellState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    await asyncio.sleep(state.get("pause_s", 0.0))
    result = await runtime.context.complete(
        task="chat", messages=[{"role": "user", "content": f"plan {state['target']}"}], stream=True
    )
    return {"plan": result.text}


async def ask(state: CellState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    decision = await runtime.context.approve(
        "ask", action="deploy", resource={"target": state["target"]}, reason=state["plan"]
    )
    return {"approved": bool(decision["approved"])}


async def act(state: CellState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context

    async def deploy() -> str:
        with Path(state["out"]).open("a") as handle:
            handle.write(f"{ctx.run_id}\n")
        return f"deployed {state['target']}"

    async def perform() -> str:
        return str(await ctx.effect("act", "deploy", deploy))

    return {"done": await ctx.tool_call("graph.query", {"graph": state["target"]}, perform)}


def _build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CellState, context_schema=RunContext)
    graph.add_node("draft", draft)
    graph.add_node("ask", ask)
    graph.add_node("act", act)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "ask")
    graph.add_conditional_edges("ask", lambda s: "act" if s.get("approved") else END, ["act", END])
    graph.add_edge("act", END)
    return graph


def _initial(payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(payload.get("target"), str) or not isinstance(payload.get("out"), str):
        raise InvalidRequest('input must be {"target": str, "out": str}')
    return {"target": payload["target"], "out": payload["out"], "pause_s": float(payload.get("pause_s", 0))}


CELL = Workcell(
    name="remediate",  # a workcell the approval policy knows (approve:remediate)
    description="test: plan, approve, act once",
    action="chat",
    build=_build,
    initial_state=_initial,
    output=lambda s: {"plan": s.get("plan"), "done": s.get("done"), "approved": s.get("approved")},
)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    previous = register(CELL)
    llm = FunctionLLM(lambda messages, call: "roll the change out to one zone first, then all of them")
    try:
        with TestClient(create_app(settings, client=llm)) as test_client:
            yield test_client
    finally:
        unregister(CELL.name, restore=previous)


def key_for(client: TestClient, tenant: str, name: str, roles: list[str]) -> dict[str, str]:
    services = client.app.state.services  # type: ignore[attr-defined]
    principal = services.principals.create(tenant, name, roles=roles, kind="user")
    plaintext, _ = services.api_keys.create(principal.id, "test", tenant=tenant)
    return {"Authorization": f"Bearer {plaintext}"}


def sse(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, str]]:
    """The messages of one event stream (until the server ends it); comments as {"comment": ...}."""
    messages: list[dict[str, str]] = []
    current: dict[str, str] = {}
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    messages.append(current)
                current = {}
            elif line.startswith(":"):
                messages.append({"comment": line[1:].strip()})
            else:
                field, _, value = line.partition(":")
                current[field] = value.lstrip()
    return messages


def events_of(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [m for m in messages if "event" in m]


def test_start_follow_approve_and_resume_over_http(client: TestClient, tmp_path: Path) -> None:
    alice = key_for(client, "acme", "alice", ["engineer"])
    bob = key_for(client, "acme", "bob", ["admin"])
    carol = key_for(client, "acme", "carol", ["engineer"])  # no approve:remediate
    out = tmp_path / "deploys.log"

    started = client.post(
        "/v1/workcells/remediate/runs", json={"input": {"target": "api", "out": str(out)}}, headers=alice
    )
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] in {"queued", "running"} and run["workcell"] == "remediate"

    first = events_of(sse(client, f"/v1/runs/{run['id']}/events", alice))
    kinds = [m["event"] for m in first if m["event"] != "token"]
    assert kinds == ["node_start", "model", "node", "node_start", "effect", "approval", "waiting"]
    assert [int(m["id"]) for m in first] == list(range(1, len(first) + 1))  # id: is the event's seq
    tokens = [m for m in first if m["event"] == "token"]
    assert tokens and '"text"' in tokens[0]["data"]
    assert client.get(f"/v1/runs/{run['id']}", headers=alice).json()["status"] == "waiting"

    denied = client.post(f"/v1/runs/{run['id']}/approve", json={"note": "me?"}, headers=carol)
    assert denied.status_code == 403
    own = client.post(f"/v1/runs/{run['id']}/approve", json={}, headers=alice)  # never the requester
    assert own.status_code == 403
    approved = client.post(f"/v1/runs/{run['id']}/approve", json={"note": "go"}, headers=bob)
    assert approved.status_code == 202, approved.text
    again = client.post(f"/v1/runs/{run['id']}/approve", json={"note": "again"}, headers=bob)
    assert again.status_code == 409
    rejected_late = client.post(f"/v1/runs/{run['id']}/reject", json={}, headers=bob)
    assert rejected_late.status_code == 409

    last_seen = first[-1]["id"]
    rest = events_of(sse(client, f"/v1/runs/{run['id']}/events", {**alice, "Last-Event-ID": last_seen}))
    assert int(rest[0]["id"]) == int(last_seen) + 1  # replay starts after Last-Event-ID
    assert [m["event"] for m in rest] == [
        "node_start",
        "node",
        "node_start",
        "tool",
        "effect",
        "tool",
        "node",
        "end",
    ]
    done = client.get(f"/v1/runs/{run['id']}", headers=alice).json()
    assert done["status"] == "succeeded" and done["output"]["done"] == "deployed api"
    assert out.read_text() == f"{run['id']}\n"
    replay = events_of(sse(client, f"/v1/runs/{run['id']}/events?after=3", alice))
    assert int(replay[0]["id"]) == 4 and replay[-1]["event"] == "end"


def test_reject_ends_the_run_without_acting(client: TestClient, tmp_path: Path) -> None:
    alice = key_for(client, "acme", "alice", ["engineer"])
    bob = key_for(client, "acme", "bob", ["admin"])
    out = tmp_path / "deploys.log"
    run = client.post(
        "/v1/workcells/remediate/runs", json={"input": {"target": "db", "out": str(out)}}, headers=alice
    ).json()
    sse(client, f"/v1/runs/{run['id']}/events", alice)
    assert client.post(f"/v1/runs/{run['id']}/reject", json={"note": "no"}, headers=bob).status_code == 202
    tail = events_of(sse(client, f"/v1/runs/{run['id']}/events?after=1", alice))
    assert tail[-1]["event"] == "end" and '"rejected"' in tail[-1]["data"]
    assert client.get(f"/v1/runs/{run['id']}", headers=alice).json()["status"] == "rejected"
    assert not out.exists()


def test_listing_filters_pages_and_tenancy(client: TestClient, tmp_path: Path) -> None:
    alice = key_for(client, "acme", "alice", ["engineer"])
    mallory = key_for(client, "globex", "mallory", ["admin"])
    viewer = key_for(client, "acme", "vic", ["viewer"])  # runs:read, no chat
    ids = []
    for n in range(3):
        body = {"input": {"target": f"t{n}", "out": str(tmp_path / "x.log")}}
        ids.append(client.post("/v1/workcells/remediate/runs", json=body, headers=alice).json()["id"])
    chat = client.post("/v1/workcells/chat/runs", json={"input": {"message": "hi"}}, headers=alice).json()
    for run_id in [*ids, chat["id"]]:
        sse(client, f"/v1/runs/{run_id}/events", alice)

    page = client.get("/v1/runs?limit=2", headers=alice).json()
    assert len(page["runs"]) == 2 and page["next_offset"] == 2
    rest = client.get("/v1/runs?limit=2&offset=2", headers=alice).json()
    assert rest["next_offset"] is None
    assert {r["id"] for r in page["runs"] + rest["runs"]} == {*ids, chat["id"]}
    waiting = client.get("/v1/runs?status=waiting&workcell=remediate", headers=alice).json()["runs"]
    assert sorted(r["id"] for r in waiting) == sorted(ids)
    chats = client.get("/v1/runs?workcell=chat", headers=viewer).json()["runs"]
    assert [r["id"] for r in chats] == [chat["id"]] and chats[0]["status"] == "succeeded"
    assert chats[0]["output"]["reply"].startswith("roll the change out")
    names = {w["name"] for w in client.get("/v1/workcells", headers=alice).json()["workcells"]}
    assert {"chat", "remediate"} <= names

    # another tenant: not found, whatever the route; nothing written
    for path in (f"/v1/runs/{ids[0]}", f"/v1/runs/{ids[0]}/events"):
        assert client.get(path, headers=mallory).status_code == 404
    assert client.post(f"/v1/runs/{ids[0]}/approve", json={}, headers=mallory).status_code == 404
    assert client.get("/v1/runs", headers=mallory).json()["runs"] == []
    # refusals before anything is recorded
    assert client.post("/v1/workcells/remediate/runs", json={"input": {}}, headers=viewer).status_code == 403
    assert client.post("/v1/workcells/nope/runs", json={"input": {}}, headers=alice).status_code == 404
    assert client.post("/v1/workcells/remediate/runs", json={"input": {}}, headers=alice).status_code == 422
    assert client.get("/v1/runs", headers={}).status_code == 401
    assert len(client.get("/v1/runs?limit=100", headers=alice).json()["runs"]) == 4


def test_event_stream_keeps_alive_and_survives_a_disconnect(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs_routes, "KEEPALIVE_S", 0.05)
    alice = key_for(client, "acme", "alice", ["engineer"])
    body = {"input": {"target": "slow", "out": str(tmp_path / "x.log"), "pause_s": 0.8}}
    run = client.post("/v1/workcells/remediate/runs", json=body, headers=alice).json()

    with client.stream("GET", f"/v1/runs/{run['id']}/events", headers=alice) as response:
        for line in response.iter_lines():  # the client goes away after the first event
            if line.startswith("event:"):
                break
    messages = sse(client, f"/v1/runs/{run['id']}/events", alice)
    assert events_of(messages)[-1]["event"] == "waiting"
    slow = client.post(
        "/v1/workcells/remediate/runs",
        json={"input": {**body["input"], "target": "slower"}},
        headers=alice,
    ).json()
    started = time.monotonic()
    followed = sse(client, f"/v1/runs/{slow['id']}/events", alice)
    assert {"comment": "keep-alive"} in followed  # idle while the first node sleeps
    assert events_of(followed)[-1]["event"] == "waiting" and time.monotonic() - started < 30

"""The workcell runtime on real LangGraph checkpoints (SQLite and PostgreSQL), the real policy and ledger.

A test workcell (registered as ``remediate``, a workcell the approval policy knows) drafts a plan with
the model, asks a human to approve, then performs an effect (an append to a file outside the DB, so a
duplicate would be visible) exactly once. Only the model is fake (``FunctionLLM``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from maestro.agents.runtime.context import RunCaps, RunContext
from maestro.agents.runtime.registry import Workcell, get_workcell, register, unregister
from maestro.agents.runtime.state import BaseState
from maestro.api.container import Services, build_services
from maestro.core.authority import Authority, Principal
from maestro.core.errors import ApprovalConflict, InvalidRequest, NotFound, PolicyDenied
from maestro.core.roles import scopes_for
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM

EFFECT_FILE = "effects.log"


class DeployState(BaseState, total=False):
    target: str
    plan: str
    approved: bool
    done: str


async def draft(state: DeployState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    result = await runtime.context.complete(
        task="chat", messages=[{"role": "user", "content": f"plan a deploy of {state['target']}"}]
    )
    return {"plan": result.text, "budget_used_usd": result.cost_usd}


async def ask(state: DeployState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    decision = await runtime.context.approve(
        "ask", action="deploy", resource={"target": state["target"]}, reason=state["plan"]
    )
    return {"approved": bool(decision["approved"])}


async def act(state: DeployState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    log = Path(ctx.tools["effect_dir"]) / EFFECT_FILE

    async def deploy() -> str:
        with log.open("a") as handle:
            handle.write(f"{ctx.run_id} {state['target']}\n")
        return f"deployed {state['target']}"

    return {"done": await ctx.effect("act", f"deploy:{state['target']}", deploy)}


def _build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(DeployState, context_schema=RunContext)
    graph.add_node("draft", draft)
    graph.add_node("ask", ask)
    graph.add_node("act", act)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "ask")
    graph.add_conditional_edges("ask", lambda s: "act" if s.get("approved") else END, ["act", END])
    graph.add_edge("act", END)
    return graph


def _initial(payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(payload.get("target"), str):
        raise InvalidRequest('deploy input must be {"target": "<name>"}')
    return {"target": payload["target"]}


NAME = "remediate"
DEPLOY = Workcell(
    name=NAME,
    description="test workcell: plan, approve, act once",
    action="chat",
    build=_build,
    initial_state=_initial,
    output=lambda s: {"plan": s.get("plan"), "done": s.get("done"), "approved": s.get("approved")},
)


def _kinds(kinds: Iterable[str]) -> list[str]:
    """Event kinds without the token events (how many there are depends on timing)."""
    return [k for k in kinds if k != "token"]


def _authority(name: str, roles: list[str], tenant: str = "acme") -> Authority:
    principal = Principal(
        id=f"prn-{name}", tenant=tenant, name=name, kind="user", roles=tuple(roles), scopes=scopes_for(roles)
    )
    return Authority(principal=principal, scopes=principal.scopes)


@pytest.fixture(params=["sqlite", "postgres"])
def run_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    return Settings(data_dir=tmp_path / "var", database_url=url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def services(run_settings: Settings, tmp_path: Path) -> Iterator[Services]:
    previous = register(DEPLOY)
    built = build_services(run_settings, client=FunctionLLM(lambda m, c: "step 1: ship it"))
    yield built
    built.close()
    unregister(NAME, restore=previous)
    unregister("spin")


def _runner(services: Services, tmp_path: Path) -> Any:
    runner = services.runner()
    runner.tools = {"effect_dir": str(tmp_path)}
    return runner


def test_approval_pauses_then_resume_acts_exactly_once(services: Services, tmp_path: Path) -> None:
    runner = _runner(services, tmp_path)
    events: list[tuple[str, dict[str, Any]]] = []
    alice, bob = _authority("alice", ["engineer"]), _authority("bob", ["admin"])
    run = asyncio.run(
        runner.start(NAME, {"target": "api"}, alice, listener=lambda k, p: events.append((k, p)))
    )
    assert run.status == "waiting" and run.approval_id
    assert _kinds(k for k, _ in events) == [
        "node_start",
        "model",
        "node",
        "node_start",
        "effect",
        "approval",
        "waiting",
    ]
    assert "".join(p["text"] for k, p in events if k == "token") == "step 1: ship it"  # each delta, live
    assert not (tmp_path / EFFECT_FILE).exists()
    pending = runner.runs.list(tenant="acme")
    assert [r.id for r in pending if r.status == "waiting"] == [run.id]

    with pytest.raises(PolicyDenied):  # the requester cannot approve their own run
        asyncio.run(runner.decide(run.id, alice, approve=True))
    done = asyncio.run(runner.decide(run.id, bob, approve=True, note="go"))
    assert done.status == "succeeded"
    assert done.output == {"plan": "step 1: ship it", "done": "deployed api", "approved": True}
    assert (tmp_path / EFFECT_FILE).read_text() == f"{run.id} api\n"
    with pytest.raises((ApprovalConflict, InvalidRequest)):  # a second resume is refused
        asyncio.run(runner.decide(run.id, bob, approve=True))
    assert (tmp_path / EFFECT_FILE).read_text() == f"{run.id} api\n"
    kinds = _kinds(e["kind"] for e in runner.runs.events(run.id))
    assert kinds[:7] == ["node_start", "model", "node", "node_start", "effect", "approval", "waiting"]
    assert kinds[7:] == ["node_start", "node", "node_start", "effect", "node", "end"]  # ask replays; act
    assert kinds.count("effect") == 2  # the approval request and the deploy, once each
    ledger = [e.kind for e in services.ledger.entries(tenant="acme", limit=50)]
    assert {"run.started", "run.waiting", "approval.requested", "approval.granted", "run.succeeded"} <= set(
        ledger
    )


def test_refusal_ends_the_run_without_the_effect(services: Services, tmp_path: Path) -> None:
    runner = _runner(services, tmp_path)
    run = asyncio.run(runner.start(NAME, {"target": "db"}, _authority("alice", ["engineer"])))
    done = asyncio.run(runner.decide(run.id, _authority("bob", ["admin"]), approve=False, note="not today"))
    assert done.status == "rejected" and done.output is not None and done.output["approved"] is False
    assert not (tmp_path / EFFECT_FILE).exists()


def test_concurrent_decisions_resume_once(services: Services, tmp_path: Path) -> None:
    runner = _runner(services, tmp_path)
    run = asyncio.run(runner.start(NAME, {"target": "web"}, _authority("alice", ["engineer"])))
    bob, carol = _authority("bob", ["admin"]), _authority("carol", ["admin"])

    async def both() -> list[Any]:
        return await asyncio.gather(
            runner.decide(run.id, bob, approve=True),
            runner.decide(run.id, carol, approve=True),
            return_exceptions=True,
        )

    outcomes = asyncio.run(both())
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(
        isinstance(o, (ApprovalConflict, InvalidRequest)) for o in outcomes if isinstance(o, BaseException)
    )
    assert (tmp_path / EFFECT_FILE).read_text().count("web") == 1


def test_resume_in_another_process(services: Services, run_settings: Settings, tmp_path: Path) -> None:
    runner = _runner(services, tmp_path)
    run = asyncio.run(runner.start(NAME, {"target": "edge"}, _authority("alice", ["engineer"])))
    services.close()  # this process lets go; another one resumes from the checkpoint
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_runtime import DEPLOY, _authority
        from maestro.agents.runtime.registry import register
        from maestro.api.container import build_services
        from maestro.core.settings import Settings
        from maestro.router.testing import FunctionLLM
        register(DEPLOY)
        settings = Settings(
            data_dir={str(run_settings.data_dir)!r},
            database_url={run_settings.database_url!r},
            _env_file=None,
        )
        services = build_services(settings, client=FunctionLLM(lambda m, c: "unused"))
        runner = services.runner()
        runner.tools = {{"effect_dir": {str(tmp_path)!r}}}
        done = asyncio.run(runner.decide({run.id!r}, _authority("bob", ["admin"]), approve=True))
        services.close()
        print(json.dumps(done.to_dict()))
        """
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    doc = json.loads(finished.stdout.strip().splitlines()[-1])
    assert doc["status"] == "succeeded" and doc["output"]["done"] == "deployed edge"
    assert (tmp_path / EFFECT_FILE).read_text() == f"{run.id} edge\n"


def test_refusals_before_anything_runs(services: Services, tmp_path: Path) -> None:
    runner = _runner(services, tmp_path)
    with pytest.raises(NotFound, match="no workcell"):
        asyncio.run(runner.start("nope", {}, _authority("alice", ["engineer"])))
    with pytest.raises(InvalidRequest, match="deploy input"):
        asyncio.run(runner.start(NAME, {"target": 3}, _authority("alice", ["engineer"])))
    with pytest.raises(PolicyDenied):  # mlops holds no 'chat' scope
        asyncio.run(runner.start(NAME, {"target": "x"}, _authority("mo", ["mlops"])))
    assert runner.runs.list(tenant="acme") == []
    run = asyncio.run(runner.start(NAME, {"target": "x"}, _authority("alice", ["engineer"])))
    with pytest.raises(NotFound):  # another tenant cannot see, let alone decide, the run
        asyncio.run(runner.decide(run.id, _authority("eve", ["admin"], tenant="globex"), approve=True))


def test_budget_and_recursion_caps_fail_cleanly(services: Services, tmp_path: Path) -> None:
    runner = _runner(services, tmp_path)
    broke = asyncio.run(
        runner.start(NAME, {"target": "x"}, _authority("alice", ["engineer"]), caps=RunCaps(budget_usd=0.0))
    )
    assert broke.status == "failed" and broke.error is not None and broke.error["code"] == "budget_exceeded"

    def loop_build() -> StateGraph[Any, Any, Any, Any]:
        graph: StateGraph[Any, Any, Any, Any] = StateGraph(BaseState, context_schema=RunContext)
        graph.add_node("spin", lambda s: {"artifacts": {"n": 1}})
        graph.add_edge(START, "spin")
        graph.add_edge("spin", "spin")
        return graph

    register(Workcell("spin", "test", "chat", loop_build, lambda p: {}, lambda s: {}, recursion_limit=5))
    spun = asyncio.run(runner.start("spin", {}, _authority("alice", ["engineer"])))
    assert spun.status == "failed" and spun.error is not None and spun.error["code"] == "recursion_limit"


def test_chat_keeps_a_thread(services: Services, tmp_path: Path) -> None:
    services.router.client = FunctionLLM(lambda messages, c: f"you said {len(messages)} things")
    runner = _runner(services, tmp_path)
    alice = _authority("alice", ["engineer"])
    first = asyncio.run(runner.start("chat", {"message": "hi"}, alice))
    second = asyncio.run(runner.start("chat", {"message": "again"}, alice, thread_id=first.thread_id))
    assert first.output is not None and first.output["reply"] == "you said 1 things"
    assert (
        second.output is not None and second.output["reply"] == "you said 3 things"
    )  # user, assistant, user
    assert second.output["turns"] == 2
    assert get_workcell("chat").action == "chat"


def test_tokens_reach_the_listener_one_by_one_and_the_store_coalesced(
    services: Services, tmp_path: Path
) -> None:
    words = [f"word{i}" for i in range(60)]
    services.router.client = FunctionLLM(lambda messages, c: " ".join(words))
    runner = _runner(services, tmp_path)
    live: list[str] = []
    run = asyncio.run(
        runner.start(
            "chat",
            {"message": "talk"},
            _authority("alice", ["engineer"]),
            listener=lambda k, p: live.append(p["text"]) if k == "token" else None,
        )
    )
    assert run.status == "succeeded" and run.output is not None
    stored = [e["payload"]["text"] for e in runner.runs.events(run.id) if e["kind"] == "token"]
    assert len(live) == len(words)  # every delta, live
    assert "".join(live) == "".join(stored) == run.output["reply"]
    assert len(stored) <= len("".join(stored)) // 64 + 1  # one stored event per 64 characters at most


def test_token_coalescer_flushes_by_size_and_time() -> None:
    from maestro.agents.runtime.context import TokenCoalescer

    now = [0.0]
    stored: list[str] = []
    coalescer = TokenCoalescer(stored.append, flush_s=0.1, flush_chars=10, clock=lambda: now[0])
    for piece in ("abc", "def", "ghij"):  # 10 characters: flushed by size
        coalescer.add(piece)
    coalescer.add("k")
    now[0] = 0.2
    coalescer.add("l")  # 0.2 s after "k": flushed by time
    coalescer.add("m")
    coalescer.flush()
    assert stored == ["abcdefghij", "kl", "m"]


class ToolState(BaseState, total=False):
    mode: str


async def use_tools(state: ToolState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context

    async def fine() -> str:
        return "rows"

    async def broken() -> str:
        raise InvalidRequest("the graph has no such label")

    await ctx.tool_call("graph.query", {"graph": "g", "query": "MATCH (n) RETURN n"}, fine)
    if state.get("mode") == "error":
        await ctx.tool_call("graph.query", {"graph": "g"}, broken)
    if state.get("mode") == "refused":  # pr.open needs a repository on the tenant's allow-list
        await ctx.tool_call("pr.open", {"repo": "evil/repo", "branch": "x"}, fine)
    return {}


def test_tool_calls_emit_start_and_end_and_refusals_stop_before_acting(
    services: Services, tmp_path: Path
) -> None:
    def build() -> StateGraph[Any, Any, Any, Any]:
        graph: StateGraph[Any, Any, Any, Any] = StateGraph(ToolState, context_schema=RunContext)
        graph.add_node("use_tools", use_tools)
        graph.add_edge(START, "use_tools")
        graph.add_edge("use_tools", END)
        return graph

    register(Workcell("spin", "tools", "chat", build, lambda p: {"mode": p["mode"]}, lambda s: {}))
    runner = _runner(services, tmp_path)
    alice = _authority("alice", ["engineer"])

    def tool_events(mode: str) -> tuple[str, list[dict[str, Any]]]:
        run = asyncio.run(runner.start("spin", {"mode": mode}, alice))
        return run.status, [e["payload"] for e in runner.runs.events(run.id) if e["kind"] == "tool"]

    status, ok = tool_events("ok")
    assert status == "succeeded"
    assert [(e["phase"], e.get("ok")) for e in ok] == [("start", None), ("end", True)]
    assert ok[0]["arg_names"] == ["graph", "query"] and "MATCH" not in json.dumps(ok)  # names, never values
    assert ok[1]["ms"] >= 0
    status, failed = tool_events("error")
    assert status == "failed"
    assert failed[-1]["ok"] is False and failed[-1]["error"]["code"] == "invalid_request"
    status, refused = tool_events("refused")
    assert status == "failed" and len(refused) == 2  # the refused call never started
    denials = [e for e in services.ledger.entries(tenant="acme", limit=50) if e.kind == "policy.denied"]
    assert denials, "the refusal is in the ledger"


# -- recovery of runs a dead process left behind (in-process mode, RELIABILITY #25) ---------------------


class CrashState(BaseState, total=False):
    target: str
    prepared: bool
    done: str


async def prepare_step(state: CrashState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    runtime.context.emit("note", {"step": "prepared"})
    return {"prepared": True}


async def act_then_hang(state: CrashState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    log = Path(ctx.tools["effect_dir"]) / EFFECT_FILE

    async def deploy() -> str:
        with log.open("a") as handle:
            handle.write(f"{ctx.run_id} {state['target']}\n")
        return f"deployed {state['target']}"

    done = await ctx.effect("act", f"deploy:{state['target']}", deploy)
    if ctx.tools.get("hang"):  # the first process stops here and is killed
        (Path(ctx.tools["effect_dir"]) / "acted").write_text(ctx.run_id)
        await asyncio.sleep(3600)
    return {"done": done}


def _crash_build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CrashState, context_schema=RunContext)
    graph.add_node("prepare", prepare_step)
    graph.add_node("act", act_then_hang)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "act")
    graph.add_edge("act", END)
    return graph


CRASH = Workcell(
    name="crashy",
    description="test workcell: an effect, then a hang in the same node",
    action="chat",
    build=_crash_build,
    initial_state=lambda p: {"target": str(p["target"])},
    output=lambda s: {"done": s.get("done")},
)


def test_a_run_killed_mid_node_is_recovered_with_its_effect_once(
    services: Services, run_settings: Settings, tmp_path: Path
) -> None:
    import os
    import signal
    import time

    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_runtime import CRASH, _authority
        from maestro.agents.runtime.registry import register
        from maestro.api.container import build_services
        from maestro.core.settings import Settings
        from maestro.router.testing import FunctionLLM
        register(CRASH)
        settings = Settings(
            data_dir={str(run_settings.data_dir)!r},
            database_url={run_settings.database_url!r},
            _env_file=None,
        )
        services = build_services(settings, client=FunctionLLM(lambda m, c: "unused"))
        runner = services.runner()
        runner.tools = {{"effect_dir": {str(tmp_path)!r}, "hang": True}}
        asyncio.run(runner.start("crashy", {{"target": "api"}}, _authority("alice", ["engineer"])))
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    marker = tmp_path / "acted"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, "the child never reached its effect"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # mid-node: after the effect, before the node's writes
    child.wait(timeout=30)
    if child.stderr is not None:
        child.stderr.close()
    run_id = marker.read_text()

    previous = register(CRASH)
    try:
        first, second = _runner(services, tmp_path), _runner(services, tmp_path)
        left = first.runs.get(run_id, tenant="acme")
        assert left.status == "running"  # nothing else would ever move it
        kinds = [e["kind"] for e in first.runs.events(run_id)]
        assert kinds[:3] == ["node_start", "note", "node"]  # the completed node's events survived
        assert asyncio.run(first.recover(older_than_s=3600)) == []  # not stale yet: a live process may own it
        time.sleep(max(0.0, 1.1 - (time.time() - left.updated_at.timestamp())))

        async def both() -> list[Any]:
            return await asyncio.gather(first.recover(older_than_s=1.0), second.recover(older_than_s=1.0))

        outcomes = asyncio.run(both())
        recovered = [r for batch in outcomes for r in batch]
        assert [r.id for r in recovered] == [run_id]  # one recoverer won the claim
        done = recovered[0]
        assert done.status == "succeeded" and done.output == {"done": "deployed api"}
        assert done.attempts == 2
        assert (tmp_path / EFFECT_FILE).read_text() == f"{run_id} api\n"  # the effect happened once
        events = first.runs.events(run_id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # numbered without gaps
        assert [e["kind"] for e in events][-3:] == ["node_start", "node", "end"]
    finally:
        unregister("crashy", restore=previous)


def test_a_background_dispatcher_recovers_stale_runs_when_it_starts(
    services: Services, tmp_path: Path
) -> None:
    import time

    from maestro.workers.dispatch import InProcessDispatcher

    runner = _runner(services, tmp_path)
    runner.settings = runner.settings.model_copy(update={"run_deadline_s": 0.5})
    run = runner.prepare(NAME, {"target": "api"}, _authority("alice", ["engineer"]))  # then the process died
    time.sleep(0.6)

    async def server_start() -> None:
        dispatcher = InProcessDispatcher(runner, background=True)
        dispatcher.start()
        await dispatcher.wait()
        await dispatcher.aclose()

    asyncio.run(server_start())
    assert runner.runs.get(run.id, tenant="acme").status == "waiting"  # it ran up to its approval


def test_run_ledger_entries_commit_with_the_status(services: Services, tmp_path: Path) -> None:
    """A ``run.*`` entry is written in the status change's transaction: if the ledger refuses, the
    status does not change either (and the run's evidence never lags behind its status)."""
    runner = _runner(services, tmp_path)
    alice = _authority("alice", ["engineer"])
    run = asyncio.run(runner.start(NAME, {"target": "api"}, alice))
    assert run.status == "waiting"
    entries = services.ledger.entries(tenant="acme", limit=50)
    mine = [e for e in entries if e.payload.get("run_id") == run.id and e.kind.startswith("run.")]
    assert [e.kind for e in reversed(mine)] == ["run.started", "run.waiting"]
    assert mine[0].payload["status"] == "waiting" and mine[0].payload["approval_id"] == run.approval_id

    real = runner._record
    calls: list[str] = []

    def refusing(kind: str, payload: dict[str, Any], /, *, conn: Any = None) -> None:
        calls.append(kind)
        assert conn is not None  # always inside the run's transaction
        raise RuntimeError("ledger down")

    runner._record = refusing
    with pytest.raises(RuntimeError):
        runner.prepare(NAME, {"target": "db"}, alice)
    assert not [r for r in runner.runs.list(tenant="acme") if r.input.get("target") == "db"]  # rolled back
    bob = _authority("bob", ["admin"])
    runner.record_decision(run.id, bob, approve=True)
    with pytest.raises(RuntimeError):
        asyncio.run(runner.advance(run.id, tenant="acme"))
    assert runner.runs.get(run.id, tenant="acme").status == "running"  # not succeeded without evidence
    assert calls == ["run.started", "run.succeeded"]
    runner._record = real
    assert services.ledger.verify().ok


def test_event_numbers_stay_gap_free_when_the_known_last_number_is_stale(
    services: Services, tmp_path: Path
) -> None:
    runner = _runner(services, tmp_path)
    run = asyncio.run(runner.start(NAME, {"target": "api"}, _authority("alice", ["engineer"])))
    stored = runner.runs.events(run.id)
    last = stored[-1]["seq"]
    assert [e["seq"] for e in stored] == list(range(1, last + 1))
    now = runner.runs.now()
    from maestro.agents.runtime.store import PendingEvent

    # a writer whose idea of the last number is stale (another one appended meanwhile)
    assert (
        runner.runs.append_events(run.id, [PendingEvent("custom", {"n": 1}, now)], after=last - 2) == last + 1
    )
    assert (
        runner.runs.append_events(run.id, [PendingEvent("custom", {"n": 2}, now)], after=last + 1) == last + 2
    )
    waiting_to_failed = runner.runs.transition(
        run.id,
        tenant="acme",
        to="failed",
        expect={"waiting"},
        events=[PendingEvent("end", {"status": "failed"}, now)],
        after=1,  # stale: written after the stored last number instead
    )
    assert waiting_to_failed.status == "failed"
    seqs = [e["seq"] for e in runner.runs.events(run.id)]
    assert seqs == list(range(1, last + 4))


def test_checkpoint_saves_do_not_store_node_starts_alone(services: Services, tmp_path: Path) -> None:
    """Event batches: one per finished node and the final one with the status; a checkpoint save with
    only ``node_start`` events buffered writes nothing. The events stay complete and ordered."""
    runner = _runner(services, tmp_path)
    batches: list[list[str]] = []
    store = runner.runs
    original = store.append_events

    def counting(run_id: str, events: Any, **kw: Any) -> int:
        batches.append([e.kind for e in events])
        return original(run_id, events, **kw)

    store.append_events = counting  # type: ignore[method-assign]
    run = asyncio.run(runner.start(NAME, {"target": "api"}, _authority("alice", ["engineer"])))
    assert run.status == "waiting"
    assert all(set(batch) != {"node_start"} for batch in batches)
    kinds = _kinds(e["kind"] for e in store.events(run.id))
    assert kinds == ["node_start", "model", "node", "node_start", "effect", "approval", "waiting"]
    done = asyncio.run(runner.decide(run.id, _authority("bob", ["admin"]), approve=True))
    assert done.status == "succeeded"
    assert done.output == {"plan": "step 1: ship it", "done": "deployed api", "approved": True}
    seqs = [e["seq"] for e in store.events(run.id)]
    assert seqs == list(range(1, len(seqs) + 1))

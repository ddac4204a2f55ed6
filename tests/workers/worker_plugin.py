"""A worker plugin for the tests (``maestro worker --import worker_plugin``, ``PYTHONPATH=tests/workers``).

The worker is a separate process, so the test workcells and the fake model must be set up *in* it:
importing this module registers the workcells, and its ``llm_client`` hook gives the worker's router a
``FunctionLLM`` (the only fake; a function of the messages, so every pool process answers the same).

* ``remediate``: plan (streamed model call) -> approval -> effect (a line appended to ``input.out``).
* ``once``: an effect (a line appended to ``input.out``), then wait for ``input.gate`` to exist — the test
  kills the worker while it waits — then finish.
* ``poison``: kills the pool process that runs it, on every delivery.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell, register
from maestro.agents.runtime.state import BaseState
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM
from maestro.router.types import LLMClient

REPLY = "worker says: roll out one zone at a time"


def llm_client(settings: Settings) -> LLMClient:
    """The hook ``maestro worker`` calls once per process for its router's model client."""
    return FunctionLLM(lambda messages, call: REPLY)


class CellState(BaseState, total=False):
    target: str
    out: str
    gate: str
    plan: str
    approved: bool
    done: str


def _append(path: str, line: str) -> None:
    with Path(path).open("a") as handle:
        handle.write(line + "\n")


async def draft(state: CellState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    result = await runtime.context.complete(
        task="chat", messages=[{"role": "user", "content": f"plan {state['target']}"}]
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
        _append(state["out"], f"{ctx.run_id} {state['target']} pid={os.getpid()}")
        return f"deployed {state['target']}"

    done = await ctx.effect("act", f"deploy:{state['target']}", deploy)
    gate = state.get("gate")
    if gate:
        for _ in range(300):  # the test kills this worker here, then opens the gate
            if Path(gate).exists():
                break
            await asyncio.sleep(0.01)
    return {"done": done}


def poison(state: CellState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def _initial(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k in {"target", "out", "gate"}}


def _output(state: Mapping[str, Any]) -> dict[str, Any]:
    return {"plan": state.get("plan"), "done": state.get("done"), "approved": state.get("approved")}


def _remediate() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CellState, context_schema=RunContext)
    graph.add_node("draft", draft)
    graph.add_node("ask", ask)
    graph.add_node("act", act)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "ask")
    graph.add_conditional_edges("ask", lambda s: "act" if s.get("approved") else END, ["act", END])
    graph.add_edge("act", END)
    return graph


def _once() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CellState, context_schema=RunContext)
    graph.add_node("act", act)
    graph.add_node("finish", lambda s: {"artifacts": {"finished": True}})
    graph.add_edge(START, "act")
    graph.add_edge("act", "finish")
    graph.add_edge("finish", END)
    return graph


def _poison() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CellState, context_schema=RunContext)
    graph.add_node("poison", poison)
    graph.add_edge(START, "poison")
    graph.add_edge("poison", END)
    return graph


WORKCELLS = (
    Workcell("remediate", "test: plan, approve, act once", "chat", _remediate, _initial, _output),
    Workcell("once", "test: act once, then wait at a gate", "chat", _once, _initial, _output),
    Workcell("poison", "test: kills its worker", "chat", _poison, _initial, _output),
)
for _cell in WORKCELLS:
    register(_cell)

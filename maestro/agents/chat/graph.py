"""The chat workcell's graph: START -> respond -> END, checkpointed per thread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from maestro.agents.chat.nodes import respond
from maestro.agents.chat.state import ChatState
from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell
from maestro.core.errors import InvalidRequest

MAX_MESSAGE_CHARS = 100_000


def build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(ChatState, context_schema=RunContext)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph


def initial_state(payload: Mapping[str, Any]) -> dict[str, Any]:
    message = payload.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InvalidRequest('chat input must be {"message": "<non-empty text>"}')
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidRequest(f"the message has {len(message)} characters; the limit is {MAX_MESSAGE_CHARS}")
    return {"messages": [{"role": "user", "content": message}]}


def output(state: Mapping[str, Any]) -> dict[str, Any]:
    messages = state.get("messages") or []
    reply = messages[-1]["content"] if messages and messages[-1].get("role") == "assistant" else ""
    return {"reply": reply, "decision_id": state.get("decision_id"), "turns": len(messages) // 2}


WORKCELL = Workcell(
    name="chat",
    description="Multi-turn chat routed as task 'chat'; one thread per conversation.",
    action="chat",
    build=build,
    initial_state=initial_state,
    output=output,
)

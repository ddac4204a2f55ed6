"""The chat workcell's one node: answer the conversation so far through the router."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from maestro.agents.chat.state import ChatState
from maestro.agents.runtime.context import RunContext

MAX_TURNS = 40  # older turns are dropped from the prompt (not from the thread)


async def respond(state: ChatState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    history = list(state.get("messages", []))[-MAX_TURNS:]
    result = await ctx.complete(task="chat", messages=history)
    return {
        "messages": [{"role": "assistant", "content": result.text}],
        "budget_used_usd": result.cost_usd,
        "decision_id": result.decision.id,
    }

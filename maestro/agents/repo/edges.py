"""Routing shared by the repository workcells, on what their nodes recorded: a failed round goes back to
the generating step while rounds are left (the failing node sets ``exhausted`` from the configured
rounds), else to ``stop``; after the diff guard, to an approval when configured, else to the PR."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["after_approve", "after_guard", "after_round", "wire_review"]

State = Mapping[str, Any]


def after_round(ok: str, *, retry: str) -> Callable[[Any], str]:
    def route(state: State) -> str:
        if state.get("feedback") is None:
            return ok
        return "stop" if state.get("exhausted") else retry

    return route


def after_guard(state: State) -> str:
    if state.get("status") in ("no_change", "refused"):
        return "end"
    return "approve" if state.get("needs_approval") else "open_pr"


def after_approve(state: State) -> str:
    return "end" if state.get("status") == "rejected" else "open_pr"


def wire_review(graph: Any) -> None:
    """guard -> [approve] -> open_pr -> END, guard -> END (no change / refused), stop -> END."""
    from langgraph.graph import END

    graph.add_conditional_edges(
        "guard", after_guard, {"approve": "approve", "open_pr": "open_pr", "end": END}
    )
    graph.add_conditional_edges("approve", after_approve, {"open_pr": "open_pr", "end": END})
    graph.add_edge("open_pr", END)
    graph.add_edge("stop", END)

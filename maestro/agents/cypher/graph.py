"""The Cypher workcell's graph::

    START -> introspect -> generate -> check -> preview -> execute -> answer -> END
                              ^          |         |          |
                              +----------+---------+----------+   (repair: error and repairs left)
                                         \\-> give_up -> END      (error after the last repair)
    preview -> END when a human rejected the costly query.

Input: ``{"question": "...", "graph": "<the tenant's graph name>"}`` (``message`` is accepted for
``question`` so ``maestro chat cypher`` works). A thread keeps the conversation: later questions see the
earlier ones and their queries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from maestro.agents.cypher import nodes
from maestro.agents.cypher.edges import after, after_preview
from maestro.agents.cypher.state import CypherState
from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell
from maestro.core.errors import InvalidRequest

MAX_QUESTION_CHARS = 4_000
_GRAPH_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CypherState, context_schema=RunContext)
    for name in ("introspect", "generate", "check", "preview", "execute", "answer", "give_up"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "introspect")
    graph.add_edge("introspect", "generate")
    graph.add_conditional_edges("generate", after("check"), ["check", "generate", "give_up"])
    graph.add_conditional_edges("check", after("preview"), ["preview", "generate", "give_up"])
    graph.add_conditional_edges(
        "preview",
        after_preview,
        {"execute": "execute", "generate": "generate", "give_up": "give_up", "end": END},
    )
    graph.add_conditional_edges("execute", after("answer"), ["answer", "generate", "give_up"])
    graph.add_edge("answer", END)
    graph.add_edge("give_up", END)
    return graph


def initial_state(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the input and reset every per-question field (a thread keeps ``turns`` and ``messages``)."""
    question = payload.get("question", payload.get("message"))
    if not isinstance(question, str) or not question.strip():
        raise InvalidRequest('cypher input must be {"question": "<text>", "graph": "<graph name>"}')
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidRequest(
            f"the question has {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    graph = payload.get("graph")
    if not isinstance(graph, str) or not _GRAPH_NAME.fullmatch(graph):
        raise InvalidRequest('cypher input needs "graph": a graph name of letters, digits, "_" or "-"')
    question = question.strip()
    return {
        "question": question,
        "graph": graph,
        "messages": [{"role": "user", "content": question}],
        "schema": "",
        "examples": [],
        "query": "",
        "params": {},
        "guard_notes": [],
        "attempts": 0,
        "error": None,
        "exhausted": False,
        "failures": [],
        "plan": None,
        "approval": None,
        "columns": [],
        "rows": [],
        "truncated": False,
        "answer": "",
        "citations": [],
        "status": "",
        "model": None,
        "decision_id": None,
    }


def output(state: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "answer": state.get("answer", ""),
        "status": state.get("status", ""),
        "graph": state.get("graph"),
        "query": state.get("query", ""),
        "params": state.get("params", {}),
        "columns": state.get("columns", []),
        "rows": state.get("rows", []),
        "truncated": state.get("truncated", False),
        "citations": state.get("citations", []),
        "plan": state.get("plan"),
        "attempts": state.get("attempts", 0),
        "failures": state.get("failures", []),
        "guard_notes": state.get("guard_notes", []),
        "model": state.get("model"),
        "decision_id": state.get("decision_id"),
    }


WORKCELL = Workcell(
    name="cypher",
    description="Questions about a graph -> a guarded read-only Cypher query -> an answer citing the rows.",
    action="cypher.read",
    build=build,
    initial_state=initial_state,
    output=output,
    recursion_limit=40,
)

"""The codegen workcell's graph::

    START -> prepare -> plan -> edit -> apply -> verify -> guard -> [approve] -> open_pr -> END
                                 ^       |         |          \\-> END (no change, or secrets/PII refused)
                                 +-------+---------+  repair rounds (the failure goes back to the model)
                                         \\---------+-> stop -> END   (rounds used up: no PR, says why)

Input: ``{"repo": "<path or URL>", "task": "<what to do>", "base": optional ref, "test_args": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph import START, StateGraph

from maestro.agents.codegen import nodes
from maestro.agents.codegen.state import CodegenState
from maestro.agents.repo.edges import after_round, wire_review
from maestro.agents.repo.state import fresh_fields, shared_output
from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell
from maestro.core.errors import InvalidRequest

MAX_TASK_CHARS = 20_000


def build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(CodegenState, context_schema=RunContext)
    for name in ("prepare", "plan", "edit", "apply", "verify", "guard", "approve", "open_pr", "stop"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "plan")
    graph.add_edge("plan", "edit")
    graph.add_edge("edit", "apply")
    graph.add_conditional_edges("apply", after_round("verify", retry="edit"), ["verify", "edit", "stop"])
    graph.add_conditional_edges("verify", after_round("guard", retry="edit"), ["guard", "edit", "stop"])
    wire_review(graph)
    return graph


def initial_state(payload: Mapping[str, Any]) -> dict[str, Any]:
    repo, task = payload.get("repo"), payload.get("task")
    if not isinstance(repo, str) or not repo.strip():
        raise InvalidRequest('codegen input needs "repo": a local path or a URL git can reach')
    if not isinstance(task, str) or not task.strip():
        raise InvalidRequest('codegen input needs "task": what to change')
    if len(task) > MAX_TASK_CHARS:
        raise InvalidRequest(f"the task has {len(task)} characters; the limit is {MAX_TASK_CHARS}")
    base = payload.get("base")
    if base is not None and not isinstance(base, str):
        raise InvalidRequest('"base" must be a branch, tag or commit')
    test_args = payload.get("test_args", [])
    if not isinstance(test_args, list) or not all(isinstance(a, str) for a in test_args):
        raise InvalidRequest('"test_args" must be a list of strings (pytest arguments)')
    return {
        **fresh_fields(),
        "repo": repo.strip(),
        "task": task.strip(),
        "base": base,
        "test_args": test_args,
        "applied": None,
        "plan": None,
    }


def output(state: Mapping[str, Any]) -> dict[str, Any]:
    tests = state.get("tests") or {}
    baseline = state.get("baseline") or {}
    return {
        **shared_output(state),
        "plan": state.get("plan"),
        "tests_before": {k: baseline.get(k) for k in ("status", "passed", "failed", "mode")},
        "tests_after": {k: tests.get(k) for k in ("status", "passed", "failed", "mode")} if tests else None,
    }


WORKCELL = Workcell(
    name="codegen",
    description="A task on a repository -> edits tested in the sandbox, repaired, guarded -> a pull request.",
    action="repo.propose",
    build=build,
    initial_state=initial_state,
    output=output,
    recursion_limit=60,
)

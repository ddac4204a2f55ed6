"""The testgen workcell's graph::

    START -> prepare -> write -> check -> guard -> [approve] -> open_pr -> END
                          ^        |        \\-> END (secrets/PII refused)
                          +--------+  repair rounds (no test kept: why each was dropped goes back)
                                   \\-> stop -> END   (rounds used up: no PR, says why)

Input: ``{"repo": "<path or URL>", "target": "<module path>", "base": optional, "test_args": [...]}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langgraph.graph import START, StateGraph

from maestro.agents.repo.edges import after_round, wire_review
from maestro.agents.repo.state import fresh_fields, shared_output
from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell
from maestro.agents.testgen import nodes
from maestro.agents.testgen.state import TestgenState
from maestro.core.errors import InvalidRequest

_TARGET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,300}\.py")


def build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(TestgenState, context_schema=RunContext)
    for name in ("prepare", "write", "check", "guard", "approve", "open_pr", "stop"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "write")
    graph.add_conditional_edges("write", after_round("check", retry="write"), ["check", "write", "stop"])
    graph.add_conditional_edges("check", after_round("guard", retry="write"), ["guard", "write", "stop"])
    wire_review(graph)
    return graph


def initial_state(payload: Mapping[str, Any]) -> dict[str, Any]:
    repo, target = payload.get("repo"), payload.get("target")
    if not isinstance(repo, str) or not repo.strip():
        raise InvalidRequest('testgen input needs "repo": a local path or a URL git can reach')
    if not isinstance(target, str) or not _TARGET.fullmatch(target) or ".." in target.split("/"):
        raise InvalidRequest(
            'testgen input needs "target": a module path in the repository, e.g. "pkg/mod.py"'
        )
    if target.rsplit("/", 1)[-1].startswith("test"):
        raise InvalidRequest(f"{target} is a test module: give the module to test")
    test_args = payload.get("test_args", [])
    if not isinstance(test_args, list) or not all(isinstance(a, str) for a in test_args):
        raise InvalidRequest('"test_args" must be a list of strings (pytest arguments)')
    return {
        **fresh_fields(),
        "repo": repo.strip(),
        "target": target,
        "base": payload.get("base"),
        "test_args": test_args,
        "selection": [],
        "kept": [],
        "dropped": [],
        "after": None,
        "failure": "",
    }


def output(state: Mapping[str, Any]) -> dict[str, Any]:
    baseline = (state.get("baseline") or {}).get("coverage")
    after = (state.get("after") or {}).get("coverage")
    return {
        **shared_output(state),
        "test_path": state.get("test_path"),
        "kept": state.get("kept", []),
        "dropped": state.get("dropped", []),
        "selection": state.get("selection", []),
        "coverage_before": {k: baseline[k] for k in ("lines", "branches")} if baseline else None,
        "coverage_after": {k: after[k] for k in ("lines", "branches")} if after else None,
    }


WORKCELL = Workcell(
    name="testgen",
    description="A module -> pytest tests, each kept only if it passes and adds coverage -> a PR.",
    action="repo.propose",
    build=build,
    initial_state=initial_state,
    output=output,
    recursion_limit=60,
)

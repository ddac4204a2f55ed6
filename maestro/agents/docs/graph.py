"""The docs workcell's graph::

    START -> prepare -> write -> apply -> verify -> guard -> [approve] -> open_pr -> END
                          ^        |        |         \\-> END (no change, secrets/PII refused)
                          +--------+--------+  repair rounds        \\-> stop -> END (rounds used up)

Input: ``{"repo": "<path or URL>", "targets": ["pkg/mod.py", ...], "page": optional "docs/x.md"}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from langgraph.graph import START, StateGraph

from maestro.agents.docs import nodes
from maestro.agents.docs.state import DocsState
from maestro.agents.repo.edges import after_round, wire_review
from maestro.agents.repo.state import fresh_fields, shared_output
from maestro.agents.runtime.context import RunContext
from maestro.agents.runtime.registry import Workcell
from maestro.core.errors import InvalidRequest

_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,300}")


def build() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(DocsState, context_schema=RunContext)
    for name in ("prepare", "write", "apply", "verify", "guard", "approve", "open_pr", "stop"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "write")
    graph.add_edge("write", "apply")
    graph.add_conditional_edges("apply", after_round("verify", retry="write"), ["verify", "write", "stop"])
    graph.add_conditional_edges("verify", after_round("guard", retry="write"), ["guard", "write", "stop"])
    wire_review(graph)
    return graph


def _relative(value: object, *, suffix: str, what: str) -> str:
    if not isinstance(value, str) or not _PATH.fullmatch(value) or ".." in PurePosixPath(value).parts:
        raise InvalidRequest(f'{what} must be a relative path in the repository, e.g. "pkg/mod{suffix}"')
    if not value.endswith(suffix):
        raise InvalidRequest(f"{what} must end in {suffix}: {value}")
    return value


def initial_state(payload: Mapping[str, Any]) -> dict[str, Any]:
    repo, targets = payload.get("repo"), payload.get("targets")
    if not isinstance(repo, str) or not repo.strip():
        raise InvalidRequest('docs input needs "repo": a local path or a URL git can reach')
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or len(targets) > 20:
        raise InvalidRequest('docs input needs "targets": 1 to 20 module paths, e.g. ["pkg/mod.py"]')
    checked = [_relative(t, suffix=".py", what="a target") for t in targets]
    page = payload.get("page") or f"docs/{PurePosixPath(checked[0]).stem}.md"
    return {
        **fresh_fields(),
        "repo": repo.strip(),
        "targets": checked,
        "page": _relative(page, suffix=".md", what='"page"'),
        "base": payload.get("base"),
        "applied": None,
    }


def output(state: Mapping[str, Any]) -> dict[str, Any]:
    examples = state.get("examples") or {}
    return {
        **shared_output(state),
        "page": state.get("page"),
        "examples": {k: examples.get(k) for k in ("status", "passed", "failed")} if examples else None,
    }


WORKCELL = Workcell(
    name="docs",
    description="Modules -> docstrings and a Markdown page whose examples run and links resolve -> a PR.",
    action="repo.propose",
    build=build,
    initial_state=initial_state,
    output=output,
    recursion_limit=60,
)

"""The state every repository workcell shares (each extends it with its own fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestro.agents.runtime.state import BaseState

__all__ = ["RepoState", "fresh_fields", "shared_output"]


class RepoState(BaseState, total=False):
    repo: str  # a local path or a URL git can reach
    base: str | None  # the ref the branch starts from (default: the repository's default branch)
    worktree: dict[str, Any]  # Worktree.to_record()
    reply: str  # the model's last answer
    rounds: int  # generation rounds so far
    feedback: str | None  # why the last round failed (for the model); None after a good step
    exhausted: bool  # the last failed round was the last allowed one
    needs_approval: bool  # a human approves before the PR opens
    diff: str
    findings: list[dict[str, Any]]  # the diff guard's findings (types and offsets, never values)
    decisions: list[dict[str, Any]]  # router decisions of the generation rounds (for the PR body)
    approval: dict[str, Any] | None
    pr: dict[str, Any] | None
    status: str
    summary: str


def fresh_fields() -> dict[str, Any]:
    """The shared fields of a new run."""
    return {
        "rounds": 0,
        "feedback": None,
        "exhausted": False,
        "needs_approval": False,
        "decisions": [],
        "findings": [],
        "approval": None,
        "pr": None,
        "status": "",
        "summary": "",
    }


def shared_output(state: Mapping[str, Any]) -> dict[str, Any]:
    """The output fields every repository workcell reports (each adds its own)."""
    worktree = state.get("worktree") or {}
    return {
        "status": state.get("status", ""),
        "summary": state.get("summary", ""),
        "pr": state.get("pr"),
        "branch": worktree.get("branch"),
        "rounds": state.get("rounds", 0),
        "diff": state.get("diff", ""),
        "findings": state.get("findings", []),
        "decisions": state.get("decisions", []),
    }

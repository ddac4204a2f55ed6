from __future__ import annotations

from typing import Any

from maestro.agents.runtime.state import BaseState


class CodegenState(BaseState, total=False):
    """Input (``repo``, ``task``, ``base``, ``test_args``) and what each step found out."""

    repo: str
    task: str
    base: str | None
    test_args: list[str]

    worktree: dict[str, Any]  # path, branch, base_sha, remote_url
    baseline: dict[str, Any]  # the tests before any change
    files: list[dict[str, str]]  # the context the model saw last
    reply: str  # the model's last edits
    rounds: int  # edit rounds so far
    feedback: str | None  # why the last round failed (to the model), None after a good step
    exhausted: bool  # the last failed round was the last allowed one
    needs_approval: bool  # a human approves before the PR is opened (RepoTools.approval)
    applied: dict[str, Any] | None  # the last EditReport
    tests: dict[str, Any]  # the tests after the last applied edits
    diff: str
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]  # router decisions of the edit rounds (for the PR body)
    approval: dict[str, Any] | None
    pr: dict[str, Any] | None
    status: str  # opened | tests_failing | edits_failed | no_change | refused | rejected
    summary: str

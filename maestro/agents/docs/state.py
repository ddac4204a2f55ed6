from __future__ import annotations

from typing import Any

from maestro.agents.runtime.state import BaseState


class DocsState(BaseState, total=False):
    """Input (``repo``, ``targets``, ``page``, ``base``) and what each step checked."""

    repo: str
    targets: list[str]  # module paths
    page: str  # the Markdown page to write (default docs/<first target's stem>.md)
    base: str | None

    worktree: dict[str, Any]
    originals: dict[str, str]  # target -> its source before any edit
    reply: str
    rounds: int
    feedback: str | None
    exhausted: bool
    needs_approval: bool
    applied: dict[str, Any] | None
    examples: dict[str, Any]  # the doctest run
    diff: str
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    approval: dict[str, Any] | None
    pr: dict[str, Any] | None
    status: str  # opened | checks_failing | edits_failed | no_change | refused | rejected
    summary: str

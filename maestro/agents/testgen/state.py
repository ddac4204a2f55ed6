from __future__ import annotations

from typing import Any

from maestro.agents.runtime.state import BaseState


class TestgenState(BaseState, total=False):
    """Input (``repo``, ``target``, ``base``, ``test_args``) and what each step measured."""

    repo: str
    target: str  # the module, a path in the repository (e.g. "pkg/stock.py")
    base: str | None
    test_args: list[str]  # the existing suite (default: pytest's own discovery)

    worktree: dict[str, Any]
    test_path: str  # where the generated tests go (tests/test_maestro_<module>.py)
    baseline: dict[str, Any]  # the existing suite under coverage of the target
    reply: str
    rounds: int
    feedback: str | None
    exhausted: bool
    needs_approval: bool
    generated: dict[str, Any]  # the generated file alone: per-test results
    kept: list[str]
    dropped: list[str]
    after: dict[str, Any]  # existing suite + kept tests under coverage
    diff: str
    findings: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    approval: dict[str, Any] | None
    pr: dict[str, Any] | None
    status: str  # opened | no_gain | tests_failing | refused | rejected
    summary: str

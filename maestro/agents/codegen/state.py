from __future__ import annotations

from typing import Any

from maestro.agents.repo.state import RepoState


class CodegenState(RepoState, total=False):
    """Input (``repo``, ``task``, ``base``, ``test_args``) and what each step found out."""

    task: str
    test_args: list[str]

    baseline: dict[str, Any]  # the tests before any change
    plan: dict[str, Any] | None  # Plan.to_record(): steps, files, source (json | text | fallback), note
    files: list[dict[str, str]]  # the context the model saw last
    applied: dict[str, Any] | None  # the last EditReport
    tests: dict[str, Any]  # the tests after the last applied edits
    status: str  # opened | tests_failing | edits_failed | no_change | refused | rejected

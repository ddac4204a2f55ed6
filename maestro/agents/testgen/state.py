from __future__ import annotations

from typing import Any

from maestro.agents.repo.state import RepoState


class TestgenState(RepoState, total=False):
    """Input (``repo``, ``target``, ``base``, ``test_args``) and what each step measured."""

    target: str  # the module, a path in the repository (e.g. "pkg/stock.py")
    test_args: list[str]  # the existing suite (default: pytest's own discovery)

    test_path: str  # where the generated tests go (tests/test_maestro_<module>.py)
    baseline: dict[str, Any]  # the existing suite under coverage of the target
    generated: dict[str, Any]  # the generated file alone: per-test results
    kept: list[str]
    dropped: list[str]
    after: dict[str, Any]  # existing suite + kept tests under coverage
    status: str  # opened | no_gain | tests_failing | refused | rejected

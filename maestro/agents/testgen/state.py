from __future__ import annotations

from typing import Any

from maestro.agents.repo.state import RepoState


class TestgenState(RepoState, total=False):
    """Input (``repo``, ``target``, ``base``, ``test_args``) and what each step measured."""

    target: str  # the module, a path in the repository (e.g. "pkg/stock.py")
    test_args: list[str]  # the existing suite (default: pytest's own discovery)

    test_path: str  # where the generated tests go (tests/test_maestro_<module>.py)
    baseline: dict[str, Any]  # the existing suite under coverage of the target
    generated: dict[str, Any]  # the kept tests alone, re-run: per-test results (the PR's test table)
    selection: list[dict[str, Any]]  # Verdict.to_record() per generated test function, in module order
    kept: list[str]  # node ids of the kept tests
    dropped: list[str]  # node ids of the dropped ones (selection says why)
    after: dict[str, Any] | None  # existing suite + kept tests under coverage
    failure: str  # the status if the last failed round ends the run: tests_failing | no_gain
    status: str  # opened | no_gain | tests_failing | refused | rejected

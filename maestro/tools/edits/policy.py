"""Which paths a workcell may edit (RELIABILITY #17): the tests, CI and the verifier judge the change, so
the change must not be able to rewrite them.

Three tiers:

- ``verifier``: the caller's verifier paths. Never editable, whatever else the policy says.
- ``pinned`` (default: conftest.py, test-runner config, CI config): editable only with
  ``allow_protected=True``; an ``allow`` glob does not lift them, so a testgen workcell allowed to write
  ``tests/test_generated_*.py`` still cannot touch ``tests/conftest.py`` or ``.github/``.
- ``protected`` (default: test files and directories, and the build files that configure test runs:
  ``pyproject.toml`` — its ``[tool.pytest]`` table can deselect tests —, ``setup.cfg``, ``Makefile``):
  editable where an ``allow`` glob matches, or with ``allow_protected=True``.

Patterns follow :mod:`maestro.tools.edits.globs` (no ``/``: any depth; with ``/``: from the root).
A path is checked as written and, when a symlink is involved, at its real location too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from maestro.tools.edits.globs import compile_glob

__all__ = ["DEFAULT_PINNED", "DEFAULT_PROTECTED", "EditPolicy"]

TESTS = "tests"
RUNNER = "test-runner config"
CI = "CI config"
BUILD = "build config that decides which tests run"

DEFAULT_PROTECTED: dict[str, str] = {
    "**/tests/**": TESTS,
    "**/test/**": TESTS,
    "**/__tests__/**": TESTS,
    "test_*.py": TESTS,
    "*_test.py": TESTS,
    "*_test.go": TESTS,
    "*.test.*": TESTS,
    "*.spec.*": TESTS,
    "pyproject.toml": BUILD,
    "setup.cfg": BUILD,
    "Makefile": BUILD,
}
"""Glob -> why it is protected. Liftable per glob with ``EditPolicy.allow``."""

DEFAULT_PINNED: dict[str, str] = {
    "conftest.py": RUNNER,
    "pytest.ini": RUNNER,
    "tox.ini": RUNNER,
    "noxfile.py": RUNNER,
    ".github/**": CI,
    ".gitlab-ci.yml": CI,
    ".gitlab/**": CI,
    ".ci/**": CI,
    ".circleci/**": CI,
    ".buildkite/**": CI,
    ".travis.yml": CI,
    "azure-pipelines.yml": CI,
    "Jenkinsfile": CI,
}
"""Glob -> why it is pinned. Not liftable by ``allow``; only ``allow_protected=True`` lifts them."""


@dataclass(frozen=True)
class EditPolicy:
    """What a workcell may edit; the default refuses tests, test config, CI config and build config."""

    protected: Sequence[str] = tuple(DEFAULT_PROTECTED)
    allow: Sequence[str] = ()
    pinned: Sequence[str] = tuple(DEFAULT_PINNED)
    verifier: Sequence[str] = ()
    allow_protected: bool = False

    def refusal(self, *paths: str) -> str | None:
        """Why the first refused of ``paths`` (as written, then real location) may not be edited, or None."""
        for path in dict.fromkeys(paths):
            reason = self._refusal(path)
            if reason is not None:
                return reason
        return None

    def _refusal(self, path: str) -> str | None:
        rule = _first_match(self.verifier, path)
        if rule is not None:
            return (
                f"{path} is the verifier (rule `{rule}`): the verifier judges the change and can never "
                "be edited by it"
            )
        if self.allow_protected:
            return None
        rule = _first_match(self.pinned, path)
        if rule is not None:
            why = DEFAULT_PINNED.get(rule, "pinned")
            return (
                f"{path} is protected (rule `{rule}`: {why}); conftest, test-runner and CI config stay "
                "refused even where the policy allows test files: make the code pass the checks as they are"
            )
        rule = _first_match(self.protected, path)
        if rule is not None and _first_match(self.allow, path) is None:
            why = DEFAULT_PROTECTED.get(rule, "protected")
            return (
                f"{path} is protected (rule `{rule}`: {why}) and this workcell's policy does not allow it: "
                "change the code under test, not the tests or their configuration"
            )
        return None


def _first_match(patterns: Sequence[str], path: str) -> str | None:
    for pattern in patterns:
        if compile_glob(pattern).fullmatch(path):
            return pattern
    return None

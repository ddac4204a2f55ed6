"""``run_pytest``: a repository's tests in the sandbox, reported per test.

pytest runs with the project's interpreter, writes JUnit XML (``xunit1``, so each case names its file)
to the run's private result directory rather than the worktree, and keeps no cache
(``-p no:cacheprovider``): the worktree stays as the patch left it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from maestro.tools.sandbox.runner import JUNIT_XML, Sandbox
from maestro.tools.sandbox.types import SandboxResult

__all__ = ["run_pytest"]


def run_pytest(
    workdir: Path,
    args: Sequence[str] = (),
    *,
    sandbox: Sandbox | None = None,
    timeout_s: float = 600.0,
    env_extra: Mapping[str, str] | None = None,
) -> SandboxResult:
    """Run ``python -m pytest ARGS`` in ``workdir`` inside ``sandbox`` (a default one if omitted)."""
    box = sandbox or Sandbox()
    argv = [
        str(box.python), "-m", "pytest",
        f"--junitxml={JUNIT_XML}", "-o", "junit_family=xunit1",
        "-p", "no:cacheprovider", *args,
    ]  # fmt: skip
    return box.run(argv, workdir=workdir, timeout_s=timeout_s, env_extra=env_extra, junit=True)

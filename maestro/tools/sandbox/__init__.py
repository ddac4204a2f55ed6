"""Running untrusted code - generated patches, a repository's tests - isolated from the host.

``Sandbox(config).run(argv, workdir=..., timeout_s=...)`` runs in bubblewrap when it works here, else in
``unshare`` namespaces, and refuses otherwise; ``run_pytest`` adds per-test results from JUnit XML.
No network, own process group and pid namespace, rlimits plus a pids cgroup, a clean environment,
writes only to the worktree and a private ``/tmp``. See docs/sandbox.md for what each mode guarantees.
Importing this package starts nothing: modes are probed on first use.
"""

from maestro.tools.sandbox.errors import SandboxUnavailable
from maestro.tools.sandbox.junit import parse_junit
from maestro.tools.sandbox.probe import mode_problem
from maestro.tools.sandbox.runner import JUNIT_XML, Sandbox
from maestro.tools.sandbox.testrun import run_pytest
from maestro.tools.sandbox.types import (
    KilledBy,
    LimitHit,
    Mode,
    SandboxConfig,
    SandboxLimits,
    SandboxResult,
    Status,
    TestCase,
    TestOutcome,
)

__all__ = [
    "JUNIT_XML",
    "KilledBy",
    "LimitHit",
    "Mode",
    "Sandbox",
    "SandboxConfig",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "Status",
    "TestCase",
    "TestOutcome",
    "mode_problem",
    "parse_junit",
    "run_pytest",
]

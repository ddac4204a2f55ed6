"""The sandbox's vocabulary: limits, configuration, and the result of one run.

Plain frozen dataclasses so a result can be logged, compared in tests and turned into JSON
(``dataclasses.asdict``) by the workcells and the HumanEval benchmark without knowing how it ran.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "KilledBy",
    "LimitHit",
    "Mode",
    "SandboxConfig",
    "SandboxLimits",
    "SandboxResult",
    "Status",
    "TestCase",
    "TestOutcome",
]

Mode = Literal["bwrap", "unshare", "none"]
"""How the run was isolated; ``none`` only ever runs with ``allow_unsandboxed=True``."""

KilledBy = Literal["timeout", "memory", "cpu", "fsize", "nproc", "signal"]
"""Why the process tree was killed (a signal, not a clean exit)."""

LimitHit = Literal["memory", "fsize", "nproc"]
"""A limit that refused a request (allocation, write, fork) while the process went on or exited itself."""

Status = Literal["passed", "failed", "errored", "timeout", "killed"]
TestOutcome = Literal["passed", "failed", "error", "skipped"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run resource limits. Defaults fit a repository's pytest run; attack tests pass smaller ones.

    ``memory_bytes`` is address space (RLIMIT_AS), not resident memory: runtimes that reserve large
    virtual ranges (torch, the JVM) need more than they use. ``nproc`` is enforced by a pids cgroup
    when one is writable, else by RLIMIT_NPROC (which the kernel ignores for root).
    """

    cpu_s: int = 120
    memory_bytes: int = 4096 * MiB
    fsize_bytes: int = 64 * MiB
    nproc: int = 256
    nofile: int = 1024
    tmp_bytes: int = 256 * MiB
    output_bytes: int = 64 * 1024
    grace_s: float = 1.0


@dataclass(frozen=True)
class SandboxConfig:
    """What a :class:`~maestro.tools.sandbox.Sandbox` may use and must hide.

    ``modes`` is the preference order tried at run time (the first that works on this machine wins);
    an empty tuple means "no sandbox", which runs only with ``allow_unsandboxed=True`` (for the refusal
    test). ``hidden`` are paths replaced by an empty tmpfs in ``unshare`` mode (``bwrap`` shows only an
    allow-list anyway). ``python`` is the interpreter whose installation is made visible read-only.
    """

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    modes: tuple[Mode, ...] = ("bwrap", "unshare")
    python: Path = field(default_factory=lambda: Path(sys.executable))
    hidden: tuple[Path, ...] = (Path("/root"), Path("/home"), Path("/work/shared"), Path("/run/secrets"))
    readonly_extra: tuple[Path, ...] = ()
    allow_unsandboxed: bool = False
    redact_output: bool = True


@dataclass(frozen=True)
class TestCase:
    """One test as pytest's JUnit XML reported it."""

    __test__ = False  # not a pytest test class

    name: str
    classname: str
    file: str | None
    outcome: TestOutcome
    message: str = ""
    duration_s: float = 0.0

    @property
    def nodeid(self) -> str:
        """``file::name`` when the file is known, else ``classname::name``."""
        return f"{self.file or self.classname}::{self.name}"


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed run.

    ``exit_code`` is the program's exit status (``None`` when it was killed by a signal, then
    ``signal`` holds it). ``stdout``/``stderr`` are the last ``limits.output_bytes`` of each, secrets
    redacted; ``truncated`` says whether anything was cut. ``nproc_via`` records how the process limit
    was enforced (``cgroup``, ``rlimit`` or ``none``).
    """

    mode: Mode
    argv: tuple[str, ...]
    status: Status
    exit_code: int | None
    signal: int | None
    killed_by: KilledBy | None
    limits_hit: tuple[LimitHit, ...]
    duration_s: float
    stdout: str
    stderr: str
    truncated: bool
    tests: tuple[TestCase, ...] = ()
    nproc_via: Literal["cgroup", "rlimit", "none"] = "none"

    def count(self, outcome: TestOutcome) -> int:
        """How many tests had ``outcome``."""
        return sum(1 for t in self.tests if t.outcome == outcome)

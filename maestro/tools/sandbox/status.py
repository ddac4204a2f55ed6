"""Turning an exit status, the run's timer and pytest's report into one verdict.

``killed_by`` is only set when the tree ended by a signal (the timer, SIGXCPU, SIGXFSZ, or any other);
a limit that merely refused a request (``MemoryError`` from RLIMIT_AS, ``EFBIG`` from RLIMIT_FSIZE, a
fork refused by the pids cgroup) is listed in ``limits_hit`` and the exit status speaks for itself.
Both namespace helpers report a command killed by signal N as exit status 128+N (bwrap itself; in
unshare mode the script that stays the namespace's init), so 129..192 means a signal there.
"""

from __future__ import annotations

import signal

from maestro.tools.sandbox.types import (
    KilledBy,
    LimitHit,
    Mode,
    SandboxResult,
    Status,
    TestCase,
)

__all__ = ["classify"]

_SIGNAL_CAUSE: dict[int, KilledBy] = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "fsize"}
_MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
_FSIZE_MARKERS = ("File too large", "EFBIG")
_NPROC_MARKERS = ("Resource temporarily unavailable", "can't fork", "BlockingIOError")
# pytest exit codes: 1 tests failed, 2 interrupted, 3 internal error, 4 usage error, 5 no tests
_PYTEST_FAILED = 1


def _signal_of(returncode: int, mode: Mode) -> int | None:
    if returncode < 0:
        return -returncode
    if mode != "none" and returncode > 128 and returncode - 128 < signal.NSIG:
        return returncode - 128
    return None


def _limits_hit(stderr: str, refused_forks: int) -> tuple[LimitHit, ...]:
    hit: list[LimitHit] = []
    if any(m in stderr for m in _MEMORY_MARKERS):
        hit.append("memory")
    if any(m in stderr for m in _FSIZE_MARKERS):
        hit.append("fsize")
    if refused_forks > 0 or any(m in stderr for m in _NPROC_MARKERS):
        hit.append("nproc")
    return tuple(hit)


def _status(returncode: int, tests: tuple[TestCase, ...], junit: bool) -> Status:
    if not junit:
        return "passed" if returncode == 0 else "failed"
    if any(t.outcome == "error" for t in tests):
        return "errored"
    if returncode == 0:
        return "passed"
    if returncode == _PYTEST_FAILED and any(t.outcome == "failed" for t in tests):
        return "failed"
    return "errored"


def classify(
    *,
    mode: Mode,
    argv: tuple[str, ...],
    returncode: int,
    timed_out: bool,
    refused_forks: int,
    duration_s: float,
    stdout: str,
    stderr: str,
    truncated: bool,
    tests: tuple[TestCase, ...],
    junit: bool,
    nproc_via: str,
) -> SandboxResult:
    """The :class:`SandboxResult` for a finished run."""
    sig = _signal_of(returncode, mode)
    killed_by: KilledBy | None = None
    status: Status
    if timed_out:
        killed_by, status = "timeout", "timeout"
    elif sig is not None:
        killed_by, status = _SIGNAL_CAUSE.get(sig, "signal"), "killed"
    else:
        status = _status(returncode, tests, junit)
    return SandboxResult(
        mode=mode,
        argv=argv,
        status=status,
        exit_code=None if sig is not None else returncode,
        signal=sig,
        killed_by=killed_by,
        limits_hit=_limits_hit(stderr, refused_forks),
        duration_s=duration_s,
        stdout=stdout,
        stderr=stderr,
        truncated=truncated,
        tests=tests,
        nproc_via="cgroup" if nproc_via == "cgroup" else "rlimit" if nproc_via == "rlimit" else "none",
    )

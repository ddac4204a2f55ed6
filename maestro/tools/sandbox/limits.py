"""What the child does between fork and exec: rlimits, and joining the run's pids cgroup.

Run as ``subprocess.Popen(preexec_fn=...)``, so it only calls async-signal-safe-ish primitives
(``setrlimit``, ``open``/``write``) and allocates nothing that takes a lock other threads might hold.
The limits are inherited by the namespace helpers (bwrap, unshare) and by everything they start.
"""

from __future__ import annotations

import os
import resource

from maestro.tools.sandbox.types import SandboxLimits

__all__ = ["ChildSetup"]


class ChildSetup:
    """The ``preexec_fn`` of a sandboxed run."""

    def __init__(self, limits: SandboxLimits, cgroup_procs: str | None) -> None:
        cpu = limits.cpu_s
        self._rlimits = [
            # soft < hard: SIGXCPU at the soft limit names the cause; SIGKILL a second later if ignored
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)),
            (resource.RLIMIT_FSIZE, (limits.fsize_bytes, limits.fsize_bytes)),
            (resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile)),
            (resource.RLIMIT_NPROC, (limits.nproc, limits.nproc)),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        self._cgroup_procs = cgroup_procs

    def __call__(self) -> None:
        if self._cgroup_procs is not None:
            fd = os.open(self._cgroup_procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for which, value in self._rlimits:
            resource.setrlimit(which, value)

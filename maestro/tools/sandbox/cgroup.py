"""A pids cgroup per run: the process-count limit that also binds root, and a list of who is left.

RLIMIT_NPROC is not enforced for root (uid 0 is exempt in the kernel), and workers here run as root, so
a fork bomb is contained by a cgroup's ``pids.max`` instead. The cgroup also answers "is anything of
this run still alive?" after the run, whatever process group or session a child moved to, so teardown
kills every member. cgroup v1 (a ``pids`` hierarchy) and v2 (``pids`` in the parent's
``cgroup.subtree_control``) are both handled; when neither is writable the caller falls back to
RLIMIT_NPROC and records that.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

__all__ = ["PidsCgroup", "pids_cgroup_parent"]

_V1 = Path("/sys/fs/cgroup/pids")
_V2 = Path("/sys/fs/cgroup")


def _own_cgroup(controller: str | None) -> str:
    """This process's cgroup path for ``controller`` (v1) or the unified hierarchy (``None``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (controller is None and controllers == "") or (
            controller is not None and controller in controllers.split(",")
        ):
            return path
    return "/"


def pids_cgroup_parent() -> Path | None:
    """The directory new per-run pids cgroups are created under, or ``None`` if none is writable."""
    v1 = _V1 / _own_cgroup("pids").lstrip("/")
    if (v1 / "pids.max").exists() or (v1 == _V1 and (v1 / "cgroup.procs").exists()):
        return v1 if os.access(v1, os.W_OK) else None
    v2 = _V2 / _own_cgroup(None).lstrip("/")
    try:
        enabled = (v2 / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return v2 if "pids" in enabled and os.access(v2, os.W_OK) else None


class PidsCgroup:
    """One run's cgroup: created with a ``pids.max``, joined by the child before exec, removed after."""

    def __init__(self, parent: Path, max_pids: int) -> None:
        self.path = parent / f"maestro-sbx-{os.getpid()}-{secrets.token_hex(4)}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(max_pids))
        self.procs_file = str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        """The processes still in the cgroup."""
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def refused_forks(self) -> int:
        """How many forks ``pids.max`` refused (``pids.events`` ``max`` counter)."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill_all(self, deadline_s: float = 5.0) -> bool:
        """SIGKILL every member until the cgroup is empty; whether it emptied before the deadline."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            members = self.pids()
            if not members:
                return True
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        return not self.pids()

    def remove(self) -> None:
        """Kill what is left and delete the cgroup (retrying while the kernel reaps the members)."""
        self.kill_all()
        for _ in range(200):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)

"""``Sandbox.run``: start a command isolated, bound it in time and resources, and report what happened.

The mode is chosen per run from the configured preference (probed once per process); if none works
the run is refused with :class:`SandboxUnavailable` rather than executed bare. The child starts a new
session (its own process group), applies rlimits and joins a per-run pids cgroup before exec; the
namespace helper's pid namespace takes the whole tree down with it. On timeout the group gets SIGTERM,
then SIGKILL after ``limits.grace_s``; afterwards every process left in the cgroup or the group is
killed, so nothing outlives ``run``.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from maestro.tools.sandbox.bwrap import bwrap_argv
from maestro.tools.sandbox.cgroup import PidsCgroup, pids_cgroup_parent
from maestro.tools.sandbox.env import build_env, secret_values
from maestro.tools.sandbox.errors import SandboxUnavailable
from maestro.tools.sandbox.junit import parse_junit
from maestro.tools.sandbox.layout import OUT_INSIDE, Layout, python_roots
from maestro.tools.sandbox.limits import ChildSetup
from maestro.tools.sandbox.output import read_tail, redact
from maestro.tools.sandbox.probe import mode_problem
from maestro.tools.sandbox.status import classify
from maestro.tools.sandbox.types import Mode, SandboxConfig, SandboxLimits, SandboxResult
from maestro.tools.sandbox.unshare import unshare_argv

__all__ = ["JUNIT_XML", "Sandbox"]

JUNIT_XML = "{junit_xml}"
"""Placeholder in ``argv``: replaced by the path (inside the sandbox) where JUnit XML is collected."""


class Sandbox:
    """Runs untrusted commands (generated code, a repository's tests) isolated from the host."""

    def __init__(self, config: SandboxConfig | None = None, *, limits: SandboxLimits | None = None) -> None:
        base = config or SandboxConfig()
        if limits is not None:
            base = SandboxConfig(
                limits=limits,
                modes=base.modes,
                python=base.python,
                hidden=base.hidden,
                readonly_extra=base.readonly_extra,
                allow_unsandboxed=base.allow_unsandboxed,
                redact_output=base.redact_output,
            )
        self.config = base

    @property
    def python(self) -> Path:
        """The interpreter visible inside (the project's venv python by default)."""
        return self.config.python

    def mode(self) -> Mode:
        """The first configured mode that works here; raises if none does and bare runs are not allowed."""
        problems = []
        for mode in self.config.modes:
            problem = mode_problem(mode)
            if problem is None:
                return mode
            problems.append(f"{mode}: {problem}")
        if self.config.allow_unsandboxed:
            return "none"
        tried = "; ".join(problems) or "no modes configured"
        raise SandboxUnavailable(
            f"no sandbox mode works on this machine ({tried}); install bubblewrap "
            "(`make setup` does as root) or run as root for unshare mode. Untrusted code is not run "
            "unsandboxed.",
            tried=problems,
        )

    def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        timeout_s: float,
        env_extra: Mapping[str, str] | None = None,
        writable: Sequence[Path] | None = None,
        junit: bool = False,
    ) -> SandboxResult:
        """Run ``argv`` in ``workdir`` (writable, like every path in ``writable``) and wait for it.

        With ``junit=True`` the ``{junit_xml}`` placeholder in ``argv`` is replaced by a private path
        and the XML written there is parsed into per-test results.
        """
        mode = self.mode()
        limits = self.config.limits
        workdir = workdir.resolve()
        rundir = Path(tempfile.mkdtemp(prefix="maestro-sbx-"))
        try:
            layout = Layout(
                workdir=workdir,
                writable=tuple(p.resolve() for p in (writable or [workdir])),
                readonly=tuple(dict.fromkeys([*python_roots(self.python), *self.config.readonly_extra])),
                hidden=tuple(p for p in self.config.hidden if p.exists()),
                rundir=rundir,
                tmp_bytes=limits.tmp_bytes,
            )
            layout.out_host.mkdir()
            out_inside = OUT_INSIDE if mode != "none" else str(layout.out_host)
            junit_inside = f"{out_inside}/junit.xml"
            argv = [a.replace(JUNIT_XML, junit_inside) for a in argv]
            return self._execute(mode, layout, argv, timeout_s, env_extra, junit)
        finally:
            shutil.rmtree(rundir, ignore_errors=True)

    def _execute(
        self,
        mode: Mode,
        layout: Layout,
        argv: list[str],
        timeout_s: float,
        env_extra: Mapping[str, str] | None,
        junit: bool,
    ) -> SandboxResult:
        limits = self.config.limits
        if mode == "bwrap":
            command = bwrap_argv(layout, argv)
        elif mode == "unshare":
            command = unshare_argv(layout, argv)
        else:
            command = list(argv)
        env = build_env(self.python, env_extra)
        parent = pids_cgroup_parent()
        cgroup = PidsCgroup(parent, limits.nproc) if parent is not None else None
        nproc_via = "cgroup" if cgroup else ("rlimit" if os.geteuid() != 0 else "none")
        with (
            (layout.rundir / "stdout").open("w+b") as out,
            (layout.rundir / "stderr").open("w+b") as err,
        ):
            start = time.monotonic()
            try:
                returncode, timed_out = _spawn_and_wait(
                    command,
                    env=env,
                    cwd=layout.workdir,
                    streams=(out, err),
                    setup=ChildSetup(limits, cgroup.procs_file if cgroup else None),
                    timeout_s=timeout_s,
                    grace_s=limits.grace_s,
                )
            finally:
                refused_forks = cgroup.refused_forks() if cgroup else 0
                if cgroup:
                    cgroup.remove()
            duration = time.monotonic() - start
            stdout, cut_out = read_tail(out, limits.output_bytes)
            stderr, cut_err = read_tail(err, limits.output_bytes)
        if self.config.redact_output:
            known = secret_values()
            stdout, stderr = redact(stdout, known), redact(stderr, known)
        tests = parse_junit(layout.out_host / "junit.xml") if junit else ()
        return classify(
            mode=mode,
            argv=tuple(argv),
            returncode=returncode,
            timed_out=timed_out,
            refused_forks=refused_forks,
            duration_s=duration,
            stdout=stdout,
            stderr=stderr,
            truncated=cut_out or cut_err,
            tests=tests,
            junit=junit,
            nproc_via=nproc_via,
        )


def _spawn_and_wait(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    streams: tuple[BinaryIO, BinaryIO],
    setup: ChildSetup,
    timeout_s: float,
    grace_s: float,
) -> tuple[int, bool]:
    """Start ``command`` in a new session, wait up to ``timeout_s``; the exit status and whether it timed out.

    Whatever happens, the process group is SIGKILLed before returning (the leader's pid is the group id),
    so a child that ignored SIGTERM or outlived its parent does not survive the run.
    """
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=streams[0],
        stderr=streams[1],
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=setup,
    )
    timed_out = False
    try:
        if not _wait_exit(proc, timeout_s):
            timed_out = True
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            proc.wait()
    return proc.returncode, timed_out


def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait for ``proc`` to exit within ``timeout_s``; whether it did.

    ``Popen.wait(timeout)`` polls with sleeps growing to 50 ms, which would add tens of milliseconds to
    every short run; a pidfd becomes readable the moment the process exits.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)
    if not ready:
        return False
    proc.wait()
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass

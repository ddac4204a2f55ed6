"""Which isolation modes work on this machine, decided by trying them once per process.

A binary being installed is not enough (a kernel may forbid user namespaces, a container may lack
``CAP_SYS_ADMIN``), so each probe runs ``true`` the way a real run would. Results are cached for the
life of the process: the HumanEval benchmark runs hundreds of sandboxes, and a probe costs a few
milliseconds. Each probe returns ``None`` when the mode works, else the reason it does not (used in
errors and in test skip reasons).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from maestro.tools.sandbox.bwrap import BWRAP, bwrap_argv
from maestro.tools.sandbox.layout import Layout
from maestro.tools.sandbox.types import Mode
from maestro.tools.sandbox.unshare import UNSHARE, unshare_argv

__all__ = ["mode_problem"]


def mode_problem(mode: Mode) -> str | None:
    """``None`` if ``mode`` works here, else why not (cached per process)."""
    if mode == "none":
        return None
    return _probe(mode)


@functools.cache
def _probe(mode: Mode) -> str | None:
    tools = {"bwrap": (BWRAP,), "unshare": (UNSHARE, "setpriv", "mount", "awk")}[mode]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found on PATH (install bubblewrap / util-linux)"
    if mode == "unshare" and os.geteuid() != 0:
        return "unshare mode needs root (mount namespaces without a user namespace)"
    with tempfile.TemporaryDirectory(prefix="maestro-sbx-probe-") as tmp:
        root = Path(tmp)
        (root / "out").mkdir()
        (root / "work").mkdir()
        layout = Layout(
            workdir=root / "work",
            writable=(root / "work",),
            readonly=(),
            hidden=(),
            rundir=root,
            tmp_bytes=1024 * 1024,
        )
        build = bwrap_argv if mode == "bwrap" else unshare_argv
        try:
            proc = subprocess.run(
                build(layout, ["/bin/true"]), capture_output=True, timeout=10, check=False, env={}
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{mode} probe failed to run: {exc}"
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"{mode} probe exited {proc.returncode}: {detail[-1] if detail else 'no output'}"
    return None

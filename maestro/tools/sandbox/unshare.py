"""The ``unshare`` backend: fresh namespaces and a read-only remount of the host's view (best effort).

Used where bubblewrap is missing. ``unshare(1)`` creates net, pid, mount, ipc and uts namespaces (a
fresh ``/proc`` for the new pid namespace); a ``/bin/sh`` script, still privileged inside, then

1. replaces each hidden directory (``/root``, ``/home``, the data dir, ...) and ``/tmp`` with a tmpfs,
   re-binding into it the paths that must stay (the interpreter under ``/root``, a worktree under
   ``/tmp``); overlays are staged under the run's host directory and moved into place;
2. remounts every mount read-only (``/proc`` included, so ``/proc/sys`` cannot be written), except the
   private ``/tmp`` and the result directory;
3. binds each writable path onto itself read-write;
4. runs the command (as a child of the script, which stays the namespace's init and reports a
   signal death as 128+N) through ``setpriv`` with an empty capability bounding set, ``noroot`` securebits
   (uid 0 gains no capabilities on exec) and ``no_new_privs``.

It is a deny-list: everything not hidden stays readable, and the process keeps uid 0, so root-owned
files that are readable on the host (``/etc/shadow`` included) are readable inside. Without
capabilities it cannot remount, unmount, or write to a read-only mount.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from maestro.tools.sandbox.env import INSIDE_HOME, INSIDE_TMP
from maestro.tools.sandbox.layout import OUT_INSIDE, Layout

__all__ = ["UNSHARE", "unshare_argv"]

UNSHARE = "unshare"
_SETPRIV = (
    "setpriv --bounding-set=-all --inh-caps=-all "
    "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked,+keep_caps_locked "
    "--no-new-privs --"
)


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _overlay(index: int, target: Path, keep: Sequence[Path], layout: Layout, size: str) -> list[str]:
    """Shell lines building a tmpfs for ``target`` in a staging dir, with ``keep`` bound into it."""
    stage = layout.rundir / f"o{index}"
    lines = [f"mkdir -p {shlex.quote(str(stage))}"]
    lines.append(f"mount -t tmpfs -o {size},mode=1777 sbx {shlex.quote(str(stage))}")
    for path in keep:
        inner = stage / path.relative_to(target)
        lines.append(f"mkdir -p {shlex.quote(str(inner))}")
        lines.append(f"mount --rbind {shlex.quote(str(path))} {shlex.quote(str(inner))}")
    return lines


def _script(layout: Layout) -> str:
    keep = [*layout.readonly, *layout.writable]
    tmp = Path(INSIDE_TMP)
    lines = ["set -e"]
    moves: list[tuple[Path, Path]] = []
    for i, hidden in enumerate(p for p in layout.hidden if p.is_dir() and not _under(tmp, p)):
        lines += _overlay(
            i, hidden, [k for k in keep if _under(k, hidden) and k != hidden], layout, "size=1m"
        )
        moves.append((layout.rundir / f"o{i}", hidden))
    # the private /tmp is staged last: the staging dirs of the others live in the host's /tmp
    tmp_stage = layout.rundir / "otmp"
    lines.append(f"mkdir -p {shlex.quote(str(tmp_stage))}")
    lines.append(f"mount -t tmpfs -o size={layout.tmp_bytes},mode=1777 sbx {shlex.quote(str(tmp_stage))}")
    home = tmp_stage / Path(INSIDE_HOME).relative_to(tmp)
    out = tmp_stage / Path(OUT_INSIDE).relative_to(tmp)
    lines.append(f"mkdir -p {shlex.quote(str(home))} {shlex.quote(str(out))}")
    lines.append(f"mount --bind {shlex.quote(str(layout.out_host))} {shlex.quote(str(out))}")
    for path in (k for k in keep if _under(k, tmp)):
        inner = tmp_stage / path.relative_to(tmp)
        lines.append(f"mkdir -p {shlex.quote(str(inner))}")
        lines.append(f"mount --rbind {shlex.quote(str(path))} {shlex.quote(str(inner))}")
    for stage, target in moves:
        lines.append(f"mount --move {shlex.quote(str(stage))} {shlex.quote(str(target))}")
    lines.append(f"mount --move {shlex.quote(str(tmp_stage))} {INSIDE_TMP}")
    lines.append(
        "awk '{print $5}' /proc/self/mountinfo | while read -r m; do "
        f'case "$m" in {INSIDE_TMP}|{OUT_INSIDE}) ;; '
        '*) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac; done'
    )
    for path in layout.writable:
        q = shlex.quote(str(path))
        lines.append(f"mount --bind {q} {q}")
        lines.append(f"mount -o remount,bind,rw {q}")
    lines.append(f"cd {shlex.quote(str(layout.workdir))}")
    # not exec: the command must not be the namespace's init (init ignores SIGXCPU and SIGTERM), and
    # unshare(1) misreports a child killed by a signal, while sh reports it as 128+N
    lines.append("set +e")
    lines.append(f'{_SETPRIV} "$@"')
    lines.append("exit $?")
    return "\n".join(lines)


def unshare_argv(layout: Layout, argv: Sequence[str]) -> list[str]:
    """The full command line running ``argv`` in new namespaces with ``layout``."""
    return [
        UNSHARE,
        "--net", "--pid", "--mount", "--ipc", "--uts",
        "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
        "--", "/bin/sh", "-c", _script(layout), "sandbox", *argv,
    ]  # fmt: skip

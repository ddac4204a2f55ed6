"""The ``bwrap`` backend: an allow-list filesystem in fresh namespaces (bubblewrap).

Only what is bound exists inside: ``/usr`` (and the merged-usr symlinks), ``/etc`` with the shadow
files and ``/etc/ssl/private`` masked, a fresh ``/dev`` and ``/proc``, the interpreter's installation,
the writable paths and a private ``/tmp``; the root itself is remounted read-only. All namespaces are
new (net: only a down loopback; pid: the tree dies with its init; user: uid 1000 inside with no
capabilities and no further user namespaces). Because the caller is root, the inside uid maps to root's
files, so anything root-owned that is *bound* is readable: hence the allow-list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from maestro.tools.sandbox.env import INSIDE_HOME, INSIDE_TMP
from maestro.tools.sandbox.layout import OUT_INSIDE, Layout

__all__ = ["BWRAP", "bwrap_argv"]

BWRAP = "bwrap"
INSIDE_UID = "1000"
_TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_MASKED_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers")
_MASKED_DIRS = ("/etc/ssl/private", "/etc/sudoers.d")


def _system() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", "/etc", "/etc"]
    for masked in _MASKED_FILES:
        if Path(masked).exists():
            args += ["--ro-bind", "/dev/null", masked]
    for masked in _MASKED_DIRS:
        if Path(masked).is_dir():
            args += ["--tmpfs", masked]
    return args


def bwrap_argv(layout: Layout, argv: Sequence[str]) -> list[str]:
    """The full command line running ``argv`` under bubblewrap with ``layout``."""
    args = [
        BWRAP,
        "--unshare-all",
        "--unshare-user",
        "--uid", INSIDE_UID,
        "--gid", INSIDE_UID,
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
    ]  # fmt: skip
    args += _system()
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--size", str(layout.tmp_bytes), "--perms", "1777", "--tmpfs", INSIDE_TMP]
    args += ["--dir", INSIDE_HOME, "--bind", str(layout.out_host), OUT_INSIDE]
    for path in layout.writable:
        args += ["--bind", str(path), str(path)]
    for path in layout.readonly:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--remount-ro", "/", "--chdir", str(layout.workdir), "--", *argv]
    return args

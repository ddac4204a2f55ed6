"""What a run sees of the filesystem, independent of the mechanism that builds it.

Both backends turn the same ``Layout`` into mounts: the system read-only, the interpreter's
installation read-only (the venv and the base Python it points to, even when that lives under a hidden
``/root``), the worktree and any extra writable paths read-write at their own paths (so tracebacks
name real files), a private size-capped ``/tmp`` holding ``HOME``, and a result directory at
``OUT_INSIDE`` backed by a host directory that only this run uses (JUnit XML lands there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["OUT_INSIDE", "Layout", "python_roots"]

OUT_INSIDE = "/tmp/.sandbox-out"


@dataclass(frozen=True)
class Layout:
    """The mounts of one run (all paths absolute and resolved on the host)."""

    workdir: Path
    writable: tuple[Path, ...]
    readonly: tuple[Path, ...]
    hidden: tuple[Path, ...]
    rundir: Path
    tmp_bytes: int

    @property
    def out_host(self) -> Path:
        """The host directory mounted at ``OUT_INSIDE``."""
        return self.rundir / "out"


def python_roots(python: Path) -> tuple[Path, ...]:
    """Directories that must be visible for ``python`` to start and import its packages.

    A venv is the directory holding ``pyvenv.cfg``; its ``home`` key names the base interpreter's
    ``bin``, whose parent is the base installation (stdlib, shared libraries).
    """
    roots: list[Path] = []
    venv = python.parent.parent
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        roots.append(venv.resolve())
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                roots.append(Path(value.strip()).resolve().parent)
    roots.append(python.resolve().parent.parent)
    unique: list[Path] = []
    for root in roots:
        if root not in unique and root != Path("/usr") and root != Path("/"):
            unique.append(root)
    return tuple(unique)

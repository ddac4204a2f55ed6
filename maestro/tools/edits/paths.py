"""Decide whether a path from a model's edit may be written, before any file is read (RELIABILITY #18).

Refused: empty paths, NUL bytes, backslashes, absolute paths (``/x``, ``~/x``, ``C:x``), any ``..``
component (even one that would stay inside), anything in ``.git`` (hooks would run on the host), and any
path whose real location — after following every symlink on the way — is outside the worktree or in
its ``.git``. The write goes to that real location (checked), never through a link, so a symlink
committed in the repository cannot carry an edit out of the worktree. The check runs against the
files as they are when the edits are validated and again just before the write.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from maestro.tools.edits.errors import EditProblem

__all__ = ["TargetPath", "check_path"]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class TargetPath:
    """A path that passed the checks: as written (normalised), where it really is, and that location."""

    rel: str
    real_rel: str
    real: Path


def check_path(root: Path, raw: str, *, block: int) -> TargetPath | EditProblem:
    """``raw`` checked against the worktree ``root``; an ``unsafe_path`` problem says which rule failed."""
    reason = _lexical_reason(raw)
    if reason is not None:
        return _unsafe(raw, reason, block)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    root_real = Path(os.path.realpath(root))
    real = Path(os.path.realpath(root_real.joinpath(*parts)))
    if not real.is_relative_to(root_real):
        return _unsafe(raw, "it leads outside the worktree through a symlink", block)
    real_rel = real.relative_to(root_real).as_posix()
    if real_rel == ".":
        return _unsafe(raw, "it resolves to the worktree itself, not a file in it", block)
    if _in_git_dir(real_rel.split("/")):
        return _unsafe(raw, "it leads into .git through a symlink", block)
    return TargetPath("/".join(parts), real_rel, real)


def _lexical_reason(raw: str) -> str | None:
    if not raw.strip():
        return "the path is empty"
    if "\x00" in raw:
        return "it contains a NUL byte"
    if "\\" in raw:
        return "it contains a backslash: use forward slashes, relative to the repository root"
    if raw.startswith(("/", "~")) or _DRIVE.match(raw):
        return "it is absolute: paths must be relative to the repository root"
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts:
        return "it names the worktree itself, not a file in it"
    if ".." in parts:
        return "it contains a `..` component"
    if _in_git_dir(parts):
        return "it is inside .git"
    return None


def _in_git_dir(parts: list[str]) -> bool:
    return any(part.lower() == ".git" for part in parts)


def _unsafe(raw: str, reason: str, block: int) -> EditProblem:
    return EditProblem("unsafe_path", f"edit {block}: path {raw!r} refused: {reason}", path=raw, block=block)

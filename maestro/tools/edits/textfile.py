"""Text files as lines, and the all-or-nothing write of a set of them.

Line endings and the final newline are properties of the file: read as found (CRLF or LF, UTF-8 with or
without BOM), edited as LF lines, written back the same way. Writes are staged: every new content goes
to a temporary file beside its target first; only when all are staged are they moved into place with
``os.replace`` (atomic per file), so a failure while staging (disk full, permissions) leaves every file
as it was. File modes are kept (an executable script stays executable).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TextFile", "read_text", "write_all"]

_BOM = "\ufeff"
_NEW_FILE_MODE = 0o644


@dataclass
class TextFile:
    """A file's lines (no newline characters) and how to write them back."""

    lines: list[str] = field(default_factory=list)
    newline: str = "\n"
    final_newline: bool = True
    bom: bool = False
    mode: int = _NEW_FILE_MODE

    def render(self) -> bytes:
        body = "\n".join(self.lines)
        if self.lines and self.final_newline:
            body += "\n"
        if self.newline != "\n":
            body = body.replace("\n", self.newline)
        return ((_BOM if self.bom else "") + body).encode("utf-8")


def read_text(path: Path) -> TextFile | str:
    """The file as a :class:`TextFile`, or why it cannot be edited as text."""
    try:
        data = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if b"\x00" in data:
        return "it is a binary file; edits apply to text files only"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"it is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    bom = text.startswith(_BOM)
    text = text.removeprefix(_BOM)
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.replace("\r\n", "\n")
    final_newline = text.endswith("\n")
    lines = text.split("\n")
    if final_newline or lines == [""]:
        lines.pop()
    return TextFile(lines, newline, final_newline or not lines, bom, mode)


def write_all(writes: Sequence[tuple[Path, bytes, int]], deletes: Sequence[Path]) -> None:
    """Write every ``(path, data, mode)`` and delete every path, or (on a staging error) change nothing."""
    staged: list[tuple[str, Path]] = []
    made_dirs: list[Path] = []
    try:
        for path, data, mode in writes:
            made_dirs.extend(_make_parents(path.parent))
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".maestro-tmp")
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, mode)
    except OSError:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for directory in reversed(made_dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for path in deletes:
        path.unlink(missing_ok=True)


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and missing ancestors; return the ones created, outermost first."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for created in reversed(missing):
        created.mkdir()
    return list(reversed(missing))

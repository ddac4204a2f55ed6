"""The edits parsed from a model's output, and the report of applying them.

Text is held as lists of lines without newline characters: both formats are line-based, and line
endings are a property of the file on disk (kept as found), not of the edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Action", "BlockOutcome", "Edit", "EditReport", "FilePatch", "Hunk", "SearchReplace"]


@dataclass(frozen=True, slots=True)
class SearchReplace:
    """An aider-style block: replace ``search`` lines with ``replace`` lines in ``path``.

    An empty ``search`` creates ``path`` (which must not exist yet, or be empty).
    """

    index: int
    path: str
    search: tuple[str, ...]
    replace: tuple[str, ...]
    line: int  # where the block starts in the model's output (1-based), for parse errors

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)


@dataclass(frozen=True, slots=True)
class Hunk:
    """One ``@@`` hunk: ``lines`` are ``(tag, text)`` with tag in ``" -+"``.

    ``old_start`` is the header's line number (1-based) or ``None`` when the model wrote ``@@ @@``;
    the header's counts are ignored (models get them wrong), the body is what counts.
    """

    old_start: int | None
    lines: tuple[tuple[str, str], ...]

    @property
    def old(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "+"]

    @property
    def new(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "-"]


@dataclass(frozen=True, slots=True)
class FilePatch:
    """A unified diff for one file. ``old_path`` is ``None`` for a new file, ``new_path`` for a deletion."""

    index: int
    old_path: str | None
    new_path: str | None
    hunks: tuple[Hunk, ...]
    line: int

    @property
    def path(self) -> str:
        """The file the patch is reported under: the new path, or the old one for a deletion."""
        return self.new_path or self.old_path or ""

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p in (self.old_path, self.new_path) if p is not None))


Edit = SearchReplace | FilePatch

Action = Literal["modified", "created", "deleted", "renamed"]


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """How one edit applied: ``match`` says which tolerance was needed, ``start``/``end`` where (1-based)."""

    index: int
    path: str
    format: Literal["search-replace", "unified-diff"]
    action: Action
    match: str
    start: int | None = None
    end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "format": self.format,
            "action": self.action,
            "match": self.match,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class EditReport:
    """What applying the edits did (or, for a dry run, would do); ``diff`` is the resulting unified diff."""

    changed: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    blocks: list[BlockOutcome] = field(default_factory=list)
    diff: str = ""
    written: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "created": self.created,
            "deleted": self.deleted,
            "blocks": [b.to_dict() for b in self.blocks],
            "diff": self.diff,
            "written": self.written,
        }

"""Apply a unified diff's hunks to a file's lines, the way ``patch`` does but tolerant of model drift.

Each hunk's old side (context and removed lines) is searched for from the end of the previous hunk on,
with the tolerance levels of :mod:`maestro.tools.edits.matching`; among several matches the one nearest
the line the header names (shifted by what earlier hunks moved) wins, as with ``patch``'s offset
search. If the hunk does not match, up to ``max_fuzz`` context lines are dropped from each end and the
search repeated (``patch``'s fuzz factor). A hunk with no line number that matches twice is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from maestro.tools.edits.feedback import ambiguous, no_match
from maestro.tools.edits.matching import LEVELS, Match, find_matches, reindent
from maestro.tools.edits.model import FilePatch, Hunk

__all__ = ["HunkFailure", "Patched", "apply_hunks"]


@dataclass(frozen=True, slots=True)
class Patched:
    """The new lines, the loosest tolerance any hunk needed, and the span touched (0-based, exclusive)."""

    lines: list[str]
    match: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class HunkFailure:
    kind: str  # "no_match" | "ambiguous"
    message: str


def apply_hunks(lines: list[str], patch: FilePatch, *, path: str, max_fuzz: int = 2) -> Patched | HunkFailure:
    """Apply every hunk of ``patch`` to a copy of ``lines``."""
    out = list(lines)
    cursor = 0
    shift = 0
    levels: list[str] = []
    notes: list[str] = []
    span: list[int] = []
    for number, hunk in enumerate(patch.hunks, start=1):
        what = f"hunk {number} of the diff for {path} (edit {patch.index})"
        if not hunk.old:
            if hunk.old_start is None:
                return HunkFailure("no_match", f"{what} has no context lines and no line number: add context")
            at = min(max(hunk.old_start + shift, cursor), len(out))
            out[at:at] = hunk.new
            cursor, shift = at + len(hunk.new), shift + len(hunk.new)
            levels.append("exact")
            span += [at, cursor]
            continue
        found = _locate(out, hunk, cursor, shift, max_fuzz)
        if isinstance(found, list):
            if found:
                return HunkFailure("ambiguous", ambiguous(what, path, found))
            return HunkFailure("no_match", no_match(what, path, out, hunk.old))
        match, new, lead, fuzz = found
        replacement = reindent(new, match)
        out[match.start : match.end] = replacement
        if hunk.old_start is not None:
            moved = match.start - (hunk.old_start - 1 + lead + shift)
            if moved:
                notes.append(f"hunk {number} offset {moved:+d}")
            shift += moved
        shift += len(replacement) - (match.end - match.start)
        cursor = match.start + len(replacement)
        levels.append(match.level)
        if fuzz:
            notes.append(f"hunk {number} fuzz {fuzz}")
        span += [match.start, cursor]
    loosest = max(levels, key=LEVELS.index) if levels else "exact"
    summary = ", ".join([loosest, *notes])
    return Patched(out, summary, min(span, default=0), max(span, default=0))


def _locate(
    lines: list[str], hunk: Hunk, cursor: int, shift: int, max_fuzz: int
) -> tuple[Match, list[str], int, int] | list[Match]:
    """The match, the new lines used, how many leading context lines fuzz dropped, and the fuzz factor."""
    lead_ctx = _context_run(hunk.lines)
    trail_ctx = _context_run(hunk.lines[::-1])
    for fuzz in range(max_fuzz + 1):
        lead = min(fuzz, lead_ctx)
        trail = min(fuzz, trail_ctx)
        if fuzz and lead == 0 and trail == 0:
            break  # nothing left to drop
        body = hunk.lines[lead : len(hunk.lines) - trail]
        old = [text for tag, text in body if tag != "+"]
        new = [text for tag, text in body if tag != "-"]
        if not old:
            break
        matches = find_matches(lines, old, lo=cursor)
        if not matches:
            continue
        if hunk.old_start is None:
            if len(matches) > 1:
                return matches
            return matches[0], new, lead, fuzz
        expected = hunk.old_start - 1 + lead + shift
        best = min(matches, key=lambda m: (abs(m.start - expected), m.start))
        return best, new, lead, fuzz
    return []


def _context_run(lines: tuple[tuple[str, str], ...]) -> int:
    count = 0
    for tag, _ in lines:
        if tag != " ":
            break
        count += 1
    return count

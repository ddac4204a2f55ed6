"""Find where a block of lines sits in a file, tolerating the drift models introduce, and say how close
the nearest region was when it is nowhere.

Levels, tried in order; the first level with any match wins (so an exact match is never out-voted by a
looser one):

1. ``exact`` — the lines as written;
2. ``trailing-whitespace`` — trailing spaces/tabs ignored (CRLF was already normalised away);
3. ``indentation`` — the block is shifted uniformly (e.g. written at column 0, sits in a method): the
   replacement is re-indented by the same shift;
4. ``blank-lines`` — as 3, and blank lines are ignored on both sides (a missing or extra blank line).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

__all__ = ["LEVELS", "Closest", "Match", "closest_region", "find_matches", "reindent"]

LEVELS = ("exact", "trailing-whitespace", "indentation", "blank-lines")
_MAX_HINT_LINES = 20_000  # beyond this, the "closest lines" hint searches only the first part


@dataclass(frozen=True, slots=True)
class Match:
    """Lines ``start:end`` (0-based, end exclusive) of the file; the indents map needle to file."""

    start: int
    end: int
    level: str
    needle_indent: str = ""
    file_indent: str = ""


@dataclass(frozen=True, slots=True)
class Closest:
    """The region most similar to a needle that did not match: 0-based ``start:end``, ``ratio`` 0..1."""

    start: int
    end: int
    ratio: float


def find_matches(lines: Sequence[str], needle: Sequence[str], *, lo: int = 0) -> list[Match]:
    """All matches of ``needle`` in ``lines[lo:]`` at the strictest level that has any."""
    if not needle:
        return []
    for level in LEVELS:
        found = _at_level(lines, needle, lo, level)
        if found:
            return found
    return []


def _at_level(lines: Sequence[str], needle: Sequence[str], lo: int, level: str) -> list[Match]:
    if level == "blank-lines":
        return _ignoring_blanks(lines, needle, lo)
    n = len(needle)
    found: list[Match] = []
    if level == "indentation":
        needle_indent, wanted = _dedent(needle)
        if not any(wanted):
            return []
        for i in range(lo, len(lines) - n + 1):
            indent, window = _dedent(lines[i : i + n])
            if window == wanted:
                found.append(Match(i, i + n, level, needle_indent, indent))
        return found
    key = (lambda s: s) if level == "exact" else str.rstrip
    wanted = [key(s) for s in needle]
    first = wanted[0]
    for i in range(lo, len(lines) - n + 1):
        if key(lines[i]) == first and [key(s) for s in lines[i : i + n]] == wanted:
            found.append(Match(i, i + n, level))
    return found


def _ignoring_blanks(lines: Sequence[str], needle: Sequence[str], lo: int) -> list[Match]:
    needle_indent, wanted = _dedent([s for s in needle if s.strip()])
    if not wanted:
        return []
    solid = [i for i in range(lo, len(lines)) if lines[i].strip()]
    m = len(wanted)
    found: list[Match] = []
    for k in range(len(solid) - m + 1):
        picked = solid[k : k + m]
        indent, window = _dedent([lines[i] for i in picked])
        if window == wanted:
            found.append(Match(picked[0], picked[-1] + 1, "blank-lines", needle_indent, indent))
    return found


def _dedent(lines: Sequence[str]) -> tuple[str, list[str]]:
    """The common leading whitespace of the non-blank lines, and the lines without it (right-stripped)."""
    leads = [s[: len(s) - len(s.lstrip())] for s in lines if s.strip()]
    common = os.path.commonprefix(leads) if leads else ""
    return common, [s[len(common) :].rstrip() if s.strip() else "" for s in lines]


def reindent(lines: Sequence[str], match: Match) -> list[str]:
    """The replacement lines shifted the way the matched region was shifted relative to the needle."""
    if match.needle_indent == match.file_indent:
        return list(lines)
    out: list[str] = []
    for line in lines:
        if not line.strip():
            out.append("")
        elif line.startswith(match.needle_indent):
            out.append(match.file_indent + line[len(match.needle_indent) :])
        else:  # less indented than the SEARCH block itself: keep it at the block's level
            out.append(match.file_indent + line.lstrip())
    return out


def closest_region(lines: Sequence[str], needle: Sequence[str]) -> Closest | None:
    """The window of ``len(needle)`` lines most similar to ``needle`` (whitespace-insensitive)."""
    wanted = "\n".join(s.strip() for s in needle)
    n = max(1, len(needle))
    scope = lines[:_MAX_HINT_LINES]
    if not scope or not wanted.strip():
        return None
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(wanted)
    best: Closest | None = None
    for i in range(max(1, len(scope) - n + 1)):
        matcher.set_seq1("\n".join(s.strip() for s in scope[i : i + n]))
        floor = best.ratio if best else 0.0
        if matcher.real_quick_ratio() <= floor or matcher.quick_ratio() <= floor:
            continue
        ratio = matcher.ratio()
        if ratio > floor:
            best = Closest(i, min(i + n, len(scope)), ratio)
    return best

"""Messages for edits that did not fit the file, written for the model that has to fix them.

A model can only repair a SEARCH block if it sees what is actually there: so a miss names the file, the
block, the most similar region (line numbers, the lines themselves, a similarity score) and the first
line that differs; an ambiguous match names every place it matched.
"""

from __future__ import annotations

from collections.abc import Sequence

from maestro.tools.edits.matching import Match, closest_region

__all__ = ["ambiguous", "no_match"]

_MAX_SHOWN = 30  # lines of the closest region quoted back


def no_match(what: str, path: str, lines: Sequence[str], needle: Sequence[str]) -> str:
    """``what`` (e.g. "SEARCH block 2 for src/x.py") did not match: show the closest region."""
    closest = closest_region(lines, needle)
    if not lines:
        return f"{what} did not match: {path} is empty"
    if closest is None:
        return f"{what} did not match any lines of {path} ({len(lines)} lines)"
    start, end = closest.start, closest.end
    shown = _quote(lines, start, min(end, start + _MAX_SHOWN))
    message = (
        f"{what} did not match; the closest lines are {start + 1}-{end} "
        f"({round(closest.ratio * 100)}% similar):\n{shown}"
    )
    first = _first_difference(lines[start:end], needle, start)
    if first:
        message += "\n" + first
    return message + "\nCopy the lines to replace exactly as they are in the file."


def ambiguous(what: str, path: str, matches: Sequence[Match]) -> str:
    places = ", ".join(f"{m.start + 1}-{m.end}" for m in matches[:10])
    return (
        f"{what} matches {len(matches)} places in {path} (lines {places}): "
        "include more surrounding lines so that it matches exactly one"
    )


def _quote(lines: Sequence[str], start: int, end: int) -> str:
    width = len(str(end))
    return "\n".join(f"{n + 1:>{width}} | {lines[n]}" for n in range(start, end))


def _first_difference(window: Sequence[str], needle: Sequence[str], start: int) -> str | None:
    for offset, (have, want) in enumerate(zip(window, needle, strict=False)):
        if have.strip() != want.strip():
            return f"First difference: line {start + offset + 1} is {have!r}, the edit expects {want!r}."
    return None

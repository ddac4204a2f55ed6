"""Read aider-style SEARCH/REPLACE blocks out of a model's answer.

The file path is the line before ``<<<<<<< SEARCH`` (markdown decoration, backticks and a trailing colon
are tolerated), or the info string of the code fence opening the block (```` ```python src/x.py ````),
or the line before that fence. A block with no path of its own reuses the previous block's path, as
models do when they send several blocks for one file. Marker lines may carry 5-9 marker characters.
"""

from __future__ import annotations

import re

from maestro.tools.edits.errors import EditProblem
from maestro.tools.edits.model import SearchReplace

__all__ = ["is_fence", "is_search_marker", "read_block"]

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_PATH = re.compile(r"[^\s`'\"<>|*?]+")
_LABEL = re.compile(r"^(?:#+\s*)?(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)
_BARE_NAMES = frozenset({"Makefile", "Dockerfile", "Jenkinsfile", "LICENSE", "README", "Procfile"})
_LOOKBACK = 3  # lines above the marker (blank lines not counted) where a path may be


def is_search_marker(line: str) -> bool:
    return _SEARCH.match(line) is not None


def is_fence(line: str) -> bool:
    return _FENCE.match(line) is not None


def read_block(
    lines: list[str], start: int, *, index: int, previous_path: str | None
) -> tuple[SearchReplace | EditProblem, int]:
    """Read the block whose SEARCH marker is ``lines[start]``: the block (or its problem), the next line."""
    path = _path_before(lines, start) or previous_path
    where = f"SEARCH block {index} (line {start + 1} of the answer)"
    search: list[str] = []
    replace: list[str] = []
    current = search
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if current is search and _DIVIDER.match(line):
            current = replace
        elif current is replace and _REPLACE.match(line):
            if path is None:
                return _problem(
                    f"{where} names no file: put the file path on the line before `<<<<<<< SEARCH`",
                    index,
                ), i + 1
            block = SearchReplace(index, path, tuple(search), tuple(replace), start + 1)
            return block, i + 1
        elif is_search_marker(line):
            break
        else:
            current.append(line)
        i += 1
    missing = "`=======`" if current is search else "`>>>>>>> REPLACE`"
    return _problem(f"{where} is not terminated: {missing} is missing", index, path), i


def _problem(message: str, index: int, path: str | None = None) -> EditProblem:
    return EditProblem("parse", message, path=path, block=index)


def _path_before(lines: list[str], marker: int) -> str | None:
    seen = 0
    i = marker - 1
    while i >= 0 and seen < _LOOKBACK:
        line = lines[i].strip()
        i -= 1
        if not line:
            continue
        seen += 1
        if _REPLACE.match(line) or _SEARCH.match(line):
            return None  # the previous block ends here: no path of our own
        fence = _FENCE.match(line)
        if fence:
            info = fence.group(2).split()
            if info and _looks_like_path(info[-1]):
                return info[-1]
            continue  # ```python: the path may be on the line above the fence
        candidate = _clean(line)
        return candidate if _looks_like_path(candidate) else None
    return None


def _clean(line: str) -> str:
    text = _LABEL.sub("", line.strip())
    text = text.strip("*_` ").rstrip(":").strip("*_` ")
    return text


def _looks_like_path(text: str) -> bool:
    if not _PATH.fullmatch(text):
        return False
    return "/" in text or "." in text or text in _BARE_NAMES

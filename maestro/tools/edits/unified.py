"""Read unified diffs (``--- a/x`` / ``+++ b/x`` / ``@@`` hunks) out of a model's answer.

Tolerant where models are sloppy and strict nowhere it matters: the ``@@`` counts are ignored (the
hunk body decides), ``@@ @@`` without numbers is accepted, a hunk line that lost its leading space is
read as context, ``a/`` and ``b/`` prefixes and timestamps are dropped, ``/dev/null`` marks a new or
deleted file. ``diff --git``/``index``/mode lines are skipped by the caller.
"""

from __future__ import annotations

import re

from maestro.tools.edits.errors import EditProblem
from maestro.tools.edits.model import FilePatch, Hunk

__all__ = ["is_diff_start", "read_file_patch"]

_HEADER = re.compile(r"^@@+\s*-(\d+)(?:,\d+)?\s+\+(\d+)(?:,\d+)?\s*@@+")


def is_diff_start(lines: list[str], i: int) -> bool:
    """Whether ``lines[i]`` opens a file's diff: ``--- old`` directly followed by ``+++ new``."""
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def read_file_patch(lines: list[str], start: int, *, index: int) -> tuple[FilePatch | EditProblem, int]:
    """Read the diff whose ``---`` line is ``lines[start]``; return it (or the problem) and the next line."""
    old_path = _diff_path(lines[start][4:], "a/")
    new_path = _diff_path(lines[start + 1][4:], "b/")
    label = new_path or old_path or "?"
    if old_path is None and new_path is None:
        problem = f"diff {index} (line {start + 1} of the answer) has /dev/null on both sides"
        return EditProblem("parse", problem, block=index), start + 2
    hunks: list[Hunk] = []
    i = start + 2
    while i < len(lines) and lines[i].startswith("@@"):
        header = _HEADER.match(lines[i])
        old_start = int(header.group(1)) if header else None
        body, i = _read_body(lines, i + 1)
        if not any(tag != " " for tag, _ in body):
            continue  # a hunk that changes nothing
        hunks.append(Hunk(old_start, tuple(body)))
    if not hunks and old_path is not None and new_path is not None:
        problem = f"the diff for {label} (edit {index}, line {start + 1} of the answer) has no `@@` hunks"
        return EditProblem("parse", problem, path=label, block=index), i
    return FilePatch(index, old_path, new_path, tuple(hunks), start + 1), i


def _read_body(lines: list[str], i: int) -> tuple[list[tuple[str, str]], int]:
    body: list[tuple[str, str]] = []
    while i < len(lines):
        line = lines[i].rstrip("\r")
        if line.startswith("@@") or line.startswith("```") or is_diff_start(lines, i):
            break
        if line.startswith("\\"):  # "\ No newline at end of file"
            i += 1
            continue
        if line == "":
            if not _continues(lines, i + 1):
                break
            body.append((" ", ""))
        elif line[0] in " -+":
            body.append((line[0], line[1:]))
        else:
            break
        i += 1
    return body, i


def _continues(lines: list[str], i: int) -> bool:
    """After a bare empty line: does the hunk go on (so the empty line was a blank context line)?"""
    while i < len(lines) and lines[i] == "":
        i += 1
    if i >= len(lines):
        return False
    line = lines[i]
    return line[:1] in (" ", "-", "+") and not line.startswith("@@") and not is_diff_start(lines, i)


def _diff_path(raw: str, prefix: str) -> str | None:
    path = raw.split("\t", 1)[0].strip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1]
    if path == "/dev/null":
        return None
    return path[len(prefix) :] if path.startswith(prefix) else path

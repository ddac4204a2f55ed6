"""Glob patterns over repository paths, with gitignore's anchoring rule and ``**``.

A pattern without a ``/`` matches at any depth (``conftest.py``, ``test_*.py``); one with a ``/`` is
anchored at the repository root (``tests/**``, ``.github/**``); ``**`` spans any number of directories;
a pattern that matches a directory matches everything under it. ``*``, ``?`` and ``[...]`` never cross
a ``/``. (``fnmatch`` and Python 3.11's ``PurePath.match`` have neither ``**`` nor anchoring.)
"""

from __future__ import annotations

import re

__all__ = ["compile_glob"]


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A compiled regex; use ``.fullmatch(path)`` with a POSIX path relative to the repository root."""
    body = pattern.strip().lstrip("/").rstrip("/")
    if "/" not in body:
        body = "**/" + body
    segments = body.split("/")
    regex = ""
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _segment(segment) + ("" if last else "/")
    return re.compile(regex + "(?:/.*)?")


def _segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in segment[i + 2 :]:
            end = segment.index("]", i + 2)
            inner = segment[i + 1 : end]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)

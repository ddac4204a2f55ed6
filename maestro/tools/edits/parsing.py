"""Find every edit in a model's answer, in either format, in the order written.

Prose, code fences and ``diff --git`` preambles around the edits are skipped. Edits are numbered from 1
in order of appearance; that number is what error messages call "block N" / "edit N".
"""

from __future__ import annotations

from maestro.tools.edits.blocks import is_search_marker, read_block
from maestro.tools.edits.errors import EditParseError, EditProblem
from maestro.tools.edits.model import Edit
from maestro.tools.edits.unified import is_diff_start, read_file_patch

__all__ = ["parse_edits", "scan_edits"]


def scan_edits(text: str) -> tuple[list[Edit], list[EditProblem]]:
    """The edits found in ``text`` and the problems with malformed ones (never raises)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    edits: list[Edit] = []
    problems: list[EditProblem] = []
    previous_path: str | None = None
    i = 0
    while i < len(lines):
        index = len(edits) + len(problems) + 1
        block: Edit | EditProblem
        if is_search_marker(lines[i]):
            block, i = read_block(lines, i, index=index, previous_path=previous_path)
        elif is_diff_start(lines, i):
            block, i = read_file_patch(lines, i, index=index)
        else:
            i += 1
            continue
        if isinstance(block, EditProblem):
            problems.append(block)
        else:
            edits.append(block)
            previous_path = block.path
    return edits, problems


def parse_edits(text: str) -> list[Edit]:
    """Every edit in ``text``; raises ``EditParseError`` if one is malformed or there is none at all."""
    edits, problems = scan_edits(text)
    if problems:
        raise EditParseError(problems)
    if not edits:
        raise EditParseError(
            [
                EditProblem(
                    "parse",
                    "no edits found: send SEARCH/REPLACE blocks (the file path on the line before "
                    "`<<<<<<< SEARCH`) or a unified diff (`--- a/path`, `+++ b/path`, `@@` hunks)",
                )
            ]
        )
    return edits

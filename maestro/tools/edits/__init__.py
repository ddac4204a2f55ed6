"""Apply a model's code edits to a worktree: SEARCH/REPLACE blocks and unified diffs, tolerant of
whitespace drift, all-or-nothing, with path safety and protected paths (RELIABILITY #17, #18).

``apply_edits(worktree, model_output, policy=EditPolicy(...))`` returns an ``EditReport`` or raises an
``EditRejected`` whose ``feedback`` is the text to send back to the model. Pure standard library.
"""

from maestro.tools.edits.apply import HasPath, apply_edits
from maestro.tools.edits.errors import (
    EditDidNotApply,
    EditParseError,
    EditProblem,
    EditRejected,
    ProtectedPath,
    UnsafePath,
)
from maestro.tools.edits.globs import compile_glob
from maestro.tools.edits.model import BlockOutcome, Edit, EditReport, FilePatch, Hunk, SearchReplace
from maestro.tools.edits.parsing import parse_edits, scan_edits
from maestro.tools.edits.paths import TargetPath, check_path
from maestro.tools.edits.policy import DEFAULT_PINNED, DEFAULT_PROTECTED, EditPolicy

__all__ = [
    "DEFAULT_PINNED",
    "DEFAULT_PROTECTED",
    "BlockOutcome",
    "Edit",
    "EditDidNotApply",
    "EditParseError",
    "EditPolicy",
    "EditProblem",
    "EditRejected",
    "EditReport",
    "FilePatch",
    "HasPath",
    "Hunk",
    "ProtectedPath",
    "SearchReplace",
    "TargetPath",
    "UnsafePath",
    "apply_edits",
    "check_path",
    "compile_glob",
    "parse_edits",
    "scan_edits",
]

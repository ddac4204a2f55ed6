"""Why a set of edits was rejected, phrased for the model that wrote them.

Every problem is collected before anything is raised, so one round trip tells the model about every
block that failed, not only the first. The exception class says what kind of failure it was:
``UnsafePath`` and ``ProtectedPath`` are refusals (CLI exit 3, RELIABILITY #17/#18); the others mean
the edit text did not parse or did not fit the files. Nothing is written when any of them is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from maestro.core.errors import InvalidRequest, Refused

__all__ = [
    "EditDidNotApply",
    "EditParseError",
    "EditProblem",
    "EditRejected",
    "ProblemKind",
    "ProtectedPath",
    "UnsafePath",
    "rejection",
]

ProblemKind = Literal["parse", "unsafe_path", "protected_path", "no_match", "ambiguous", "file_state"]


@dataclass(frozen=True, slots=True)
class EditProblem:
    """One thing wrong with one edit: ``block`` is its 1-based index in the model's output."""

    kind: ProblemKind
    message: str
    path: str | None = None
    block: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "path": self.path, "block": self.block}


class EditRejected(InvalidRequest):
    """The edits were not applied (nothing was written); ``problems`` lists every reason."""

    code = "edit_rejected"

    def __init__(self, problems: Sequence[EditProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = "the edit was rejected" if count == 1 else f"{count} problems: the edits were rejected"
        lines = [f"{head}; nothing was written."] + [f"- {p.message}" for p in self.problems]
        super().__init__("\n".join(lines), problems=[p.to_dict() for p in self.problems])

    @property
    def feedback(self) -> str:
        """The text to hand back to the model: every problem, with the closest lines where known."""
        return self.message


class EditParseError(EditRejected):
    """The output contains no edit, or a block is malformed (unterminated, no file path)."""

    code = "edit_parse_error"


class EditDidNotApply(EditRejected):
    """A SEARCH block or diff hunk did not match the file, matched twice, or the file state is wrong."""

    code = "edit_did_not_apply"


class UnsafePath(EditRejected, Refused):
    """A path is absolute, has ``..``, enters ``.git`` or resolves outside the worktree (RELIABILITY #18)."""

    code = "unsafe_path"
    exit_code = Refused.exit_code
    http_status = Refused.http_status


class ProtectedPath(EditRejected, Refused):
    """A path is protected by the workcell's policy: tests, CI config, the verifier (RELIABILITY #17)."""

    code = "protected_path"
    exit_code = Refused.exit_code
    http_status = Refused.http_status


def rejection(problems: Sequence[EditProblem]) -> EditRejected:
    """The most serious exception for ``problems``: unsafe paths, then protected paths, then the rest."""
    kinds = {p.kind for p in problems}
    if "unsafe_path" in kinds:
        return UnsafePath(problems)
    if "protected_path" in kinds:
        return ProtectedPath(problems)
    if kinds == {"parse"}:
        return EditParseError(problems)
    return EditDidNotApply(problems)

"""Apply a model's edits to a worktree: all of them, or none.

Order of work, and why:

1. parse (if given text) — malformed blocks are reported with their line in the answer;
2. check every path (safety, then the workcell's policy) before reading any file, so a refused path
   never leaks file contents into an error message;
3. apply every edit to in-memory copies, in order (a later block sees an earlier block's result),
   collecting every problem rather than stopping at the first;
4. only if there was no problem: write every file (staged, then ``os.replace``), delete deleted ones.

So on any failure nothing is written, and the exception lists every problem for the model.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from maestro.tools.edits.errors import EditProblem, ProblemKind, rejection
from maestro.tools.edits.feedback import ambiguous, no_match
from maestro.tools.edits.hunks import HunkFailure, apply_hunks
from maestro.tools.edits.matching import find_matches, reindent
from maestro.tools.edits.model import Action, BlockOutcome, Edit, EditReport, FilePatch, SearchReplace
from maestro.tools.edits.parsing import parse_edits
from maestro.tools.edits.paths import TargetPath, check_path
from maestro.tools.edits.policy import EditPolicy
from maestro.tools.edits.textfile import TextFile, read_text, write_all

__all__ = ["HasPath", "apply_edits"]


class HasPath(Protocol):
    """Anything with a worktree ``path`` (``maestro.tools.workspace.Worktree``)."""

    @property
    def path(self) -> Path: ...


class _Failed(Exception):
    def __init__(self, problem: EditProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class _File:
    target: TargetPath
    original: TextFile | None
    current: TextFile | None


class _Staging:
    """In-memory copies of the files the edits touch, keyed by real location."""

    def __init__(self) -> None:
        self.files: dict[str, _File] = {}

    def get(self, target: TargetPath, edit: Edit) -> _File:
        known = self.files.get(target.real_rel)
        if known is not None:
            return known
        original: TextFile | None = None
        if target.real.is_dir():
            raise _Failed(_state(edit, target.rel, f"{target.rel} is a directory, not a file"))
        if target.real.exists():
            loaded = read_text(target.real)
            if isinstance(loaded, str):
                raise _Failed(_state(edit, target.rel, f"{target.rel} cannot be edited: {loaded}"))
            original = loaded
        copy = None if original is None else replace(original, lines=list(original.lines))
        self.files[target.real_rel] = _File(target, original, copy)
        return self.files[target.real_rel]


def apply_edits(
    target: Path | HasPath,
    edits: str | Sequence[Edit],
    *,
    policy: EditPolicy | None = None,
    dry_run: bool = False,
    max_fuzz: int = 2,
) -> EditReport:
    """Apply ``edits`` (a model's answer, or parsed edits) to the worktree at ``target``.

    Raises an ``EditRejected`` subclass listing every problem, having written nothing: ``UnsafePath``
    (RELIABILITY #18), ``ProtectedPath`` (#17), ``EditParseError``, ``EditDidNotApply``. With
    ``dry_run`` the report says what would change and nothing is written.
    """
    root = target if isinstance(target, Path) else target.path
    parsed = parse_edits(edits) if isinstance(edits, str) else list(edits)
    policy = policy or EditPolicy()
    targets, problems = _check_paths(root, parsed, policy)
    if problems:
        raise rejection(problems)
    staging = _Staging()
    outcomes: list[BlockOutcome] = []
    for edit in parsed:
        try:
            if isinstance(edit, SearchReplace):
                outcomes.append(_apply_block(staging, edit, targets[edit.path]))
            else:
                outcomes.append(_apply_patch(staging, edit, targets, max_fuzz))
        except _Failed as failed:
            problems.append(failed.problem)
    if problems:
        raise rejection(problems)
    report = _report(staging, outcomes)
    if not dry_run:
        _write(root, staging, policy)
        report.written = True
    return report


def _check_paths(
    root: Path, edits: Sequence[Edit], policy: EditPolicy
) -> tuple[dict[str, TargetPath], list[EditProblem]]:
    targets: dict[str, TargetPath] = {}
    problems: list[EditProblem] = []
    for edit in edits:
        for raw in edit.paths:
            checked = check_path(root, raw, block=edit.index)
            if isinstance(checked, EditProblem):
                problems.append(checked)
                continue
            refusal = policy.refusal(checked.rel, checked.real_rel)
            if refusal is not None:
                message = f"edit {edit.index}: {refusal}"
                problems.append(EditProblem("protected_path", message, path=raw, block=edit.index))
                continue
            targets[raw] = checked
    return targets, problems


def _apply_block(staging: _Staging, edit: SearchReplace, target: TargetPath) -> BlockOutcome:
    file = staging.get(target, edit)
    what = f"SEARCH block {edit.index} for {target.rel}"
    if not any(line.strip() for line in edit.search):
        if file.current is not None and any(line.strip() for line in file.current.lines):
            raise _Failed(
                _state(
                    edit,
                    target.rel,
                    f"{what} is empty, which creates a new file, but {target.rel} already exists "
                    f"({len(file.current.lines)} lines): put the lines to replace in SEARCH",
                )
            )
        action: Action = "created" if file.current is None else "modified"
        file.current = TextFile(list(edit.replace), mode=file.original.mode if file.original else 0o644)
        count = len(edit.replace)
        return BlockOutcome(edit.index, target.rel, "search-replace", action, "new-file", 1, count)
    if file.current is None:
        gone = "was deleted by an earlier edit" if file.original else "does not exist"
        raise _Failed(
            _state(edit, target.rel, f"{what}: {target.rel} {gone}; to create a file, leave SEARCH empty")
        )
    lines = file.current.lines
    matches = find_matches(lines, edit.search)
    if not matches:
        message = no_match(what, target.rel, lines, edit.search)
        raise _Failed(EditProblem("no_match", message, path=target.rel, block=edit.index))
    if len(matches) > 1:
        message = ambiguous(what, target.rel, matches)
        raise _Failed(EditProblem("ambiguous", message, path=target.rel, block=edit.index))
    match = matches[0]
    replacement = reindent(edit.replace, match)
    lines[match.start : match.end] = replacement
    start, end = match.start + 1, match.start + len(replacement)
    return BlockOutcome(edit.index, target.rel, "search-replace", "modified", match.level, start, end)


def _apply_patch(
    staging: _Staging, patch: FilePatch, targets: dict[str, TargetPath], max_fuzz: int
) -> BlockOutcome:
    old = staging.get(targets[patch.old_path], patch) if patch.old_path is not None else None
    new = staging.get(targets[patch.new_path], patch) if patch.new_path is not None else None
    if old is None:  # a new file: every hunk line must be an addition
        assert new is not None
        return _create_from_diff(patch, new)
    rel = old.target.rel
    if old.current is None:
        raise _Failed(_state(patch, rel, f"the diff for {rel} (edit {patch.index}): {rel} does not exist"))
    patched = apply_hunks(old.current.lines, patch, path=rel, max_fuzz=max_fuzz)
    if isinstance(patched, HunkFailure):
        kind: ProblemKind = "ambiguous" if patched.kind == "ambiguous" else "no_match"
        raise _Failed(EditProblem(kind, patched.message, path=rel, block=patch.index))
    if new is None:
        old.current = None
        return BlockOutcome(patch.index, rel, "unified-diff", "deleted", patched.match)
    if new is old:
        old.current.lines = patched.lines
        start, end = patched.start + 1, patched.end
        return BlockOutcome(patch.index, rel, "unified-diff", "modified", patched.match, start, end)
    if new.current is not None:
        raise _Failed(_state(patch, new.target.rel, f"edit {patch.index} renames {rel} onto existing file"))
    new.current = replace(old.current, lines=patched.lines)
    old.current = None
    return BlockOutcome(patch.index, new.target.rel, "unified-diff", "renamed", patched.match)


def _create_from_diff(patch: FilePatch, new: _File) -> BlockOutcome:
    rel = new.target.rel
    if any(tag != "+" for hunk in patch.hunks for tag, _ in hunk.lines):
        message = f"the diff for new file {rel} (edit {patch.index}) has context or removed lines"
        raise _Failed(EditProblem("parse", message, path=rel, block=patch.index))
    if new.current is not None and any(line.strip() for line in new.current.lines):
        message = f"the diff for {rel} (edit {patch.index}) creates it from /dev/null, but it already exists"
        raise _Failed(_state(patch, rel, message))
    lines = [text for hunk in patch.hunks for _, text in hunk.lines]
    new.current = TextFile(lines)
    return BlockOutcome(patch.index, rel, "unified-diff", "created", "new-file", 1, len(lines))


def _state(edit: Edit, path: str, message: str) -> EditProblem:
    return EditProblem("file_state", message, path=path, block=edit.index)


def _report(staging: _Staging, outcomes: list[BlockOutcome]) -> EditReport:
    report = EditReport(blocks=outcomes)
    chunks: list[str] = []
    for rel, file in staging.files.items():
        before = file.original.lines if file.original else []
        after = file.current.lines if file.current else []
        if file.original is None and file.current is None:
            continue
        if file.original is None:
            report.created.append(rel)
        elif file.current is None:
            report.deleted.append(rel)
        elif before != after:
            report.changed.append(rel)
        else:
            continue
        fromfile = f"a/{rel}" if file.original is not None else "/dev/null"
        tofile = f"b/{rel}" if file.current is not None else "/dev/null"
        diff = difflib.unified_diff(before, after, fromfile, tofile, lineterm="")
        chunks.append("\n".join(diff) + "\n")
    report.diff = "".join(chunks)
    return report


def _write(root: Path, staging: _Staging, policy: EditPolicy) -> None:
    writes: list[tuple[Path, bytes, int]] = []
    deletes: list[Path] = []
    for file in staging.files.values():
        # Check again just before writing: the tree may have changed since validation.
        again = check_path(root, file.target.rel, block=0)
        if isinstance(again, EditProblem) or again.real != file.target.real:
            problem = EditProblem("unsafe_path", f"{file.target.rel} changed while the edits were validated")
            raise rejection([problem])
        if file.current is not None:
            if file.original is None or file.current.render() != file.original.render():
                writes.append((file.target.real, file.current.render(), file.current.mode))
        elif file.original is not None:
            deletes.append(file.target.real)
    write_all(writes, deletes)

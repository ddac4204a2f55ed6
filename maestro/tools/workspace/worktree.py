"""One run's working copy: a git worktree on its own branch, and what a workcell does with it.

Reads are confined to the worktree (no ``..``, no absolute paths, no ``.git``, no symlink out); writes
go through :mod:`maestro.tools.edits`. ``diff()`` is always against the base commit the run started
from, committed or not, so a reviewer sees the whole proposal. ``commit()`` never runs hooks or asks
for a GPG passphrase.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from maestro.core.errors import InvalidRequest, NotFound
from maestro.tools.workspace.git import DEFAULT_TIMEOUT, run_git

__all__ = ["DEFAULT_AUTHOR", "FileStatus", "Worktree"]

DEFAULT_AUTHOR = "Maestro Bot <bot@maestro.invalid>"
_AUTHOR = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")

State = Literal["modified", "added", "deleted", "renamed", "untracked", "other"]
_STATES: dict[str, State] = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed", "?": "untracked"}


@dataclass(frozen=True, slots=True)
class FileStatus:
    """A changed path and git's two-letter porcelain code (index, worktree)."""

    path: str
    code: str

    @property
    def state(self) -> State:
        for letter in (self.code[1], self.code[0]):
            if letter in _STATES:
                return _STATES[letter]
        return "other"


@dataclass
class Worktree:
    """A run's worktree; build it with ``Workspace.open``, not directly."""

    path: Path
    branch: str
    base_ref: str
    base_sha: str
    repository: Path  # the bare repository (cache) the worktree belongs to
    remote_url: str  # where the repository came from, without credentials
    run: str | None = None
    record: Path | None = None  # the run record that makes ``open(..., reuse=True)`` idempotent
    author: str = DEFAULT_AUTHOR
    timeout: float = DEFAULT_TIMEOUT
    _removed: bool = field(default=False, repr=False)

    def _git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        return run_git(args, cwd=self.path, timeout=self.timeout, env=env, check=check).stdout

    def files(self, glob: str = "**") -> list[str]:
        """Tracked and untracked (not ignored) files matching ``glob`` (git glob: ``**`` spans dirs)."""
        out = self._git(
            "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", f":(glob){glob}"
        )
        names = sorted({name for name in out.split("\0") if name})
        return [name for name in names if (self.path / name).is_file()]

    def read(self, relpath: str) -> str:
        """The text of a file in the worktree; paths leaving the worktree or entering ``.git`` are refused."""
        target = self._inside(relpath)
        if not target.is_file():
            raise NotFound(f"{relpath} does not exist in the worktree (branch {self.branch})", path=relpath)
        return target.read_text(encoding="utf-8", errors="replace")

    def _inside(self, relpath: str) -> Path:
        parts = [p for p in relpath.replace("\\", "/").split("/") if p not in ("", ".")]
        bad = relpath.startswith(("/", "~")) or ".." in parts or any(p.lower() == ".git" for p in parts)
        root = Path(os.path.realpath(self.path))
        target = Path(os.path.realpath(root.joinpath(*parts)))
        if bad or not parts or not target.is_relative_to(root) or ".git" in target.relative_to(root).parts:
            raise InvalidRequest(
                f"{relpath!r} is not a file inside the worktree: use a path relative to the repository "
                "root, without `..`, outside .git",
                path=relpath,
            )
        return target

    def status(self) -> list[FileStatus]:
        """Uncommitted changes, untracked files included (``git status --porcelain``)."""
        out = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all")
        entries = out.split("\0")
        result: list[FileStatus] = []
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if "R" in code or "C" in code:
                i += 1  # the next field is the original path
            result.append(FileStatus(path, code))
        return result

    def diff(self) -> str:
        """The unified diff from the base commit to the worktree as it is now (new files included).

        A throwaway index is used so the worktree's own index (what the model may have staged) is untouched.
        """
        with tempfile.TemporaryDirectory(prefix="maestro-diff-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self._git("read-tree", "HEAD", env=env)
            self._git("add", "-A", env=env)
            return self._git("diff", "--cached", "--no-color", "--no-ext-diff", self.base_sha, env=env)

    def commit(self, message: str, author: str | None = None) -> str | None:
        """Commit every change (new files included) and return the commit id; ``None`` if nothing changed."""
        who = _AUTHOR.match(author or self.author)
        if who is None:
            raise InvalidRequest(f"author {author!r} is not `Name <email>`", author=author)
        if not message.strip():
            raise InvalidRequest("a commit needs a message")
        self._git("add", "-A")
        if run_git(["diff", "--cached", "--quiet"], cwd=self.path, check=False).returncode == 0:
            return None
        name, email = who.group("name"), who.group("email")
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        self._git("commit", "-q", "--no-verify", "--no-gpg-sign", "-m", message, env=env)
        return self._git("rev-parse", "HEAD").strip()

    def head(self) -> str:
        """The commit the branch points at now."""
        return self._git("rev-parse", "HEAD").strip()

    def remove(self, *, delete_branch: bool = False) -> None:
        """Delete the worktree directory and unregister it (``git worktree prune``); idempotent.

        The branch is kept by default: the PR backend may still push it or a reviewer may want it.
        """
        repo = self.repository
        if self.path.exists():
            run_git(["worktree", "remove", "--force", str(self.path)], cwd=repo, check=False)
            shutil.rmtree(self.path, ignore_errors=True)
        run_git(["worktree", "prune"], cwd=repo, timeout=self.timeout)
        if delete_branch:
            run_git(["branch", "-D", self.branch], cwd=repo, check=False)
        if self.record is not None:
            self.record.unlink(missing_ok=True)
        self._removed = True

    def to_record(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("_removed")
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}

    @classmethod
    def from_record(cls, data: dict[str, object]) -> Worktree:
        paths = {"path", "repository", "record"}
        values = {k: (Path(str(v)) if k in paths and v is not None else v) for k, v in data.items()}
        return cls(**values)  # type: ignore[arg-type]

    def save_record(self) -> None:
        if self.record is None:
            return
        self.record.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_record(), indent=2))
        os.replace(tmp, self.record)

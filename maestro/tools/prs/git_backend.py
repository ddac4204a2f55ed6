"""The ``git`` backend: pull requests for any remote git can push to, kept in the state DB.

Opening pushes the worktree's HEAD to a ``maestro/*`` branch of the remote (file://, ssh, https: no
forge needed) and records the PR (title, body, labels, reviews, state) in ``pull_requests``;
``maestro prs list|show|review|merge`` work on that record. Merging — humans with ``repo:merge`` only,
after an approving review — fetches the base and the reviewed head into a throwaway clone, makes a real
merge commit (``--no-ff``) and pushes it to the base branch as an ordinary fast-forward (never forced):
if anyone moved the base or the branch meanwhile, the merge is refused and nothing changes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer
from maestro.core.errors import InvalidRequest
from maestro.tools.prs._base import BaseBackend
from maestro.tools.prs.errors import GitFailed
from maestro.tools.prs.gitcli import Git
from maestro.tools.prs.safety import Recorder
from maestro.tools.prs.types import PullRequest, RepoRef

__all__ = ["GitBackend", "merge_message"]


class GitBackend(BaseBackend):
    """``PRBackend`` over plain git remotes; ``repo.url`` is the remote URL (or a local path)."""

    name = "git"

    def __init__(
        self, engine: Engine, authorizer: Authorizer, record: Recorder, *, git: Git | None = None
    ) -> None:
        super().__init__(engine, authorizer, record, git=git or Git())

    def _repo_id(self, repo: RepoRef) -> str:
        """The remote URL, refused when it carries credentials (they would land in the DB and ledger)."""
        parts = urlsplit(repo.url)
        if parts.password is not None or (parts.scheme in ("http", "https") and parts.username):
            raise InvalidRequest(
                "repository URLs must not carry credentials: configure a git credential helper or use "
                "the github backend's token"
            )
        return repo.url

    def _push_url(self, repo_id: str) -> str:
        return repo_id

    def _remote_merge(self, pr: PullRequest, authority: Authority) -> str:
        if pr.head_sha is None:
            raise InvalidRequest(f"pull request {pr.id} has no pushed head yet: nothing to merge", pr=pr.id)
        with tempfile.TemporaryDirectory(prefix="maestro-merge-") as tmp:
            work = Path(tmp)
            git = self.git
            git.run(["init", "-q", "."], cwd=work)
            git.run(
                [
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--",
                    pr.repo,
                    f"+refs/heads/{pr.base}:refs/maestro/base",
                    f"+refs/heads/{pr.branch}:refs/maestro/head",
                ],  # fmt: skip
                cwd=work,
            )
            head = git.run(["rev-parse", "refs/maestro/head"], cwd=work).stdout.strip()
            if head != pr.head_sha:
                raise GitFailed(
                    f"branch {pr.branch!r} is at {head[:12]}, not the reviewed head {pr.head_sha[:12]}: "
                    "refusing to merge what nobody reviewed",
                    pr=pr.id,
                )
            git.run(["checkout", "-q", "--detach", "refs/maestro/base"], cwd=work)
            done = git.run(
                ["merge", "--no-ff", "--no-edit", "-m", merge_message(pr, authority), pr.head_sha],
                cwd=work,
                check=False,
            )
            if done.returncode != 0:
                raise GitFailed(
                    f"pull request {pr.id} does not merge cleanly into {pr.base!r}: update the branch "
                    f"(re-run its workcell) and merge again. git said: {done.stdout.strip()[-500:]}",
                    pr=pr.id,
                )
            merge_sha = git.run(["rev-parse", "HEAD"], cwd=work).stdout.strip()
            git.run(["push", "-q", "--no-verify", "--", pr.repo, f"HEAD:refs/heads/{pr.base}"], cwd=work)
        return merge_sha


def merge_message(pr: PullRequest, authority: Authority) -> str:
    """The merge commit's message: the PR id and title, who merged it and who approved it."""
    approvers = sorted({r.by for r in pr.reviews if r.verdict == "approve"})
    return (
        f"Merge pull request {pr.id} from {pr.branch}\n\n{pr.title}\n\n"
        f"Merged-by: {authority.principal.id}\n" + "".join(f"Approved-by: {a}\n" for a in approvers)
    )

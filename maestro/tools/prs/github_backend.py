"""The ``github`` backend: the branch pushed with git, the pull request opened through the REST API.

``repo.url`` is ``owner/name``. Opening pushes the worktree's HEAD to ``maestro/*`` over HTTPS with the
token in an ephemeral ``http.extraHeader`` (environment-only git config: never in argv, never in
.git/config), then finds the PR — by the number on record, else ``GET /pulls?head=owner:branch&state=open``
so another process's PR for the same branch is reused — and ``PATCH``es it, or ``POST``s a new one (a
422 "already exists" from a concurrent opener falls back to the lookup). Labels are set through the
issues API. Reviews go to ``/pulls/{n}/reviews`` with the human's id in the body (the token is Maestro's
identity); merges to ``/pulls/{n}/merge`` pinned to the reviewed head ``sha``. The state DB keeps the
same record as the git backend, so ``maestro prs`` and idempotency work the same.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy.engine import Engine

from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer
from maestro.core.errors import InvalidRequest
from maestro.tools.prs._base import BaseBackend
from maestro.tools.prs.errors import GitHubError
from maestro.tools.prs.gitcli import Git
from maestro.tools.prs.github_api import GitHubClient
from maestro.tools.prs.safety import Recorder
from maestro.tools.prs.types import PullRequest, RepoRef, Review

__all__ = ["GitHubBackend", "push_header"]

_REPO_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_EVENTS = {"approve": "APPROVE", "request_changes": "REQUEST_CHANGES"}


def push_header(token: str) -> str:
    """The ``http.extraHeader`` value git sends: Basic ``x-access-token:<token>`` (GitHub's scheme)."""
    raw = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return f"Authorization: Basic {raw}"


class GitHubBackend(BaseBackend):
    """``PRBackend`` on GitHub or GitHub Enterprise."""

    name = "github"

    def __init__(
        self,
        engine: Engine,
        authorizer: Authorizer,
        record: Recorder,
        *,
        client: GitHubClient,
        token: str,
        push_url: str = "https://github.com/{repo}.git",
        git_timeout_s: float = 120.0,
        author: tuple[str, str] = ("Maestro", "maestro@localhost"),
    ) -> None:
        git = Git(
            timeout_s=git_timeout_s,
            config={"http.extraHeader": push_header(token)},
            secrets=(token, push_header(token)),
            author=author,
        )
        super().__init__(engine, authorizer, record, git=git)
        self.client = client
        self._push_template = push_url

    def _repo_id(self, repo: RepoRef) -> str:
        if not _REPO_RE.fullmatch(repo.url) or ".." in repo.url:
            raise InvalidRequest(
                f"the github backend names repositories 'owner/name', not {repo.url[:100]!r}",
                repo=repo.url[:100],
            )
        return repo.url

    def _push_url(self, repo_id: str) -> str:
        return self._push_template.format(repo=repo_id)

    def _publish(self, pr: PullRequest, *, created: bool) -> dict[str, Any]:
        base = f"/repos/{pr.repo}"
        number = pr.number if pr.number is not None else self._find(pr)
        if number is None:
            try:
                doc = self.client.request(
                    "POST",
                    f"{base}/pulls",
                    json={
                        "title": pr.title,
                        "head": pr.branch,
                        "base": pr.base,
                        "body": pr.body,
                        "maintainer_can_modify": False,
                    },
                )
            except GitHubError as exc:
                number = self._find(pr) if exc.details.get("status") == 422 else None
                if number is None:
                    raise
            else:
                number = int(doc["number"])
                self._labels(pr, number)
                return {"number": number, "url": doc.get("html_url")}
        doc = self.client.request(
            "PATCH", f"{base}/pulls/{number}", json={"title": pr.title, "body": pr.body, "base": pr.base}
        )
        self._labels(pr, number)
        return {"number": number, "url": doc.get("html_url")}

    def _find(self, pr: PullRequest) -> int | None:
        owner = pr.repo.split("/", 1)[0]
        found = self.client.request(
            "GET", f"/repos/{pr.repo}/pulls", params={"head": f"{owner}:{pr.branch}", "state": "open"}
        )
        return int(found[0]["number"]) if found else None

    def _labels(self, pr: PullRequest, number: int) -> None:
        self.client.request(
            "PUT", f"/repos/{pr.repo}/issues/{number}/labels", json={"labels": list(pr.labels)}
        )

    def _remote_review(self, pr: PullRequest, review: Review, authority: Authority) -> None:
        number = self._number(pr)
        text = f"{review.note or ''}\n\n_Reviewed by `{authority.principal.id}` through Maestro._".strip()
        payload: dict[str, Any] = {"event": _EVENTS[review.verdict], "body": text}
        if pr.head_sha:
            payload["commit_id"] = pr.head_sha
        self.client.request("POST", f"/repos/{pr.repo}/pulls/{number}/reviews", json=payload)

    def _remote_merge(self, pr: PullRequest, authority: Authority) -> str:
        number = self._number(pr)
        doc = self.client.request(
            "PUT",
            f"/repos/{pr.repo}/pulls/{number}/merge",
            json={
                "merge_method": "merge",
                "sha": pr.head_sha,
                "commit_title": f"Merge pull request #{number} from {pr.branch}",
                "commit_message": f"{pr.title}\n\nMerged-by: {authority.principal.id}",
            },
        )
        if not doc or not doc.get("merged"):
            message = (doc or {}).get("message", "no reason given")
            raise GitHubError(f"GitHub did not merge pull request #{number}: {message}", status=200)
        return str(doc["sha"])

    def _remote_close(self, pr: PullRequest) -> None:
        self.client.request("PATCH", f"/repos/{pr.repo}/pulls/{self._number(pr)}", json={"state": "closed"})

    def _number(self, pr: PullRequest) -> int:
        if pr.number is None:
            raise InvalidRequest(
                f"pull request {pr.id} was never opened on GitHub: re-run its opener", pr=pr.id
            )
        return pr.number

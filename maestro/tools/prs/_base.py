"""What both backends share: the idempotent open/update flow, reviews, merges and closes on the record.

A backend supplies where to push (``_push_url``) and what to do on the remote after the push
(``_publish``), on review (``_remote_review``), merge (``_remote_merge``) and close (``_remote_close``).
Everything else — policy, sanitising, the idempotency claim, the leased push, the record and the ledger
entries — happens here once, so the safety rules cannot differ between backends.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer
from maestro.core.clock import utcnow
from maestro.core.errors import InvalidRequest
from maestro.tools.prs.errors import GitFailed
from maestro.tools.prs.gitcli import Git
from maestro.tools.prs.markdown import clean_title, sanitize_markdown
from maestro.tools.prs.safety import PRGuard, Recorder
from maestro.tools.prs.store import PRStore
from maestro.tools.prs.types import VERDICTS, PRState, PullRequest, RepoRef, Review, Verdict

_LABEL_RE = re.compile(r"[^\x00-\x1f,]{1,50}")
_KEY_MAX = 200
_PUSH_ATTEMPTS = 3


class BaseBackend(ABC):
    """The port's behaviour on top of ``PRStore``; subclasses talk to one kind of remote."""

    name = "base"

    def __init__(self, engine: Engine, authorizer: Authorizer, record: Recorder, *, git: Git) -> None:
        self.store = PRStore(engine)
        self.guard = PRGuard(authorizer, record)
        self.git = git
        self._record = record

    # -- the remote, per backend -----------------------------------------------------------------------

    def _repo_id(self, repo: RepoRef) -> str:
        return repo.url

    @abstractmethod
    def _push_url(self, repo_id: str) -> str:
        """Where ``git push`` sends the branch (credentials never inside)."""

    def _publish(self, pr: PullRequest, *, created: bool) -> dict[str, Any]:
        """Open or update the PR on the remote (after the push); returns columns to record."""
        return {}

    def _remote_review(self, pr: PullRequest, review: Review, authority: Authority) -> None:
        return None

    @abstractmethod
    def _remote_merge(self, pr: PullRequest, authority: Authority) -> str:
        """Merge on the remote; returns the merge commit's sha."""

    def _remote_close(self, pr: PullRequest) -> None:
        return None

    # -- the port --------------------------------------------------------------------------------------

    def open_or_update(
        self,
        authority: Authority,
        *,
        repo: RepoRef,
        source: Path,
        branch: str,
        title: str,
        body: str,
        labels: Sequence[str] = (),
        idempotency_key: str,
        ledger_ids: Sequence[str] = (),
    ) -> PullRequest:
        """See ``PRBackend.open_or_update``."""
        self.guard.check_push(authority, repo, branch)
        repo_id = self._repo_id(repo)
        key = _check_key(idempotency_key)
        content: dict[str, Any] = {
            "title": clean_title(title),
            "body": sanitize_markdown(body),
            "labels": _check_labels(labels),
            "ledger_ids": [str(x) for x in ledger_ids],
        }
        if not content["title"]:
            raise InvalidRequest("a pull request needs a title")
        sha = self.git.head(source)
        pr, created = self.store.claim(
            tenant=authority.tenant,
            idempotency_key=key,
            backend=self.name,
            repo=repo_id,
            branch=branch,
            base=repo.default_branch,
            opened_by=authority.principal.id,
            run_id=authority.run_id,
            **content,
        )
        if (pr.repo, pr.branch, pr.backend) != (repo_id, branch, self.name):
            raise InvalidRequest(
                f"idempotency key {key!r} already opened pull request {pr.id} on {pr.backend} branch "
                f"{pr.branch!r}: a retry must use the same repository and branch, or a new key",
                pr=pr.id,
            )
        if pr.state != "open":
            return pr  # a retry after a human merged or closed it: nothing to do
        self._push(self._push_url(repo_id), source, sha=sha, branch=branch, previous=pr.head_sha)
        pr = self._must(
            self.store.update(authority.tenant, pr.id, expect_state="open", head_sha=sha, **content), pr
        )
        remote = self._publish(pr, created=created)
        if remote:
            pr = self._must(self.store.update(authority.tenant, pr.id, **remote), pr)
        self._log("pr.opened" if created else "pr.updated", authority, pr)
        return pr

    def find_open(
        self, authority: Authority, *, repo: RepoRef, label: str | None = None
    ) -> list[PullRequest]:
        return self.store.find_open(authority.tenant, repo=self._repo_id(repo), label=label)

    def get(self, authority: Authority, pr_id: str) -> PullRequest:
        return self.store.get(authority.tenant, pr_id)

    def list(self, authority: Authority, *, state: PRState | None = None) -> list[PullRequest]:
        return self.store.list(authority.tenant, state=state)

    def review(self, authority: Authority, pr_id: str, *, verdict: Verdict, note: str | None) -> PullRequest:
        if verdict not in VERDICTS:
            raise InvalidRequest(f"unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
        pr = self._open_pr(authority, pr_id, "pr.review")
        text = sanitize_markdown(note).strip() if note else None
        if verdict == "request_changes" and not text:
            raise InvalidRequest("requesting changes needs a note saying what to change (--note)")
        review = Review(by=authority.principal.id, verdict=verdict, note=text, at=utcnow().isoformat())
        self._remote_review(pr, review, authority)
        pr = self._must(self.store.add_review(authority.tenant, pr.id, review), pr)
        self._log("pr.reviewed", authority, pr, verdict=verdict)
        return pr

    def merge(self, authority: Authority, pr_id: str) -> PullRequest:
        pr = self._open_pr(authority, pr_id, "pr.merge")
        if not pr.approved:
            raise InvalidRequest(
                f"pull request {pr.id} has no approving review (or a reviewer asked for changes): "
                f"review it first with `maestro prs review {pr.id} --approve`",
                pr=pr.id,
            )
        merge_sha = self._remote_merge(pr, authority)
        done = self.store.update(
            authority.tenant,
            pr.id,
            expect_state="open",
            state="merged",
            merged_by=authority.principal.id,
            merge_sha=merge_sha,
            closed_at=utcnow(),
        )
        pr = self._must(done, pr)
        self._log("pr.merged", authority, pr, merge_sha=merge_sha)
        return pr

    def close(self, authority: Authority, pr_id: str) -> PullRequest:
        pr = self._open_pr(authority, pr_id, "pr.close")
        self._remote_close(pr)
        done = self.store.update(
            authority.tenant, pr.id, expect_state="open", state="closed", closed_at=utcnow()
        )
        pr = self._must(done, pr)
        self._log("pr.closed", authority, pr)
        return pr

    # -- helpers ---------------------------------------------------------------------------------------

    def _open_pr(self, authority: Authority, pr_id: str, tool: str) -> PullRequest:
        pr = self.store.get(authority.tenant, pr_id)
        self.guard.check_human(authority, tool, pr)
        if pr.state != "open":
            raise InvalidRequest(
                f"pull request {pr.id} is {pr.state}: only open pull requests change", pr=pr.id
            )
        if pr.backend != self.name:
            raise InvalidRequest(
                f"pull request {pr.id} was opened with the {pr.backend} backend: use that backend", pr=pr.id
            )
        return pr

    def _must(self, updated: PullRequest | None, before: PullRequest) -> PullRequest:
        if updated is None:
            current = self.store.get(before.tenant, before.id)
            raise InvalidRequest(
                f"pull request {before.id} became {current.state} meanwhile: nothing more was done",
                pr=before.id,
            )
        return updated

    def _push(self, url: str, source: Path, *, sha: str, branch: str, previous: str | None) -> None:
        """Point the remote branch at ``sha``: created if absent, moved only from this PR's own head."""
        for _ in range(_PUSH_ATTEMPTS):
            remote = self.git.remote_head(url, branch, cwd=source)
            if remote == sha:
                return
            if remote is not None and remote != previous:
                raise GitFailed(
                    f"the remote branch {branch!r} is at {remote[:12]}, which this pull request did not "
                    "push: someone else owns it or moved it; use another branch (or delete that one)",
                    branch=branch,
                )
            if self.git.push_branch(url, cwd=source, sha=sha, branch=branch, expect=remote):
                return
        raise GitFailed(f"the remote branch {branch!r} kept moving during the push: retry", branch=branch)

    def _log(self, kind: str, authority: Authority, pr: PullRequest, **extra: Any) -> None:
        self._record(
            kind,
            {
                "tenant": authority.tenant,
                "principal_id": authority.principal.id,
                "principal_kind": authority.principal.kind,
                "run_id": authority.run_id,
                "pr_id": pr.id,
                "backend": pr.backend,
                "repo": pr.repo,
                "branch": pr.branch,
                "base": pr.base,
                "head_sha": pr.head_sha,
                "number": pr.number,
                "idempotency_key": pr.idempotency_key,
                "labels": list(pr.labels),
                "ledger_ids": list(pr.ledger_ids),
                **extra,
            },
        )


def _check_key(key: str) -> str:
    if not key or len(key) > _KEY_MAX or any(c.isspace() for c in key):
        raise InvalidRequest(
            f"invalid idempotency key {key[:40]!r}: 1-{_KEY_MAX} characters without spaces "
            "(e.g. '<run id>:<workcell>:<node>')"
        )
    return key


def _check_labels(labels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for label in labels:
        name = clean_title(label)
        if not _LABEL_RE.fullmatch(name):
            raise InvalidRequest(f"invalid label {label[:60]!r}: 1-50 characters, no commas")
        if name not in out:
            out.append(name)
    return out

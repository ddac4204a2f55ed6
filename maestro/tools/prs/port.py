"""The pull-request port: one protocol, two adapters (``GitBackend``, ``GitHubBackend``).

Workcells (codegen, testgen, docs, remediate) and the eval harness open pull requests through it; the
CLI reviews and merges through it. Every method takes the caller's ``Authority`` and asks the policy
engine first, so the rules of RELIABILITY.md #19 hold whichever backend is configured:

- a push goes to a ``maestro/*`` branch of an allow-listed repository, never to a protected branch;
- bots open and update pull requests; only humans review, merge or close, and merging needs ``repo:merge``;
- ``open_or_update`` is idempotent by ``idempotency_key``: a retried run updates its pull request.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from maestro.core.authority import Authority
from maestro.tools.prs.types import PRState, PullRequest, RepoRef, Verdict


@runtime_checkable
class PRBackend(Protocol):
    """Pull requests on one kind of remote. Records live in the state DB for both kinds."""

    name: str

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
        """Push ``source``'s HEAD to ``branch`` and open a PR into ``repo.default_branch``, or update the
        one already opened under ``idempotency_key`` (title, body, labels, head): never a second one."""
        ...

    def find_open(
        self, authority: Authority, *, repo: RepoRef, label: str | None = None
    ) -> list[PullRequest]:
        """The tenant's open PRs on ``repo`` (with ``label``, if given), oldest first."""
        ...

    def get(self, authority: Authority, pr_id: str) -> PullRequest:
        """The tenant's PR ``pr_id``; ``NotFound`` for an unknown id or another tenant's."""
        ...

    def list(self, authority: Authority, *, state: PRState | None = None) -> list[PullRequest]:
        """The tenant's PRs, newest first."""
        ...

    def review(self, authority: Authority, pr_id: str, *, verdict: Verdict, note: str | None) -> PullRequest:
        """Record a human's review (bots are refused)."""
        ...

    def merge(self, authority: Authority, pr_id: str) -> PullRequest:
        """Merge the reviewed head into the base branch (humans with ``repo:merge`` only)."""
        ...

    def close(self, authority: Authority, pr_id: str) -> PullRequest:
        """Close without merging (humans only)."""
        ...

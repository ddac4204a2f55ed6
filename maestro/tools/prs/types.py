"""What the pull-request port speaks: the repository reference, the PR record and its reviews.

Records are frozen and JSON-ready (``to_dict``): a workcell's ``ctx.effect(node, key, act)`` stores the
result of ``open_or_update`` as JSON, and ``maestro prs show --json`` prints the same document.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

PRState = Literal["open", "merged", "closed"]
PR_STATES: tuple[PRState, ...] = ("open", "merged", "closed")

Verdict = Literal["approve", "request_changes"]
VERDICTS: tuple[Verdict, ...] = ("approve", "request_changes")

BRANCH_PREFIX = "maestro/"
"""Every branch Maestro pushes lives under this prefix, so a push can never touch a human's branch."""

ALWAYS_PROTECTED: frozenset[str] = frozenset({"main", "master"})
"""Branches nobody pushes to through the port, whatever a repository calls its default branch."""


@dataclass(frozen=True, slots=True)
class RepoRef:
    """Where a pull request goes, and what the tenant allows.

    ``url`` is the repository's identity, checked against the tenant's allow-list by the policy engine:
    for the git backend any URL or path git can push to (``file:///srv/git/app.git``,
    ``https://git.example.com/acme/app.git``, credentials never inside it); for the github backend
    ``owner/name``. ``allowed`` is the tenant's allow-list from configuration (united in the policy with
    ``data.json`` ``repos_allowed``): callers build a ref through ``PRConfig.repo`` so a prompt cannot
    widen it. ``protected`` adds branches beyond ``main``, ``master`` and ``default_branch``.
    """

    url: str
    tenant: str
    default_branch: str = "main"
    allowed: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()

    @property
    def protected_branches(self) -> frozenset[str]:
        return ALWAYS_PROTECTED | {self.default_branch} | set(self.protected)


@dataclass(frozen=True, slots=True)
class Review:
    """One human review: who, approve or request changes, an optional note, when (ISO 8601 UTC)."""

    by: str
    verdict: Verdict
    note: str | None
    at: str

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Review:
        return cls(by=str(raw["by"]), verdict=raw["verdict"], note=raw.get("note"), at=str(raw["at"]))


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request as the state DB keeps it (both backends; ``number``/``url`` are GitHub's)."""

    id: str
    tenant: str
    backend: str
    repo: str
    branch: str
    base: str
    title: str
    body: str
    state: PRState
    idempotency_key: str
    opened_by: str
    created_at: str
    updated_at: str
    labels: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    head_sha: str | None = None
    run_id: str | None = None
    ledger_ids: tuple[str, ...] = ()
    number: int | None = None
    url: str | None = None
    merged_by: str | None = None
    merge_sha: str | None = None
    closed_at: str | None = None

    @property
    def approved(self) -> bool:
        """True when the latest review of every reviewer who reviewed is an approval (and there is one)."""
        latest: dict[str, Verdict] = {}
        for review in self.reviews:
            latest[review.by] = review.verdict
        return bool(latest) and all(v == "approve" for v in latest.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (tuples as lists) that ``maestro prs show --json`` prints."""
        doc = asdict(self)
        doc["labels"] = list(self.labels)
        doc["ledger_ids"] = list(self.ledger_ids)
        doc["reviews"] = [asdict(r) for r in self.reviews]
        return doc

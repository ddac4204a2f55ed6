"""The ``pull_requests`` table of the state DB (SQLite or PostgreSQL), for both backends.

Idempotency lives here: ``(tenant, idempotency_key)`` is unique, so of two concurrent ``claim`` calls
with one key exactly one inserts; the other reads the winner's row and updates that pull request
(RELIABILITY.md #25: a redelivered run's effect happens once). Every read is scoped to a tenant: another
tenant's id is ``NotFound``, the same answer as an id that never existed.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.clock import as_utc, utcnow
from maestro.core.errors import NotFound
from maestro.core.ids import new_id
from maestro.core.schema import pull_requests as prs
from maestro.tools.prs.types import PRState, PullRequest, Review

__all__ = ["PRStore"]

_MUTABLE = frozenset(
    {"title", "body", "labels", "head_sha", "number", "url", "state", "merged_by", "merge_sha", "closed_at"}
    | {"ledger_ids", "reviews"}
)


class PRStore:
    """Rows of ``pull_requests``; records come back as ``PullRequest``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(
        self,
        *,
        tenant: str,
        idempotency_key: str,
        backend: str,
        repo: str,
        branch: str,
        base: str,
        title: str,
        body: str,
        labels: Sequence[str],
        opened_by: str,
        run_id: str | None,
        ledger_ids: Sequence[str],
    ) -> tuple[PullRequest, bool]:
        """The PR for ``idempotency_key``: inserted now (``True``) or the one already there (``False``)."""
        now = utcnow()
        row = {
            "id": new_id("pr"),
            "tenant": tenant,
            "backend": backend,
            "repo": repo,
            "branch": branch,
            "base": base,
            "title": title,
            "body": body,
            "labels": list(labels),
            "state": "open",
            "reviews": [],
            "idempotency_key": idempotency_key,
            "opened_by": opened_by,
            "run_id": run_id,
            "ledger_ids": list(ledger_ids),
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(prs).values(**row))
            return self.get(tenant, str(row["id"])), True
        except sa.exc.IntegrityError:
            existing = self.by_key(tenant, idempotency_key)
            if existing is None:  # an integrity error that was not our unique key
                raise
            return existing, False

    def by_key(self, tenant: str, idempotency_key: str) -> PullRequest | None:
        where = (prs.c.tenant == tenant) & (prs.c.idempotency_key == idempotency_key)
        return self._one(where)

    def get(self, tenant: str, pr_id: str) -> PullRequest:
        """The tenant's PR ``pr_id``, else ``NotFound`` (also for another tenant's id)."""
        found = self._one((prs.c.tenant == tenant) & (prs.c.id == pr_id))
        if found is None:
            raise NotFound(
                f"tenant {tenant!r} has no pull request {pr_id!r}: see `maestro prs list --tenant {tenant}`",
                pr=pr_id,
            )
        return found

    def list(self, tenant: str, *, state: PRState | None = None, limit: int = 500) -> list[PullRequest]:
        """The tenant's PRs, newest first."""
        query = sa.select(prs).where(prs.c.tenant == tenant)
        if state is not None:
            query = query.where(prs.c.state == state)
        query = query.order_by(prs.c.created_at.desc(), prs.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def find_open(self, tenant: str, *, repo: str, label: str | None = None) -> builtins.list[PullRequest]:
        """The tenant's open PRs on ``repo`` (carrying ``label`` if given), oldest first."""
        query = (
            sa.select(prs)
            .where((prs.c.tenant == tenant) & (prs.c.repo == repo) & (prs.c.state == "open"))
            .order_by(prs.c.created_at, prs.c.id)
        )
        with self._engine.connect() as conn:
            found = [_record(row._mapping) for row in conn.execute(query)]
        return [pr for pr in found if label is None or label in pr.labels]

    def update(
        self, tenant: str, pr_id: str, *, expect_state: PRState | None = None, **values: Any
    ) -> PullRequest | None:
        """Set ``values`` (and ``updated_at``); with ``expect_state``, only if the PR is still in it.

        Returns the updated record, or None when ``expect_state`` no longer held (a concurrent merge or
        close won): callers turn that into a clear error.
        """
        unknown = set(values) - _MUTABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        where = (prs.c.tenant == tenant) & (prs.c.id == pr_id)
        if expect_state is not None:
            where = where & (prs.c.state == expect_state)
        payload = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        with self._engine.begin() as conn:
            changed = conn.execute(
                sa.update(prs).where(where).values(updated_at=utcnow(), **payload)
            ).rowcount
        if not changed:
            self.get(tenant, pr_id)  # NotFound if it does not exist at all
            return None
        return self.get(tenant, pr_id)

    def add_review(self, tenant: str, pr_id: str, review: Review) -> PullRequest | None:
        """Append a review to an open PR (compare-and-set on ``updated_at``: concurrent reviews all land)."""
        for _ in range(20):
            current = self.get(tenant, pr_id)
            if current.state != "open":
                return None
            reviews = [_review_dict(r) for r in (*current.reviews, review)]
            where = (
                (prs.c.tenant == tenant)
                & (prs.c.id == pr_id)
                & (prs.c.state == "open")
                & (prs.c.updated_at == _parse(current.updated_at))
            )
            with self._engine.begin() as conn:
                done = conn.execute(
                    sa.update(prs).where(where).values(reviews=reviews, updated_at=utcnow())
                ).rowcount
            if done:
                return self.get(tenant, pr_id)
        raise NotFound(f"pull request {pr_id!r} kept changing while a review was added: retry", pr=pr_id)

    def _one(self, where: Any) -> PullRequest | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(prs).where(where)).first()
        return None if row is None else _record(row._mapping)


def _review_dict(review: Review) -> dict[str, Any]:
    return {"by": review.by, "verdict": review.verdict, "note": review.note, "at": review.at}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _record(row: Mapping[Any, Any]) -> PullRequest:
    return PullRequest(
        id=row["id"],
        tenant=row["tenant"],
        backend=row["backend"],
        repo=row["repo"],
        branch=row["branch"],
        base=row["base"],
        title=row["title"],
        body=row["body"],
        state=row["state"],
        idempotency_key=row["idempotency_key"],
        opened_by=row["opened_by"],
        created_at=_iso(row["created_at"]) or "",
        updated_at=_iso(row["updated_at"]) or "",
        labels=tuple(row["labels"] or ()),
        reviews=tuple(Review.from_dict(r) for r in row["reviews"] or ()),
        head_sha=row["head_sha"],
        run_id=row["run_id"],
        ledger_ids=tuple(row["ledger_ids"] or ()),
        number=row["number"],
        url=row["url"],
        merged_by=row["merged_by"],
        merge_sha=row["merge_sha"],
        closed_at=_iso(row["closed_at"]),
    )

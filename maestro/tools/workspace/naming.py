"""Branch and directory names for a run's worktree.

Branches are ``maestro/<workcell>/<slug>``: reviewers see at a glance which workcell proposed a change,
and the PR backend can refuse to push anything outside ``maestro/``. Slugs come from model or user text,
so they are reduced to ``[a-z0-9-]{1,48}``.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["BRANCH_PREFIX", "MAX_SLUG", "branch_name", "run_key", "sanitize_slug"]

BRANCH_PREFIX = "maestro"
MAX_SLUG = 48
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def sanitize_slug(text: str, *, fallback: str = "change") -> str:
    """Lower-case, runs of anything but ``[a-z0-9]`` to ``-``, trimmed to 48 characters."""
    slug = _NOT_SLUG.sub("-", text.lower()).strip("-")[:MAX_SLUG].rstrip("-")
    return slug or fallback


def branch_name(workcell: str, slug: str, attempt: int = 1) -> str:
    """The branch for ``attempt`` (1: ``slug``; n > 1: ``slug-n``, the slug shortened to keep 48 chars)."""
    if attempt > 1:
        suffix = f"-{attempt}"
        slug = slug[: MAX_SLUG - len(suffix)].rstrip("-") + suffix
    return f"{BRANCH_PREFIX}/{sanitize_slug(workcell, fallback='workcell')}/{slug}"


def run_key(run: str) -> str:
    """A directory name for a run id: readable, and unique even when two ids sanitise alike."""
    digest = hashlib.sha256(run.encode()).hexdigest()[:8]
    return f"{sanitize_slug(run, fallback='run')[:32]}-{digest}"

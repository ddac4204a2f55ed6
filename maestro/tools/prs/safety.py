"""RELIABILITY.md #19 in one place: who may push where, open, review, merge and close.

Each check asks the policy engine (``Authorizer.guard_tool``: the rules live in
``core/policies/tools.rego``, which records every denial in the ledger) and then re-checks the port's
own invariants, which hold whatever the policy bundle says:

- the branch is a plain name under ``maestro/`` and never a protected branch (``main``, ``master``,
  the repository's default and any it lists);
- bots never review, merge or close (``principal.kind`` checked here as well as by ``human_only``).

A refusal by the port itself is recorded as ``pr.refused`` (ids and the reason, no free text) and
raised as ``PolicyDenied`` (CLI exit 3, HTTP 403).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from maestro.core.authority import Authority
from maestro.core.authorize import Authorizer
from maestro.core.errors import PolicyDenied
from maestro.tools.prs.types import BRANCH_PREFIX, PullRequest, RepoRef

__all__ = ["PRGuard", "Recorder"]

Recorder = Callable[[str, dict[str, Any]], None]
"""``record(kind, payload)``: one ledger entry (``Services.record``)."""

_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")


class PRGuard:
    """Policy plus the port's invariants, for both backends."""

    def __init__(self, authorizer: Authorizer, record: Recorder) -> None:
        self._authorizer = authorizer
        self._record = record

    def check_push(self, authority: Authority, repo: RepoRef, branch: str) -> None:
        """May ``authority`` open a PR from (and push) ``branch`` of ``repo``? Else ``PolicyDenied``."""
        if repo.tenant != authority.tenant:
            self._refuse(authority, "pr.open", "the repository reference belongs to another tenant")
        context = {"repos_allowed": list(repo.allowed), "default_branch": repo.default_branch}
        args = {"repo": repo.url, "branch": branch}
        self._authorizer.guard_tool(authority, "pr.open", args, context=context)
        self._authorizer.guard_tool(authority, "git.push", args, context=context)
        if not _BRANCH_RE.fullmatch(branch) or ".." in branch or branch.endswith((".lock", "/")):
            self._refuse(authority, "git.push", "the branch is not a plain branch name")
        if branch in repo.protected_branches:
            self._refuse(authority, "git.push", "pushing to a protected or default branch is not allowed")
        if not branch.startswith(BRANCH_PREFIX) or branch == BRANCH_PREFIX:
            self._refuse(authority, "git.push", f"pull request branches must be under '{BRANCH_PREFIX}'")

    def check_human(self, authority: Authority, tool: str, pr: PullRequest) -> None:
        """``pr.review``/``pr.merge``/``pr.close``: policy (scope, human only), then the port's bot check."""
        self._authorizer.guard_tool(
            authority,
            tool,
            {"repo": pr.repo, "pr": pr.id, "labels": list(pr.labels)},
            context={"default_branch": pr.base},
        )
        if authority.is_bot:
            self._refuse(authority, tool, "bots only open pull requests: they never review, merge or close")

    def _refuse(self, authority: Authority, tool: str, reason: str) -> None:
        self._record(
            "pr.refused",
            {
                "tenant": authority.tenant,
                "principal_id": authority.principal.id,
                "principal_kind": authority.principal.kind,
                "run_id": authority.run_id,
                "tool": tool,
                "reasons": [reason],
            },
        )
        raise PolicyDenied(
            f"{tool} refused for principal '{authority.principal.qualified_name}': {reason}",
            reasons=[reason],
            action="tool.call",
        )

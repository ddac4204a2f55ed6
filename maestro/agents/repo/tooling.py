"""``RepoTools``: what a repository workcell finds in ``ctx.tools["repo"]``.

Built once per process by the composition root (``Services.workcell_tools``) from settings; tests build
one directly with their own sandbox limits and PR backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from maestro.tools.pii.guard import Finding
from maestro.tools.prs.config import PRConfig
from maestro.tools.prs.port import PRBackend
from maestro.tools.sandbox import Sandbox
from maestro.tools.workspace import Worktree

__all__ = ["CodeSearch", "DiffScanner", "LedgerLookup", "RepoTools"]

DiffScanner = Callable[[str], Sequence[Finding]]
"""Finds secrets and PII in text (the added lines of a diff)."""

CodeSearch = Callable[[Worktree, str, str, int], list[str]]
"""``(worktree, query, tenant, k) -> paths``: the repository's files most related to ``query``, best first
(the worktree indexed into retrieval; re-indexing is incremental, chunk ids being content hashes)."""

LedgerLookup = Callable[[str, str], list[str]]
"""``(tenant, run_id) -> ids`` of the run's ledger entries so far (``"<index>:<leaf hash prefix>"``)."""


def _no_ledger(_tenant: str, _run_id: str) -> list[str]:
    return []


@dataclass
class RepoTools:
    workspace_root: Path
    sandbox: Sandbox
    prs: Callable[[], PRBackend]  # built on first use (the GitHub backend needs its token then)
    pr_config: PRConfig
    scan: DiffScanner
    rounds: int = 3  # edit -> apply -> test rounds before the workcell stops
    approval: Literal["never", "always"] = "never"  # a human approves before the PR is opened
    test_timeout_s: float = 600.0
    blocked_entities: frozenset[str] = field(default_factory=frozenset)  # what the diff guard refuses
    code_search: CodeSearch | None = None  # None: files are picked by word overlap only
    ledger_ids: LedgerLookup = _no_ledger  # cited in the PR body, so a reviewer can verify the evidence

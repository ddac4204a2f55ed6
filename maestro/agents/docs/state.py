from __future__ import annotations

from typing import Any

from maestro.agents.repo.state import RepoState


class DocsState(RepoState, total=False):
    """Input (``repo``, ``targets``, ``page``, ``base``) and what each step checked."""

    targets: list[str]  # module paths
    page: str  # the Markdown page to write (default docs/<first target's stem>.md)

    originals: dict[str, str]  # target -> its source before any edit
    applied: dict[str, Any] | None
    examples: dict[str, Any]  # the doctest run
    status: str  # opened | checks_failing | edits_failed | no_change | refused | rejected

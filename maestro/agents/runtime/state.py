"""The state every workcell's graph extends: messages, artifacts and the budget it has used."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_artifacts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Artifacts accumulate by key; a node's newer value for a key replaces the older one."""
    return {**(left or {}), **(right or {})}


class BaseState(TypedDict, total=False):
    """``messages`` and ``budget_used_usd`` accumulate across nodes; ``artifacts`` merge by key."""

    messages: Annotated[list[dict[str, Any]], operator.add]
    artifacts: Annotated[dict[str, Any], merge_artifacts]
    budget_used_usd: Annotated[float, operator.add]

"""Routing shared by the repository workcells, on what their nodes recorded: a failed round goes back to
the generating step while rounds are left (the failing node sets ``exhausted`` from the configured
rounds), else to ``stop``; after the diff guard, to an approval when configured, else to the PR."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["after_approve", "after_guard", "after_round"]

State = Mapping[str, Any]


def after_round(ok: str, *, retry: str) -> Callable[[Any], str]:
    def route(state: State) -> str:
        if state.get("feedback") is None:
            return ok
        return "stop" if state.get("exhausted") else retry

    return route


def after_guard(state: State) -> str:
    if state.get("status") in ("no_change", "refused"):
        return "end"
    return "approve" if state.get("needs_approval") else "open_pr"


def after_approve(state: State) -> str:
    return "end" if state.get("status") == "rejected" else "open_pr"

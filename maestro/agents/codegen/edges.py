"""Routing on what the nodes recorded: a failed round goes back to ``edit`` while rounds are left (the
node that failed sets ``exhausted`` from the configured rounds), else to ``stop``."""

from __future__ import annotations

from collections.abc import Callable

from maestro.agents.codegen.state import CodegenState

__all__ = ["after_approve", "after_guard", "after_round"]


def after_round(ok: str) -> Callable[[CodegenState], str]:
    def route(state: CodegenState) -> str:
        if state.get("feedback") is None:
            return ok
        return "stop" if state.get("exhausted") else "edit"

    return route


def after_guard(state: CodegenState) -> str:
    if state.get("status") in ("no_change", "refused"):
        return "end"
    return "approve" if state.get("needs_approval") else "open_pr"


def after_approve(state: CodegenState) -> str:
    return "end" if state.get("status") == "rejected" else "open_pr"

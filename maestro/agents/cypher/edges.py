"""Where the Cypher workcell goes after each step: on, back to ``generate`` for a repair, or ``give_up``.

A failing step sets ``error`` (and ``exhausted`` once the repairs are used up, see ``nodes._failure``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from maestro.agents.cypher.state import CypherState

Route = Callable[[CypherState], str]


def _failed(state: CypherState) -> Literal["generate", "give_up"]:
    return "give_up" if state.get("exhausted") else "generate"


def after(next_step: str) -> Route:
    """``next_step`` when the step succeeded, else a repair or, after the last one, ``give_up``."""

    def route(state: CypherState) -> str:
        return _failed(state) if state.get("error") else next_step

    return route


def after_preview(state: CypherState) -> str:
    if state.get("error"):
        return _failed(state)
    return "end" if state.get("status") == "rejected" else "execute"

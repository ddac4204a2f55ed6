"""The Cypher workcell's state: the conversation's turns plus one question's working fields.

Fields without a reducer are per question: ``initial_state`` resets them on every turn of a thread, so a
new question never inherits the last one's query, rows or failures. ``turns`` and ``messages``
accumulate across the conversation (the generator sees earlier questions and their queries).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from maestro.agents.runtime.state import BaseState


class CypherState(BaseState, total=False):
    question: str
    graph: str
    turns: Annotated[list[dict[str, Any]], operator.add]  # {"question", "query", "rows", "answer"}

    schema: str  # the schema as the prompt shows it
    examples: list[dict[str, Any]]  # few-shot {"question", "cypher", "params"}
    query: str  # the current candidate (after the guard: its rewrite)
    params: dict[str, Any]
    guard_notes: list[str]
    attempts: int  # generations so far for this question
    error: str | None  # why the current candidate failed (cleared when a step succeeds)
    exhausted: bool  # the failure came after the last allowed repair
    failures: list[dict[str, Any]]  # every failed candidate: {"stage", "query", "reason"}
    plan: dict[str, Any] | None
    approval: dict[str, Any] | None
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    answer: str
    citations: list[dict[str, Any]]
    status: str  # answered | no_rows | unanswered | rejected
    model: str | None
    decision_id: str | None

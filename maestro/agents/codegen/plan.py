"""The codegen plan: the task turned into a few steps and the files they likely touch, before any edit.

The model answers with JSON (``PLAN_SCHEMA``; sent as a JSON-schema ``response_format`` when the chosen
deployment supports one). ``parse_plan`` reads JSON (bare, fenced or inside prose) and otherwise salvages a
numbered or bulleted list from the text; the files are those of the repository the plan names, anywhere
in it. A reply that yields no step is not an error: the plan falls back to the task itself, and says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

__all__ = ["PLAN_SCHEMA", "MAX_STEPS", "Plan", "fallback_plan", "parse_plan"]

MAX_STEPS = 8
MAX_FILES = 8
MAX_STEP_CHARS = 300

Source = Literal["json", "text", "fallback"]


class PlanReply(BaseModel):
    """What the model is asked for."""

    steps: list[str] = Field(min_length=1, description="what to do, in order, one short sentence each")
    files: list[str] = Field(
        default_factory=list, description="repository paths the steps will change or read"
    )


PLAN_SCHEMA: dict[str, Any] = PlanReply.model_json_schema()

_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(\{.*?\})\s*```", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+(.+?)\s*$")


@dataclass(frozen=True)
class Plan:
    """The steps, the repository files they name, where the plan came from and (fallback) why."""

    steps: tuple[str, ...]
    files: tuple[str, ...]
    source: Source
    note: str | None = None

    def text(self) -> str:
        """The steps as a numbered list (for the edit prompt and the PR body)."""
        return "\n".join(f"{n}. {step}" for n, step in enumerate(self.steps, start=1))

    def to_record(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "files": list(self.files),
            "source": self.source,
            "note": self.note,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Plan:
        return cls(
            steps=tuple(record.get("steps", ())),
            files=tuple(record.get("files", ())),
            source=record.get("source", "fallback"),
            note=record.get("note"),
        )


def fallback_plan(task: str, why: str) -> Plan:
    """The task as the only step (what codegen did before it planned)."""
    return Plan(steps=(_clip(" ".join(task.split())),), files=(), source="fallback", note=why)


def parse_plan(reply: str, repo_files: Sequence[str], task: str) -> Plan:
    """The plan in ``reply``: JSON first, then a list in the text, else the task (see the module doc)."""
    parsed, problem = _from_json(reply)
    if parsed is not None:
        steps = _clean_steps(parsed.steps)
        if steps:
            files = _known_files([*parsed.files, *steps], repo_files)
            return Plan(steps=steps, files=files, source="json")
        problem = "the JSON plan has no non-empty step"
    steps = _clean_steps(m.group(1) for line in reply.splitlines() if (m := _LIST_ITEM.match(line)))
    if steps:
        return Plan(steps=steps, files=_known_files([reply], repo_files), source="text")
    why = problem or "the reply has neither a JSON plan nor a numbered or bulleted list of steps"
    return fallback_plan(task, f"the plan could not be read ({why}); the task stands as the plan")


def _from_json(reply: str) -> tuple[PlanReply | None, str | None]:
    candidates = [m.group(1) for m in _FENCED_JSON.finditer(reply)]
    start, end = reply.find("{"), reply.rfind("}")
    if start != -1:  # no closing brace: a reply cut at max_tokens; JSON says where it broke
        candidates.append(reply[start : end + 1] if end > start else reply[start:])
    problem: str | None = None
    for candidate in candidates:
        try:
            return PlanReply.model_validate(json.loads(candidate)), None
        except json.JSONDecodeError as exc:
            problem = problem or f"invalid JSON: {exc.msg} at character {exc.pos}"
        except ValidationError as exc:
            first = exc.errors()[0]
            problem = (
                f"the JSON does not fit the plan schema: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            )
    return None, problem


def _clean_steps(raw: Iterable[str]) -> tuple[str, ...]:
    steps = [_clip(" ".join(str(step).split())) for step in raw]
    return tuple(step for step in steps if step)[:MAX_STEPS]


def _clip(text: str) -> str:
    return text if len(text) <= MAX_STEP_CHARS else text[: MAX_STEP_CHARS - 3] + "..."


def _known_files(texts: Iterable[str], repo_files: Sequence[str]) -> tuple[str, ...]:
    """The repository files named in ``texts``, in order of first mention (a path like ``./a/b.py`` or
    ``a/b.py:12`` counts; a file the repository does not have does not)."""
    known = set(repo_files)
    found: list[str] = []
    for text in texts:
        for token in re.findall(r"[\w./-]+", str(text)):
            path = token.removeprefix("./").rstrip(".")
            if path in known and path not in found:
                found.append(path)
    return tuple(found[:MAX_FILES])

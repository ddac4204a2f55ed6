"""Prompt material for the Cypher workcell: the schema as text, the generator's JSON contract, and
reading the model's reply (JSON first; a fenced or bare query salvaged from a model that ignored it)."""

from __future__ import annotations

import json
import re
from typing import Any

from maestro.tools.graph.types import GraphSchema

__all__ = ["GENERATION_SCHEMA", "ROW_CITATION", "parse_generation", "schema_text"]

MAX_LABELS = 60
MAX_SAMPLE_CHARS = 40

GENERATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cypher": {"type": "string"},
        "params": {"type": "object"},
    },
    "required": ["cypher", "params"],
}
"""What the generator must return; passed as ``response_format`` so the local model is grammar-bound."""

ROW_CITATION = re.compile(r"\[r(\d{1,4})\]")

_FENCE = re.compile(r"```(?:json|cypher|sql)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_QUERY_START = re.compile(r"\b(OPTIONAL\s+MATCH|MATCH|UNWIND|WITH|CALL|RETURN)\b", re.IGNORECASE)


def _sample(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SAMPLE_CHARS else text[: MAX_SAMPLE_CHARS - 1] + "…"


def _props(properties: dict[str, list[Any]]) -> str:
    if not properties:
        return "no properties"
    parts = []
    for name, samples in sorted(properties.items()):
        shown = ", ".join(_sample(v) for v in samples[:3])
        parts.append(f"{name} (e.g. {shown})" if shown else name)
    return "; ".join(parts)


def schema_text(schema: GraphSchema) -> str:
    """Labels with counts and sample property values, then relationship patterns."""
    lines = ["Node labels:"]
    for label in sorted(schema.labels, key=lambda lab: (-lab.count, lab.name))[:MAX_LABELS]:
        lines.append(f"  (:{label.name}) {label.count} nodes; {_props(label.properties)}")
    lines.append("Relationships:")
    for rel in sorted(schema.relationships, key=lambda r: (-r.count, r.type))[:MAX_LABELS]:
        patterns = ", ".join(f"(:{a})-[:{rel.type}]->(:{b})" for a, b in rel.patterns) or f"[:{rel.type}]"
        extra = f"; {_props(rel.properties)}" if rel.properties else ""
        lines.append(f"  {patterns} {rel.count} relationships{extra}")
    return "\n".join(lines)


def parse_generation(text: str) -> tuple[str, dict[str, Any]]:
    """``(query, params)`` from the generator's reply; ``ValueError`` saying what was wrong."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("the model returned nothing")
    candidates = [stripped, *(m.group(1).strip() for m in _FENCE.finditer(stripped))]
    brace = stripped.find("{")
    if brace >= 0:
        candidates.append(stripped[brace : stripped.rfind("}") + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            query = value.get("cypher") or value.get("query")
            params = value.get("params") or {}
            if not isinstance(query, str) or not query.strip():
                raise ValueError('the JSON reply has no "cypher" string')
            if not isinstance(params, dict):
                raise ValueError('"params" must be a JSON object')
            return query.strip(), params
    for candidate in candidates[1:] + [stripped]:  # a model that ignored the JSON contract
        match = _QUERY_START.search(candidate)
        if match and not candidate.lstrip().startswith("{"):
            return candidate[match.start() :].strip().rstrip(";").strip(), {}
    raise ValueError('the reply is neither {"cypher": ..., "params": ...} JSON nor a Cypher query')

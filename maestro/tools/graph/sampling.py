"""The schema of a graph from bounded samples: the same Cypher on FalkorDB and Neo4j.

Counts come from the engines' count stores (``count(n)`` over a label and ``count(r)`` over a type are
answered from metadata by both engines, so they stay cheap on big graphs). Everything else reads a
bounded sample: property samples from the first ``SAMPLE_ENTITIES`` nodes of a label (relationships of a
type), and ``(from label, to label)`` patterns from the first ``SAMPLE_EDGES`` relationships of a type,
so the cost of ``schema`` does not grow with the graph. A pattern or property that only appears past the
sample is missed; the schema feeds prompts and the UI, where that is acceptable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from maestro.tools.graph.convert import to_json
from maestro.tools.graph.types import GraphSchema, LabelInfo, RelationshipInfo

__all__ = ["SAMPLE_EDGES", "SAMPLE_ENTITIES", "SAMPLE_TEXT_CHARS", "sample_schema", "tick"]

SAMPLE_ENTITIES = 200
SAMPLE_EDGES = 1_000
SAMPLE_TEXT_CHARS = 120
"""Sample strings are cut to this length (with an ellipsis): the schema goes into prompts."""

Read = Callable[[str], list[list[Any]]]
"""Run one read-only query, return its rows (already converted with ``to_json``)."""


def tick(name: str) -> str:
    """A label or relationship type as a backticked Cypher name (doubled backticks inside)."""
    return "`" + name.replace("`", "``") + "`"


def sample_schema(
    read: Read, labels: dict[str, int], relationships: dict[str, int], *, samples: int
) -> GraphSchema:
    """Labels and types with their counts (given), property samples and patterns (sampled)."""
    return GraphSchema(
        labels=[
            LabelInfo(
                name=label,
                count=count,
                properties=_samples(
                    read(f"MATCH (n:{tick(label)}) WITH n LIMIT {SAMPLE_ENTITIES} RETURN properties(n)"),
                    samples,
                ),
            )
            for label, count in labels.items()
        ],
        relationships=[
            RelationshipInfo(
                type=rel,
                count=count,
                patterns=_patterns(
                    read(
                        f"MATCH (a)-[r:{tick(rel)}]->(b) WITH a, b LIMIT {SAMPLE_EDGES} "
                        "RETURN DISTINCT labels(a), labels(b)"
                    )
                ),
                properties=_samples(
                    read(f"MATCH ()-[r:{tick(rel)}]->() WITH r LIMIT {SAMPLE_ENTITIES} RETURN properties(r)"),
                    samples,
                ),
            )
            for rel, count in relationships.items()
        ],
    )


def _samples(rows: Iterable[list[Any]], samples: int) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    seen: dict[str, set[str]] = {}
    for row in rows:
        props = row[0] if row else None
        for key, value in (props or {}).items():
            values = found.setdefault(str(key), [])
            marks = seen.setdefault(str(key), set())
            sample = _cut(to_json(value))
            mark = repr(sample)
            if len(values) < samples and mark not in marks:
                values.append(sample)
                marks.add(mark)
    return found


def _patterns(rows: Iterable[list[Any]]) -> list[tuple[str, str]]:
    pairs = {(str(f), str(t)) for froms, tos in rows for f in (froms or [""]) for t in (tos or [""])}
    return sorted(pairs)


def _cut(sample: Any) -> Any:
    if isinstance(sample, str) and len(sample) > SAMPLE_TEXT_CHARS:
        return sample[:SAMPLE_TEXT_CHARS] + "…"
    return sample

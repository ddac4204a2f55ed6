"""The graph port: what every graph backend (embedded FalkorDB, a FalkorDB server, Neo4j) offers.

Workcells only ever *read* through :meth:`GraphBackend.query_readonly` (run by the engine in read-only
mode: FalkorDB ``GRAPH.RO_QUERY``, Neo4j a READ-access session), after the Cypher guard has passed the
query. :meth:`GraphBackend.write` exists for ``maestro graph load`` and tests; no workcell calls it.

``graph`` arguments are *physical* graph keys; the tenant -> graph mapping (``catalog.py``) turns a
tenant's graph name into one, so a tenant can never name another tenant's graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "GraphBackend",
    "GraphResult",
    "GraphSchema",
    "LabelInfo",
    "QueryPlan",
    "RelationshipInfo",
    "WriteStats",
]


@dataclass(frozen=True)
class GraphResult:
    """Rows of a read query: ``columns`` and ``rows`` (JSON-serialisable values: nodes and edges become
    ``{"labels"/"type": ..., "properties": {...}}`` dicts); ``truncated`` when more than ``row_cap`` rows
    came back and the rest were dropped."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    elapsed_ms: float = 0.0

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "truncated": self.truncated,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


@dataclass(frozen=True)
class QueryPlan:
    """The engine's EXPLAIN: operator names (outermost first), the raw plan text, and an estimate of the
    rows the engine will touch (Neo4j's estimate; for FalkorDB computed from label and relationship
    counts, see ``plan.py``)."""

    operators: list[str]
    text: str
    estimated_rows: float

    def to_dict(self) -> dict[str, Any]:
        return {"operators": list(self.operators), "text": self.text, "estimated_rows": self.estimated_rows}


@dataclass(frozen=True)
class LabelInfo:
    name: str
    count: int
    properties: dict[str, list[Any]] = field(default_factory=dict)  # property -> up to N sample values


@dataclass(frozen=True)
class RelationshipInfo:
    type: str
    count: int
    patterns: list[tuple[str, str]] = field(default_factory=list)  # (from label, to label) seen
    properties: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphSchema:
    labels: list[LabelInfo]
    relationships: list[RelationshipInfo]

    @property
    def node_count(self) -> int:
        return sum(label.count for label in self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [
                {"name": lab.name, "count": lab.count, "properties": lab.properties} for lab in self.labels
            ],
            "relationships": [
                {
                    "type": rel.type,
                    "count": rel.count,
                    "patterns": [list(p) for p in rel.patterns],
                    "properties": rel.properties,
                }
                for rel in self.relationships
            ],
        }


@dataclass(frozen=True)
class WriteStats:
    nodes_created: int = 0
    relationships_created: int = 0
    properties_set: int = 0


@runtime_checkable
class GraphBackend(Protocol):
    """One graph engine. Implementations are thread-safe; ``close`` releases connections (and stops an
    embedded server this process spawned)."""

    name: str  # "falkordb-embedded", "falkordb", "neo4j"

    def graphs(self) -> list[str]:
        """Physical graph keys that exist."""
        ...

    def query_readonly(
        self,
        graph: str,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int,
        row_cap: int,
    ) -> GraphResult:
        """Run a read query in the engine's read-only mode with a server-side timeout; keep at most
        ``row_cap`` rows. Raises ``GraphQueryError`` (bad query, write refused by the engine) or
        ``GraphTimeout``; ``GraphUnavailable`` when the engine cannot be reached."""
        ...

    def explain(self, graph: str, query: str, params: Mapping[str, Any] | None = None) -> QueryPlan: ...

    def schema(self, graph: str, *, samples: int = 3) -> GraphSchema:
        """Labels, relationship types (with the label pairs they connect) and properties with samples."""
        ...

    def write(self, graph: str, query: str, params: Mapping[str, Any] | None = None) -> WriteStats:
        """A write, for loading data only (never reachable from a workcell)."""
        ...

    def write_many(self, graph: str, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> WriteStats: ...

    def delete_graph(self, graph: str) -> None: ...

    def close(self) -> None: ...

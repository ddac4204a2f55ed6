"""Which variables a query part has bound, and the cartesian-product check over its MATCH patterns.

A *group* is the run of clauses between two ``WITH`` clauses. Within a group, the comma-separated
pattern parts of every ``MATCH``/``OPTIONAL MATCH`` that share no variable with each other, nor with a
variable bound before the group (or by an ``UNWIND``/``YIELD``/``CALL {}`` in it), are disconnected
components: the engine joins them as a cartesian product. The guard refuses a group with more than
``max_cartesian`` components, and any product in which one component is a bare node ``(n)`` (no label,
no properties, no ``WHERE``): that is every node of the graph times the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from maestro.tools.cypher.lexer import Token

__all__ = ["PartInfo", "Scope"]


@dataclass(slots=True)
class PartInfo:
    """One comma-separated pattern part: the variables it names, and whether it is a single bare node."""

    names: set[str]
    bare: bool
    token: Token


@dataclass(slots=True)
class Scope:
    """Variables of one single query (names are never removed: ``WITH`` narrowing is ignored)."""

    bound: set[str]
    anchors: set[str] = field(default_factory=set)
    parts: list[PartInfo] = field(default_factory=list)
    first_match: Token | None = None

    @classmethod
    def inside(cls, outer: set[str]) -> Scope:
        return cls(bound=set(outer), anchors=set(outer))

    def bind(self, name: str) -> None:
        """A name bound by UNWIND, YIELD, a projection alias or a CALL subquery: it anchors patterns."""
        self.bound.add(name)
        self.anchors.add(name)

    def add_match(self, parts: list[PartInfo], keyword: Token) -> None:
        if self.first_match is None:
            self.first_match = keyword
        self.parts.extend(parts)
        for part in parts:
            self.bound |= part.names

    def close_group(self, max_cartesian: int) -> tuple[str, Token] | None:
        """End the group (at WITH or the end of the query): ``(problem, first MATCH)`` or ``None``."""
        parts, first = self.parts, self.first_match
        problem = _cartesian_problem(parts, self.anchors, max_cartesian) if first is not None else None
        self.parts, self.first_match = [], None
        self.anchors = set(self.bound)
        if problem is None or first is None:
            return None
        return problem, first


def _cartesian_problem(parts: list[PartInfo], anchors: set[str], max_cartesian: int) -> str | None:
    free = [part for part in parts if not (part.names & anchors)]
    if len(free) < 2:
        return None
    components: list[tuple[set[str], bool]] = []
    for part in free:
        names, bare = set(part.names), part.bare
        kept: list[tuple[set[str], bool]] = []
        for other_names, other_bare in components:
            if other_names & names:
                names |= other_names
                bare = bare and other_bare
            else:
                kept.append((other_names, other_bare))
        kept.append((names, bare))
        components = kept
    if len(components) > max_cartesian:
        return (
            f"cartesian product of {len(components)} disconnected patterns (at most {max_cartesian} "
            "allowed): connect them with a relationship or a shared variable"
        )
    if len(components) >= 2 and any(bare for _, bare in components):
        return (
            "cartesian product with a bare node pattern (no label, properties or WHERE): every node of "
            "the graph times the other patterns; add a label or connect the patterns"
        )
    return None

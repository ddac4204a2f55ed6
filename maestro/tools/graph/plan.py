"""How many rows a FalkorDB plan will touch: the estimate that decides whether a query needs approval.

FalkorDB's ``GRAPH.EXPLAIN`` gives operators but no cardinalities, so Maestro estimates them from the
plan tree and the graph's counts (pure functions, no engine access here). The heuristic, bottom-up over
the plan tree, each operator's rows = its own factor x the product of its children's rows:

- ``All Node Scan``: every node (N); ``Node By Label Scan``: that label's count;
- ``Node By ... ID ...`` scans and seeks: 1; index and range scans: at most 10 (a selective lookup);
- ``Conditional Traverse``: x the average degree ``d`` of the relationship types the query names (the
  type's count / N, or all relationships / N for an untyped pattern; never below 1, so an expansion
  never makes a query look cheaper);
- ``Conditional Variable Length Traverse`` ``*lo..hi``: x ``d^lo + ... + d^hi`` (every path length it
  enumerates), with an open upper bound read as ``max_hops`` and any bound capped at 3 x ``max_hops``;
- ``Expand Into`` (both ends already bound): x 1; ``Cartesian Product``, joins and everything else:
  the product of the children (a conservative reading of joins and applies); ``Limit`` is *not*
  honoured, because the guard puts a LIMIT on every query and a LIMIT over a sort still scans.

FalkorDB fuses a chain of fixed-length hops, ``(a)-[:R]->(b)-[:R]->(c)``, into one ``Conditional
Traverse``; the number of fixed-length relationship patterns in the query text is counted, and hops
that no operator shows multiply the estimate by ``d`` each. The result is capped at 1e18.

So ``MATCH (n)-[*..5]->(m)`` on 100k nodes with degree 3 estimates ~3.6e7 rows, and a lookup by id 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from maestro.tools.cypher.errors import CypherSyntaxError
from maestro.tools.cypher.lexer import IDENT, OP, QIDENT, tokenize

__all__ = ["GraphStats", "PatternFacts", "PlanOp", "estimate_rows", "pattern_facts"]

ESTIMATE_CAP = 1e18
INDEX_ROWS = 10.0
_ARGS_LABEL = re.compile(r"\(\w*:([^)\s]+)\)")
_VAR_RANGE = re.compile(r"\*(\d*)(?:\.\.(\d*))?")


@dataclass(frozen=True)
class GraphStats:
    """Counts of one graph: all nodes, per label, per relationship type."""

    nodes: int
    labels: Mapping[str, int] = field(default_factory=dict)
    relationships: Mapping[str, int] = field(default_factory=dict)

    def degree(self, types: frozenset[str], *, untyped: bool) -> float:
        """Average degree of the named relationship types (the largest), at least 1."""
        nodes = max(1, self.nodes)
        candidates = [self.relationships.get(t, 0) / nodes for t in types]
        if untyped or not types:
            candidates.append(sum(self.relationships.values()) / nodes)
        return max([1.0, *candidates])


@dataclass(frozen=True)
class PatternFacts:
    """What the query text says about its relationship patterns."""

    fixed_hops: int = 0  # relationship patterns without ``*``
    types: frozenset[str] = frozenset()
    untyped: bool = False  # some pattern names no type


@dataclass
class PlanOp:
    """One operator of a FalkorDB plan: ``name``, ``args`` (after ``|``) and children."""

    name: str
    args: str = ""
    children: list[PlanOp] = field(default_factory=list)

    @classmethod
    def parse(cls, lines: list[str]) -> PlanOp:
        """The tree of ``GRAPH.EXPLAIN`` lines (children are indented 4 spaces deeper)."""
        root = cls("Plan")
        stack: list[tuple[int, PlanOp]] = [(-1, root)]
        for line in lines:
            depth = (len(line) - len(line.lstrip(" "))) // 4
            name, _, args = line.strip().partition("|")
            op = cls(name.strip(), args.strip())
            while stack[-1][0] >= depth:
                stack.pop()
            stack[-1][1].children.append(op)
            stack.append((depth, op))
        return root.children[0] if len(root.children) == 1 else root

    def walk(self) -> Iterator[PlanOp]:
        """Operators outermost first (pre-order)."""
        yield self
        for child in self.children:
            yield from child.walk()


def pattern_facts(query: str) -> PatternFacts:
    """Count fixed-length relationship patterns and collect the types they name (tokenizer-based, so
    strings and comments never count); an untokenizable query yields no facts (the plan still counts)."""
    try:
        tokens = tokenize(query)
    except CypherSyntaxError:
        return PatternFacts()
    fixed, types, untyped = 0, set(), False
    i = 0
    while i < len(tokens) - 1:
        tok, nxt = tokens[i], tokens[i + 1]
        if tok.kind == OP and tok.text == "-" and nxt.kind == OP and nxt.text == "[":
            j, named, var = i + 2, set(), False
            while j < len(tokens) and not (tokens[j].kind == OP and tokens[j].text == "]"):
                prev = tokens[j - 1]
                if tokens[j].kind in (IDENT, QIDENT) and prev.kind == OP and prev.text in (":", "|"):
                    named.add(tokens[j].text)
                var = var or (tokens[j].kind == OP and tokens[j].text == "*")
                j += 1
            types |= named
            untyped = untyped or not named
            fixed += 0 if var else 1
            i = j
        elif tok.kind == OP and tok.text == "-" and nxt.kind == OP and nxt.text == "-":
            fixed, untyped = fixed + 1, True
            i += 2
            continue
        i += 1
    return PatternFacts(fixed_hops=fixed, types=frozenset(types), untyped=untyped)


def estimate_rows(root: PlanOp, stats: GraphStats, facts: PatternFacts, *, max_hops: int) -> float:
    """The heuristic in the module docstring."""
    degree = stats.degree(facts.types, untyped=facts.untyped)
    shown = sum(1 for op in root.walk() if op.name in ("Conditional Traverse", "Expand Into"))
    hidden = max(0, facts.fixed_hops - shown)
    estimate = _rows(root, stats, degree, max_hops) * degree**hidden
    return float(min(ESTIMATE_CAP, estimate))


def _rows(op: PlanOp, stats: GraphStats, degree: float, max_hops: int) -> float:
    product = math.prod(_rows(c, stats, degree, max_hops) for c in op.children)
    return min(ESTIMATE_CAP, _factor(op, stats, degree, max_hops) * product)


def _factor(op: PlanOp, stats: GraphStats, degree: float, max_hops: int) -> float:
    name = op.name
    if name == "All Node Scan":
        return float(stats.nodes)
    if "ID" in name.split():
        return 1.0
    if "Index" in name or "Range" in name:
        return min(INDEX_ROWS, float(max(1, _label_count(op, stats))))
    if name == "Node By Label Scan":
        return float(_label_count(op, stats))
    if name == "Conditional Variable Length Traverse":
        low, high = _var_range(op.args, max_hops)
        return float(sum(degree**k for k in range(low, high + 1)))
    if name == "Conditional Traverse":
        return degree
    return 1.0


def _label_count(op: PlanOp, stats: GraphStats) -> int:
    found = _ARGS_LABEL.search(op.args)
    if found is None:
        return stats.nodes
    return int(stats.labels.get(found.group(1).strip("`"), 0))


def _var_range(args: str, max_hops: int) -> tuple[int, int]:
    found = _VAR_RANGE.search(args)
    if found is None:
        return 1, max_hops
    low_text, high_text = found.group(1), found.group(2)
    low = int(low_text) if low_text else 1
    if high_text:
        high = int(high_text)
    elif ".." in found.group(0):
        high = max_hops
    else:  # ``*3``: exactly three hops
        high = low if low_text else max_hops
    cap = 3 * max_hops
    return min(low, cap), max(min(high, cap), min(low, cap))

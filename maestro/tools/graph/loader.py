"""``load_file``: Cypher scripts and CSV files into one graph, for ``maestro graph load`` and tests.

Inputs:

- a **Cypher script** (``.cypher``, ``.cql``): statements separated by ``;`` at the top level. The split
  uses the Cypher guard's tokenizer, so a ``;`` inside a string, a comment or a backticked name never
  splits a statement. Each statement runs as one write.
- **CSV** (``.csv``) in the ``neo4j-admin import`` header format (see ``csvfiles.py``): nodes files and
  relationships files, told apart by their header. Rows go in batches of ``BATCH_ROWS`` through
  ``UNWIND $rows ...`` with the values as query parameters (never spliced into the query text); labels,
  types and property names are checked to be plain identifiers and backticked. The id property of each
  node label gets an index first, so relationship rows find their ends by index lookups.
- a **directory** (its ``.csv``/``.cypher``/``.cql`` files) or several paths. Order: node CSVs, then
  Cypher scripts, then relationship CSVs, so relationships always find their nodes.

FalkorDB has no multi-statement transactions, so a load is not all-or-nothing. What the loader does
instead: every file is parsed and validated (tokenized, CSV cells typed, ids unique, relationship ends
defined by a nodes file of the same load) **before anything is written**, so a malformed file writes
nothing and the error names ``file:line``. A statement the engine rejects mid-way (a Cypher script's
semantic error) stops the load with ``file:line``; what ran before it stays. Load with ``replace=True``
(``--replace``) to start again from an empty graph.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro.core.errors import InvalidRequest
from maestro.tools.cypher.errors import CypherSyntaxError
from maestro.tools.cypher.lexer import EOF, OP, tokenize
from maestro.tools.graph.csvfiles import NodesFile, RelsFile, read_csv
from maestro.tools.graph.errors import GraphQueryError
from maestro.tools.graph.sampling import tick
from maestro.tools.graph.types import GraphBackend

__all__ = ["BATCH_ROWS", "LoadReport", "Progress", "load_file", "split_statements"]

BATCH_ROWS = 1_000
CYPHER_SUFFIXES = (".cypher", ".cql")
CSV_SUFFIXES = (".csv",)

Progress = Callable[[int, int, str], None]
"""``progress(done, total, where)``: called after each write (``total`` writes planned)."""


@dataclass(frozen=True)
class LoadReport:
    graph: str
    files: list[str]
    nodes: int  # created by this load
    relationships: int
    properties: int
    statements: int
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "files": list(self.files),
            "nodes": self.nodes,
            "relationships": self.relationships,
            "properties": self.properties,
            "statements": self.statements,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class _Step:
    where: str  # file:line
    query: str
    params: Mapping[str, Any] = field(default_factory=dict)
    index: bool = False  # an index creation: "already indexed" is fine


def load_file(
    backend: GraphBackend,
    key: str,
    path: Path | Sequence[Path],
    *,
    replace: bool = False,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> LoadReport:
    """Validate every input, then (after deleting the graph if ``replace``) write it into graph ``key``."""
    started = time.perf_counter()
    files = _expand([path] if isinstance(path, Path) else list(path))
    steps = _plan(files, batch_rows)
    if replace:
        backend.delete_graph(key)
    nodes = rels = props = 0
    for done, step in enumerate(steps, 1):
        try:
            stats = backend.write(key, step.query, step.params)
        except GraphQueryError as exc:
            if step.index and ("already" in exc.message.lower() or "equivalent" in exc.message.lower()):
                continue
            raise GraphQueryError(f"{step.where}: {exc.message}", **exc.details) from exc
        nodes += stats.nodes_created
        rels += stats.relationships_created
        props += stats.properties_set
        if progress is not None:
            progress(done, len(steps), step.where)
    return LoadReport(
        graph=key,
        files=[str(f) for f in files],
        nodes=nodes,
        relationships=rels,
        properties=props,
        statements=len(steps),
        elapsed_s=time.perf_counter() - started,
    )


def split_statements(source: str) -> list[tuple[int, str]]:
    """``(line, statement)`` for each top-level ``;``-separated statement (comments kept inside a
    statement, empty statements dropped). Raises ``CypherSyntaxError`` for an unterminated string."""
    statements: list[tuple[int, str]] = []
    tokens = tokenize(source)
    begin, first = 0, None
    for tok in tokens:
        if tok.kind == EOF or (tok.kind == OP and tok.text == ";"):
            if first is not None:
                line = source.count("\n", 0, first) + 1
                statements.append((line, source[begin : tok.start].strip()))
            begin, first = tok.end, None
        elif first is None:
            first = tok.start
    return statements


def _expand(paths: Iterable[Path]) -> list[Path]:
    """Files in load order: node CSVs, Cypher scripts, relationship CSVs (CSV kinds sorted later)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in CYPHER_SUFFIXES + CSV_SUFFIXES
            )
            if not inside:
                raise InvalidRequest(f"{path}: no .cypher, .cql or .csv files in this directory")
            found.extend(inside)
        elif path.is_file():
            if path.suffix.lower() not in CYPHER_SUFFIXES + CSV_SUFFIXES:
                raise InvalidRequest(
                    f"{path}: unsupported file type {path.suffix!r}: load .cypher, .cql or .csv files"
                )
            found.append(path)
        else:
            raise InvalidRequest(f"{path}: no such file or directory")
    if not found:
        raise InvalidRequest("no files to load")
    return list(dict.fromkeys(found))


def _plan(files: list[Path], batch_rows: int) -> list[_Step]:
    """Every write of the load, built from fully validated inputs."""
    nodes: list[NodesFile] = []
    rels: list[RelsFile] = []
    scripts: list[_Step] = []
    for path in files:
        if path.suffix.lower() in CSV_SUFFIXES:
            parsed = read_csv(path)
            if isinstance(parsed, NodesFile):
                nodes.append(parsed)
            else:
                rels.append(parsed)
        else:
            scripts.extend(_script_steps(path))
    ends = _node_index(nodes)
    steps = _node_steps(nodes, batch_rows) + scripts + _rel_steps(rels, ends, batch_rows)
    return steps


def _script_steps(path: Path) -> list[_Step]:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        statements = split_statements(source)
    except CypherSyntaxError as exc:  # its message says "at line L, column C"
        raise InvalidRequest(f"{path}: {exc}") from exc
    return [_Step(f"{path}:{line}", text) for line, text in statements]


def _node_index(files: list[NodesFile]) -> dict[tuple[str, str], tuple[str, str]]:
    """(id space, id) -> (matching label, id property); duplicate ids are refused."""
    ends: dict[tuple[str, str], tuple[str, str]] = {}
    seen_at: dict[tuple[str, str], str] = {}
    for nf in files:
        for row in nf.rows:
            ident = (row.space, row.id)
            if ident in ends:
                raise InvalidRequest(
                    f"{nf.path}:{row.line}: node id {row.id!r} is already defined at {seen_at[ident]}"
                )
            ends[ident] = (row.labels[0], nf.id_property)
            seen_at[ident] = f"{nf.path}:{row.line}"
    return ends


def _chunks(rows: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _node_steps(files: list[NodesFile], batch_rows: int) -> list[_Step]:
    steps: list[_Step] = []
    indexed: set[tuple[str, str]] = set()
    for nf in files:
        for row in nf.rows:
            pair = (row.labels[0], nf.id_property)
            if pair not in indexed:
                indexed.add(pair)
                steps.append(
                    _Step(
                        f"{nf.path}:1",
                        f"CREATE INDEX FOR (n:{tick(pair[0])}) ON (n.{tick(pair[1])})",
                        index=True,
                    )
                )
        groups: dict[tuple[str, ...], list[Any]] = defaultdict(list)
        for row in nf.rows:
            groups[row.labels].append(row)
        for labels, rows in groups.items():
            query = f"UNWIND $rows AS r CREATE (n:{':'.join(tick(lab) for lab in labels)}) SET n += r"
            for chunk in _chunks(rows, batch_rows):
                steps.append(
                    _Step(f"{nf.path}:{chunk[0].line}", query, {"rows": [r.properties for r in chunk]})
                )
    return steps


def _rel_steps(
    files: list[RelsFile], ends: dict[tuple[str, str], tuple[str, str]], batch_rows: int
) -> list[_Step]:
    steps: list[_Step] = []
    for rf in files:
        groups: dict[tuple[str, str, str, str, str], list[Any]] = defaultdict(list)
        for row in rf.rows:
            for end, what in ((row.start, ":START_ID"), (row.end, ":END_ID")):
                if end not in ends:
                    space = f" in id space {end[0]!r}" if end[0] else ""
                    raise InvalidRequest(
                        f"{rf.path}:{row.line}: {what} {end[1]!r}{space} is not defined by any nodes file "
                        "of this load (load the nodes CSV in the same command)"
                    )
            (sl, sp), (el, ep) = ends[row.start], ends[row.end]
            groups[(row.type, sl, sp, el, ep)].append(row)
        for (rel_type, sl, sp, el, ep), rows in groups.items():
            query = (
                f"UNWIND $rows AS r MATCH (a:{tick(sl)} {{{tick(sp)}: r.s}}) "
                f"MATCH (b:{tick(el)} {{{tick(ep)}: r.e}}) "
                f"CREATE (a)-[x:{tick(rel_type)}]->(b) SET x += r.p"
            )
            for chunk in _chunks(rows, batch_rows):
                params = {"rows": [{"s": r.start[1], "e": r.end[1], "p": r.properties} for r in chunk]}
                steps.append(_Step(f"{rf.path}:{chunk[0].line}", query, params))
    return steps

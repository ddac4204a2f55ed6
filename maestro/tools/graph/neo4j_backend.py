"""Neo4j behind the graph port, over Bolt with the official ``neo4j`` driver.

A *graph key is a Neo4j database name* (Neo4j names: ASCII letters, digits, dots and dashes, 3-63
characters, case-insensitive). Several graphs need Neo4j Enterprise (``CREATE DATABASE``); Community
has the one database ``neo4j``.

Reads are defended twice: the session is opened with ``default_access_mode=READ_ACCESS`` and the query
runs inside ``execute_read`` with a transaction timeout, so the server refuses any write and stops a
long query. Operators should still connect as a user whose role is read-only on the workcells'
databases (Neo4j's ``reader`` role) for the serving path; ``maestro graph load`` needs a writer.

Values are converted by pure functions (``node_json``, ``relationship_json``, ``path_json``,
``plan_from_summary``) that take plain Python values, so their shapes are tested without a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from maestro.core.errors import NotFound
from maestro.tools.graph.convert import to_json
from maestro.tools.graph.errors import GraphQueryError, GraphTimeout, GraphUnavailable
from maestro.tools.graph.sampling import sample_schema, tick
from maestro.tools.graph.types import GraphResult, GraphSchema, QueryPlan, WriteStats

__all__ = [
    "Neo4jBackend",
    "node_json",
    "path_json",
    "plan_from_summary",
    "point_json",
    "relationship_json",
    "translate_neo4j_error",
]

T = TypeVar("T")
_SCHEMA_TIMEOUT_S = 10.0
_DELETE_BATCH = 10_000


def node_json(element_id: str, labels: Sequence[str], properties: Mapping[str, Any]) -> dict[str, Any]:
    """A node as the port's JSON shape (labels sorted: Neo4j returns them as a set)."""
    return {"id": element_id, "labels": sorted(labels), "properties": _props(properties)}


def relationship_json(
    element_id: str, rel_type: str, start: str | None, end: str | None, properties: Mapping[str, Any]
) -> dict[str, Any]:
    return {"id": element_id, "type": rel_type, "start": start, "end": end, "properties": _props(properties)}


def path_json(nodes: Sequence[dict[str, Any]], relationships: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"nodes": list(nodes), "relationships": list(relationships)}


def point_json(srid: int | None, coordinates: Sequence[float]) -> dict[str, Any]:
    """WGS-84 points (srid 4326/4979) as latitude/longitude like FalkorDB's; Cartesian as x/y(/z)."""
    if srid in (4326, 4979):
        point: dict[str, Any] = {"latitude": coordinates[1], "longitude": coordinates[0]}
        if len(coordinates) > 2:
            point["height"] = coordinates[2]
        return point
    return dict(zip(("x", "y", "z"), coordinates, strict=False))


def plan_from_summary(plan: Mapping[str, Any], *, text: str = "") -> QueryPlan:
    """``QueryPlan`` from the driver's ``summary.plan`` dict (``operatorType``, ``args``, ``children``):
    operators outermost first, the root's ``EstimatedRows`` (Neo4j's own estimate) as ``estimated_rows``."""
    operators: list[str] = []
    lines: list[str] = []

    def visit(op: Mapping[str, Any], depth: int) -> None:
        name = str(op.get("operatorType", "?")).split("@", 1)[0]
        operators.append(name)
        details = op.get("args", {}).get("Details", "")
        lines.append("    " * depth + name + (f" | {details}" if details else ""))
        for child in op.get("children", []) or []:
            visit(child, depth + 1)

    visit(plan, 0)
    estimate = float(plan.get("args", {}).get("EstimatedRows", 0.0) or 0.0)
    return QueryPlan(operators=operators, text=text or "\n".join(lines), estimated_rows=estimate)


def translate_neo4j_error(code: str, message: str, graph: str | None) -> Exception:
    """The Maestro error for a Neo4j status ``code`` (``Neo.ClientError.Statement.SyntaxError``...)."""
    if "TransactionTimedOut" in code or "TransactionTimedOutClientConfiguration" in code:
        return GraphTimeout(
            f"graph {graph!r}: the query hit the transaction timeout and was stopped: narrow it "
            "(labels, a LIMIT, fewer hops) or raise MAESTRO_GRAPH_TIMEOUT_MS",
            graph=graph,
        )
    if (
        "AccessMode" in code
        or "ForbiddenOnReadOnlyDatabase" in code
        or "WriteOnReadOnlyAccessDatabase" in code
    ):
        return GraphQueryError(
            f"graph {graph!r}: the engine refused the query because it writes, and graph queries run "
            "read-only (CREATE, MERGE, SET, DELETE, REMOVE are not allowed); load data with "
            "`maestro graph load`",
            graph=graph,
            reason="read_only",
        )
    if "DatabaseNotFound" in code:
        return NotFound(f"graph {graph!r} does not exist (no such Neo4j database)", graph=graph)
    reason = "syntax" if "SyntaxError" in code else "engine"
    return GraphQueryError(
        f"graph {graph!r}: Neo4j rejected the query ({code}): {message}", graph=graph, reason=reason
    )


class Neo4jBackend:
    """A Neo4j server (or cluster via ``neo4j://``) as a ``GraphBackend``; thread-safe like the driver."""

    name = "neo4j"

    def __init__(self, driver: Any, *, max_hops: int = 5) -> None:
        self._driver = driver
        self._max_hops = max_hops

    @classmethod
    def connect(cls, url: str, *, user: str | None, password: str | None, max_hops: int = 5) -> Neo4jBackend:
        import neo4j

        auth = (user or "neo4j", password) if password is not None else None
        driver = neo4j.GraphDatabase.driver(url, auth=auth, connection_timeout=5.0)
        try:
            driver.verify_connectivity()
        except neo4j.exceptions.Neo4jError as exc:
            driver.close()
            raise translate_neo4j_error(exc.code or "", exc.message or str(exc), None) from exc
        except neo4j.exceptions.DriverError as exc:
            driver.close()
            raise GraphUnavailable(
                f"Neo4j at {url.split('@')[-1]!r} is not reachable ({exc}): check MAESTRO_GRAPH_URL"
            ) from exc
        return cls(driver, max_hops=max_hops)

    # -- the port ------------------------------------------------------------------------------------

    def graphs(self) -> list[str]:
        rows = self._session_run(
            "system", "SHOW DATABASES YIELD name, type WHERE type <> 'system' RETURN name"
        )
        return sorted({str(r[0]) for r in rows})

    def query_readonly(
        self,
        graph: str,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int,
        row_cap: int,
    ) -> GraphResult:
        started = time.perf_counter()

        def work(tx: Any) -> tuple[list[str], list[list[Any]], bool]:
            result = tx.run(query, dict(params or {}))
            columns = list(result.keys())
            rows: list[list[Any]] = []
            truncated = False
            for record in result:
                if len(rows) >= row_cap:
                    truncated = True
                    break
                rows.append([_value(v) for v in record.values()])
            result.consume()
            return columns, rows, truncated

        columns, rows, truncated = self._read(graph, work, timeout_s=timeout_ms / 1000)
        return GraphResult(columns, rows, truncated, (time.perf_counter() - started) * 1000)

    def explain(self, graph: str, query: str, params: Mapping[str, Any] | None = None) -> QueryPlan:
        def work(tx: Any) -> QueryPlan:
            summary = tx.run("EXPLAIN " + query, dict(params or {})).consume()
            return plan_from_summary(summary.plan or {})

        return self._read(graph, work, timeout_s=_SCHEMA_TIMEOUT_S)

    def schema(self, graph: str, *, samples: int = 3) -> GraphSchema:
        def read(q: str) -> list[list[Any]]:
            return self._read(
                graph,
                lambda tx: [[_value(v) for v in r.values()] for r in tx.run(q)],
                timeout_s=_SCHEMA_TIMEOUT_S,
            )

        labels = {str(r[0]): 0 for r in read("CALL db.labels() YIELD label RETURN label")}
        rels = {
            str(r[0]): 0
            for r in read("CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType")
        }
        for label in labels:
            labels[label] = int(read(f"MATCH (n:{tick(label)}) RETURN count(n)")[0][0])
        for rel in rels:
            rels[rel] = int(read(f"MATCH ()-[r:{tick(rel)}]->() RETURN count(r)")[0][0])
        return sample_schema(read, labels, rels, samples=samples)

    def write(self, graph: str, query: str, params: Mapping[str, Any] | None = None) -> WriteStats:
        return self.write_many(graph, [(query, params or {})])

    def write_many(self, graph: str, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> WriteStats:
        """All statements in one write transaction (Neo4j has them; FalkorDB does not)."""

        def work(tx: Any) -> WriteStats:
            nodes = rels = props = 0
            for query, params in statements:
                counters = tx.run(query, dict(params)).consume().counters
                nodes += counters.nodes_created
                rels += counters.relationships_created
                props += counters.properties_set
            return WriteStats(nodes_created=nodes, relationships_created=rels, properties_set=props)

        try:
            return cast(WriteStats, self._call(graph, lambda s: s.execute_write(work), write=True))
        except NotFound:
            self._create_database(graph)
            return cast(WriteStats, self._call(graph, lambda s: s.execute_write(work), write=True))

    def delete_graph(self, graph: str) -> None:
        """Drop the database (Enterprise); where that is not possible, delete all its data in batches."""
        if graph not in self.graphs():
            return
        try:
            self._session_run("system", "DROP DATABASE $name IF EXISTS WAIT", {"name": graph})
            return
        except GraphQueryError:
            pass  # Community Edition or the default database: empty it instead
        query = f"MATCH (n) WITH n LIMIT {_DELETE_BATCH} DETACH DELETE n RETURN count(*)"
        while self._call(graph, lambda s: s.execute_write(lambda tx: tx.run(query).single()[0]), write=True):
            pass

    def close(self) -> None:
        self._driver.close()

    # -- helpers -------------------------------------------------------------------------------------

    def _read(self, graph: str, work: Callable[[Any], T], *, timeout_s: float) -> T:
        import neo4j

        return cast(
            T,
            self._call(
                graph, lambda s: s.execute_read(neo4j.unit_of_work(timeout=timeout_s)(work)), write=False
            ),
        )

    def _call(self, graph: str, fn: Callable[[Any], T], *, write: bool) -> T:
        import neo4j

        mode = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        try:
            with self._driver.session(database=graph, default_access_mode=mode) as session:
                return fn(session)
        except neo4j.exceptions.Neo4jError as exc:
            raise translate_neo4j_error(exc.code or "", exc.message or str(exc), graph) from exc
        except neo4j.exceptions.DriverError as exc:
            raise GraphUnavailable(
                f"Neo4j is not reachable ({exc}): check MAESTRO_GRAPH_URL", graph=graph
            ) from exc

    def _session_run(
        self, database: str, query: str, params: Mapping[str, Any] | None = None
    ) -> list[list[Any]]:
        return self._call(
            database, lambda s: [list(r.values()) for r in s.run(query, dict(params or {}))], write=True
        )

    def _create_database(self, graph: str) -> None:
        try:
            self._session_run("system", "CREATE DATABASE $name IF NOT EXISTS WAIT", {"name": graph})
        except GraphQueryError as exc:
            raise GraphQueryError(
                f"Neo4j database {graph!r} does not exist and could not be created ({exc.message}): Neo4j "
                "Community has a single database; use Enterprise, or create the database first",
                graph=graph,
                reason="engine",
            ) from exc


def _props(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): to_json(v) for k, v in properties.items()}


def _value(value: Any) -> Any:
    """The driver's value -> plain values for the pure converters above (duck-typed on the driver's
    graph, time and spatial types, so only this function knows them)."""
    kind = type(value).__name__
    if kind == "Node":
        return node_json(value.element_id, list(value.labels), dict(value.items()))
    if kind == "Relationship":
        start, end = value.start_node, value.end_node
        return relationship_json(
            value.element_id,
            value.type,
            start.element_id if start is not None else None,
            end.element_id if end is not None else None,
            dict(value.items()),
        )
    if kind == "Path":
        return path_json([_value(n) for n in value.nodes], [_value(r) for r in value.relationships])
    if hasattr(value, "iso_format"):  # neo4j.time.Date/Time/DateTime/Duration
        return str(value.iso_format())
    srid = getattr(value, "srid", None)
    if srid is not None and isinstance(value, tuple):
        return point_json(srid, [float(c) for c in value])
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    return to_json(value)

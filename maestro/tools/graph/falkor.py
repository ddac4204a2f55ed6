"""FalkorDB behind the graph port: the embedded server (see ``embedded.py``) or any FalkorDB server.

Reads go through ``GRAPH.RO_QUERY`` (``Graph.ro_query``), so the engine itself refuses a write even if
a query slipped past the Cypher guard, with the server-side ``timeout`` so a runaway query is stopped by
the engine rather than abandoned by the client. Values are converted with :func:`convert.to_json`.

A fresh ``Graph`` handle is taken for every call: the client caches label and property names per handle,
and a graph dropped and reloaded by another process (``maestro graph load --replace`` while ``maestro
serve`` runs) would otherwise be read with stale names. The lookups this costs happen only when a result
holds nodes or relationships (one round trip per kind on a unix socket, ~0.1 ms).

The redis connection pool underneath is thread-safe, so one backend serves every thread.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis import exceptions as redis_errors

from maestro.core.errors import NotFound
from maestro.tools.graph.convert import to_json
from maestro.tools.graph.errors import GraphQueryError, GraphTimeout, GraphUnavailable
from maestro.tools.graph.plan import GraphStats, PlanOp, estimate_rows, pattern_facts
from maestro.tools.graph.sampling import sample_schema, tick
from maestro.tools.graph.types import GraphResult, GraphSchema, QueryPlan, WriteStats

__all__ = ["FalkorBackend"]

T = TypeVar("T")

_SCHEMA_TIMEOUT_MS = 10_000

_READ_ONLY_REFUSAL = "is to be executed only on read-only queries"
_MISSING_GRAPH = "empty key"


class FalkorBackend:
    """One FalkorDB server (embedded or remote) as a :class:`~maestro.tools.graph.types.GraphBackend`.

    ``connect`` returns a ``falkordb.FalkorDB`` client. ``reconnect`` (the embedded server's) is called
    once when the connection breaks: it returns a client to a live server, spawning one if the server is
    gone. ``on_close`` runs after the connections are closed (the embedded server stops there if this
    process spawned it).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        name: str = "falkordb",
        max_hops: int = 5,
        reconnect: Callable[[], Any] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._max_hops = max_hops
        self._reconnect = reconnect
        self._on_close = on_close
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._db = connect()
        except redis_errors.RedisError as exc:
            raise _unavailable(exc) from exc

    # -- the port ------------------------------------------------------------------------------------

    def graphs(self) -> list[str]:
        return sorted(str(g) for g in self._call(lambda db: db.list_graphs(), graph=None, retry=True))

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
        result = self._call(
            lambda db: db.select_graph(graph).ro_query(query, _params(params), timeout=int(timeout_ms)),
            graph=graph,
            retry=True,
        )
        rows = result.result_set
        kept = [[to_json(v) for v in row] for row in rows[:row_cap]]
        return GraphResult(
            columns=[str(h[1]) for h in result.header],
            rows=kept,
            truncated=len(rows) > row_cap,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    def explain(self, graph: str, query: str, params: Mapping[str, Any] | None = None) -> QueryPlan:
        plan = self._call(
            lambda db: db.select_graph(graph).explain(query, _params(params)), graph=graph, retry=True
        )
        lines = [str(line) for line in plan.plan]
        root = PlanOp.parse(lines)
        stats = self._stats(graph)
        estimate = estimate_rows(root, stats, pattern_facts(query), max_hops=self._max_hops)
        return QueryPlan(
            operators=[op.name for op in root.walk()], text="\n".join(lines), estimated_rows=estimate
        )

    def schema(self, graph: str, *, samples: int = 3) -> GraphSchema:
        stats = self._stats(graph)
        return sample_schema(
            lambda q: [[to_json(v) for v in row] for row in self._read(graph, q)],
            dict(stats.labels),
            dict(stats.relationships),
            samples=samples,
        )

    def write(self, graph: str, query: str, params: Mapping[str, Any] | None = None) -> WriteStats:
        result = self._call(
            lambda db: db.select_graph(graph).query(query, _params(params)), graph=graph, retry=False
        )
        return _write_stats(result)

    def write_many(self, graph: str, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> WriteStats:
        nodes = rels = props = 0
        for query, params in statements:
            stats = self.write(graph, query, params)
            nodes += stats.nodes_created
            rels += stats.relationships_created
            props += stats.properties_set
        return WriteStats(nodes_created=nodes, relationships_created=rels, properties_set=props)

    def delete_graph(self, graph: str) -> None:
        if graph in self.graphs():
            self._call(lambda db: db.select_graph(graph).delete(), graph=graph, retry=False)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            db = self._db
        _disconnect(db)
        if self._on_close is not None:
            self._on_close()

    # -- helpers -------------------------------------------------------------------------------------

    def _call(self, fn: Callable[[Any], T], *, graph: str | None, retry: bool) -> T:
        """Run ``fn(client)``, translating driver errors; after a broken connection, reconnect once
        (and run ``fn`` again if it is a read: a write may already have been applied)."""
        db = self._db
        try:
            return fn(db)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            if self._reconnect is None:
                raise _unavailable(exc) from exc
            fresh = self._swap(db)
            if not retry:
                raise GraphUnavailable(
                    f"the connection to FalkorDB broke during a write to graph {graph!r} ({exc}); it was "
                    "re-established, but the write may or may not have been applied: load again with "
                    "--replace",
                    graph=graph,
                ) from exc
            try:
                return fn(fresh)
            except redis_errors.RedisError as again:
                raise _translate(again, graph) from again
        except redis_errors.RedisError as exc:
            raise _translate(exc, graph) from exc

    def _swap(self, broken: Any) -> Any:
        assert self._reconnect is not None
        with self._lock:
            if self._db is broken:  # another thread may have reconnected already
                try:
                    self._db = self._reconnect()
                except redis_errors.RedisError as exc:
                    raise _unavailable(exc) from exc
                _disconnect(broken)
            return self._db

    def _read(self, graph: str, query: str) -> list[list[Any]]:
        result = self._call(
            lambda db: db.select_graph(graph).ro_query(query, timeout=_SCHEMA_TIMEOUT_MS),
            graph=graph,
            retry=True,
        )
        return [list(row) for row in result.result_set]

    def _stats(self, graph: str) -> GraphStats:
        """Counts of nodes, per label and per relationship type (O(1) each in FalkorDB: matrix sizes)."""
        if graph not in self.graphs():
            raise NotFound(f"graph {graph!r} does not exist on this FalkorDB server", graph=graph)
        labels = [str(r[0]) for r in self._read(graph, "CALL db.labels()")]
        rels = [str(r[0]) for r in self._read(graph, "CALL db.relationshipTypes()")]
        total = int(self._read(graph, "MATCH (n) RETURN count(n)")[0][0])
        label_counts = {
            lab: int(self._read(graph, f"MATCH (n:{tick(lab)}) RETURN count(n)")[0][0]) for lab in labels
        }
        rel_counts = {
            rel: int(self._read(graph, f"MATCH ()-[r:{tick(rel)}]->() RETURN count(r)")[0][0]) for rel in rels
        }
        return GraphStats(nodes=total, labels=label_counts, relationships=rel_counts)


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else dict(params)


def _write_stats(result: Any) -> WriteStats:
    return WriteStats(
        nodes_created=int(result.nodes_created),
        relationships_created=int(result.relationships_created),
        properties_set=int(result.properties_set),
    )


def _disconnect(db: Any) -> None:
    try:
        db.connection.connection_pool.disconnect()
    except redis_errors.RedisError:
        pass  # closing a connection that is already gone is not an error worth raising at shutdown


def _unavailable(exc: Exception) -> GraphUnavailable:
    return GraphUnavailable(
        f"FalkorDB is not reachable ({exc}): check MAESTRO_GRAPH_URL, or unset it to use the embedded "
        "server in MAESTRO_DATA_DIR",
    )


_ERR_CONTEXT = re.compile(r"\s*errCtx:.*$", re.DOTALL)


def _translate(exc: redis_errors.RedisError, graph: str | None) -> Exception:
    """The Maestro error for a driver error (see ``errors.py``)."""
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return _unavailable(exc)
    message = str(exc)
    if "timed out" in message.lower():
        return GraphTimeout(
            f"graph {graph!r}: the query hit the server-side time limit and was stopped: narrow it "
            "(labels, a LIMIT, fewer hops) or raise MAESTRO_GRAPH_TIMEOUT_MS",
            graph=graph,
        )
    if _READ_ONLY_REFUSAL in message:
        return GraphQueryError(
            f"graph {graph!r}: the engine refused the query because it writes, and graph queries run "
            "read-only (CREATE, MERGE, SET, DELETE, REMOVE are not allowed); load data with "
            "`maestro graph load`",
            graph=graph,
            reason="read_only",
        )
    if _MISSING_GRAPH in message:
        return NotFound(f"graph {graph!r} does not exist: load it with `maestro graph load`", graph=graph)
    detail = _ERR_CONTEXT.sub("", message).removeprefix("errMsg: ").strip()
    reason = "syntax" if "Invalid input" in message or "errCtx" in message else "engine"
    return GraphQueryError(
        f"graph {graph!r}: FalkorDB rejected the query: {detail}", graph=graph, reason=reason
    )

"""Errors of the graph backends, one tree for every engine (FalkorDB embedded or server, Neo4j).

Each backend translates its driver's exceptions into these at its boundary, so callers (the NL->Cypher
workcell, ``maestro graph ...``, the API) handle one vocabulary:

    GraphQueryError   the query is wrong, or it writes and the engine's read-only mode refused it
                      (exit 2, HTTP 422: asking again with the same query fails the same way)
    GraphTimeout      the engine stopped the query at its server-side time limit (exit 1, HTTP 504)
    GraphUnavailable  the engine cannot be reached or started (exit 1, HTTP 503, like
                      ``RetrievalUnavailable``: retry later, or fix the URL / the embedded server)
"""

from __future__ import annotations

from maestro.core.errors import InvalidRequest, MaestroError

__all__ = ["GraphQueryError", "GraphTimeout", "GraphUnavailable"]


class GraphQueryError(InvalidRequest):
    """The engine rejected the query: a syntax or semantic error, or a write in read-only mode.

    ``details["reason"]`` is ``"syntax"``, ``"read_only"`` or ``"engine"``; ``details["graph"]`` the key.
    """

    code = "graph_query_error"


class GraphTimeout(MaestroError):
    """The engine stopped the query at its server-side time limit (``MAESTRO_GRAPH_TIMEOUT_MS``)."""

    code = "graph_timeout"
    exit_code = 1
    http_status = 504


class GraphUnavailable(MaestroError):
    """The graph engine cannot be reached (server down, wrong URL) or the embedded one failed to start."""

    code = "graph_unavailable"
    exit_code = 1
    http_status = 503

"""Graph backends behind one port (``types.GraphBackend``): embedded FalkorDB, a FalkorDB server, Neo4j.

Importing this package is cheap and has no side effects: drivers (``falkordb``, ``neo4j``) are imported
when ``open_graph`` opens a backend. The tenant -> graph catalog lives in ``maestro.tools.graph.catalog``
and the file loader in ``maestro.tools.graph.loader`` (both import SQLAlchemy / the drivers' helpers,
so they are imported from their modules, not re-exported here).
"""

from maestro.tools.graph.errors import GraphQueryError, GraphTimeout, GraphUnavailable
from maestro.tools.graph.factory import open_graph
from maestro.tools.graph.types import (
    GraphBackend,
    GraphResult,
    GraphSchema,
    LabelInfo,
    QueryPlan,
    RelationshipInfo,
    WriteStats,
)

__all__ = [
    "GraphBackend",
    "GraphQueryError",
    "GraphResult",
    "GraphSchema",
    "GraphTimeout",
    "GraphUnavailable",
    "LabelInfo",
    "QueryPlan",
    "RelationshipInfo",
    "WriteStats",
    "open_graph",
]

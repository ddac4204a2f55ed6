"""The NL->Cypher workcell: a question about a graph becomes a guarded, read-only Cypher query and an
answer that shows the query and cites the rows it returned."""

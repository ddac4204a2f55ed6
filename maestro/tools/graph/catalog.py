"""The tenant -> graph catalog: which graphs a tenant has, and the engine key each one lives under.

Workcells and commands name a graph the way the tenant does (``sample``); only the catalog turns
``(tenant, name)`` into the engine's key, and it only ever looks inside the asking tenant's rows, so a
tenant can neither reach nor learn of another tenant's graph (``resolve`` lists the *same* tenant's
graphs when a name is unknown).

Keys are ``t.<tenant>.<name>``. Names are ``[A-Za-z0-9_-]{1,64}`` (no dot), and the tenant is
percent-encoded outside ``[A-Za-z0-9_-]`` (so it has no dot either), hence the two dots delimit the parts
unambiguously: distinct (tenant, name) pairs never share a key, whatever separators a tenant id holds.
On Neo4j the key is the database name, which must be lower-case letters, digits, dots and dashes: use
such tenant and graph names there.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maestro.core.clock import as_utc, utcnow
from maestro.core.errors import InvalidRequest, NotFound
from maestro.core.schema import graphs

__all__ = ["GRAPH_NAME_RE", "GraphCatalog", "GraphEntry", "check_graph_name", "graph_key"]

GRAPH_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class GraphEntry(NamedTuple):
    """One tenant's graph. Timestamps are ISO 8601 UTC strings, so a list of entries is JSON as is."""

    tenant: str
    name: str
    key: str
    nodes: int
    relationships: int
    source: str | None
    created_by: str
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def check_graph_name(name: str) -> str:
    """``name`` if it is a valid graph name, else ``InvalidRequest`` saying what is allowed."""
    if not GRAPH_NAME_RE.fullmatch(name):
        raise InvalidRequest(f"invalid graph name {name!r}: use 1-64 letters, digits, '_' or '-'", graph=name)
    return name


def graph_key(tenant: str, name: str) -> str:
    """The engine key of ``tenant``'s graph ``name`` (collision-proof, see the module docstring)."""
    if not tenant or len(tenant) > 200:
        raise InvalidRequest(f"invalid tenant {tenant!r}: 1-200 characters")
    return f"t.{_encode(tenant)}.{check_graph_name(name)}"


class GraphCatalog:
    """The ``graphs`` table of the state DB (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def key_for(self, tenant: str, name: str) -> str:
        """The key ``register`` will record for (tenant, name): load into it, then register."""
        return graph_key(tenant, name)

    def register(
        self, tenant: str, name: str, *, by: str, nodes: int, relationships: int, source: str | None
    ) -> GraphEntry:
        """Record (or update, after a reload) the tenant's graph; ``created_*`` keep their first values."""
        key = graph_key(tenant, name)
        now = utcnow()
        values = {
            "nodes": int(nodes),
            "relationships": int(relationships),
            "source": source,
            "updated_at": now,
        }
        where = (graphs.c.tenant == tenant) & (graphs.c.name == name)
        for _ in range(2):  # a concurrent first registration: the loser updates the winner's row
            with self._engine.begin() as conn:
                if conn.execute(sa.update(graphs).where(where).values(**values)).rowcount:
                    break
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        sa.insert(graphs).values(
                            tenant=tenant, name=name, key=key, created_by=by, created_at=now, **values
                        )
                    )
                break
            except sa.exc.IntegrityError:
                continue
        return self.resolve(tenant, name)

    def resolve(self, tenant: str, name: str) -> GraphEntry:
        """The tenant's graph ``name``; ``NotFound`` listing the tenant's own graphs if there is none."""
        check_graph_name(name)
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(graphs).where((graphs.c.tenant == tenant) & (graphs.c.name == name))
            ).first()
        if row is None:
            names = [entry.name for entry in self.list(tenant)]
            have = f"its graphs are: {', '.join(names)}" if names else "it has no graphs yet"
            raise NotFound(
                f"tenant {tenant!r} has no graph {name!r} ({have}): load one with "
                f"`maestro graph load FILE --graph {name} --tenant {tenant}`",
                graph=name,
                tenant=tenant,
            )
        return _entry(row._mapping)

    def list(self, tenant: str) -> list[GraphEntry]:
        """The tenant's graphs by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(graphs).where(graphs.c.tenant == tenant).order_by(graphs.c.name))
            return [_entry(row._mapping) for row in rows]

    def remove(self, tenant: str, name: str) -> GraphEntry:
        """Forget the tenant's graph (the caller deletes it from the engine); ``NotFound`` if absent."""
        entry = self.resolve(tenant, name)
        with self._engine.begin() as conn:
            conn.execute(sa.delete(graphs).where((graphs.c.tenant == tenant) & (graphs.c.name == name)))
        return entry


def _encode(text: str) -> str:
    """Percent-encode (UTF-8) every character outside ``[A-Za-z0-9_-]``, the dot and ``%`` included."""
    return "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in text
    )


def _entry(row: Any) -> GraphEntry:
    return GraphEntry(
        tenant=row["tenant"],
        name=row["name"],
        key=row["key"],
        nodes=int(row["nodes"]),
        relationships=int(row["relationships"]),
        source=row["source"],
        created_by=row["created_by"],
        created_at=as_utc(row["created_at"]).isoformat(),
        updated_at=as_utc(row["updated_at"]).isoformat(),
    )

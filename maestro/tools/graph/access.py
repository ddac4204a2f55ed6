"""``GraphAccess``: the one way a workcell reaches a graph, checked against the run's authority.

Every step re-checks what it needs, so a node can never skip a check another node did:

* ``open`` authorises ``cypher.read`` on the tenant's graph (policy: scope ``cypher:read``, same tenant)
  and resolves the tenant's graph name to its physical key through the catalog. A name another tenant
  uses simply does not exist for this one.
* ``run`` passes the query through the Cypher guard again (defence in depth: the query that runs is the
  guard's rewrite, with its row cap and hop bound), takes one unit of the tenant's rate limit, asks the
  policy about the ``graph.query`` tool call, and runs it in the engine's read-only mode with a
  server-side timeout and the row cap.
* ``explain`` and ``schema`` read metadata only (no rate-limit unit); the schema is cached briefly per
  graph so a conversation does not re-sample the graph on every turn.

Rate limits use the ``limits`` library: an in-memory moving window per process by default, shared across
processes and workers through Redis when a ``redis://`` storage URL is configured (the broker's).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maestro.core.errors import RateLimited, Refused
from maestro.tools.cypher import CypherGuard, GuardResult

if TYPE_CHECKING:
    from limits.strategies import RateLimiter

    from maestro.core.authority import Authority
    from maestro.core.authorize import Authorizer
    from maestro.tools.graph.catalog import GraphCatalog
    from maestro.tools.graph.types import GraphBackend, GraphResult, GraphSchema, QueryPlan

__all__ = ["GraphAccess", "GraphHandle", "TenantRateLimit"]

SCHEMA_TTL_S = 60.0


@dataclass(frozen=True)
class GraphHandle:
    """A graph a run may read: the tenant's name for it and the engine's key."""

    tenant: str
    name: str
    key: str


class TenantRateLimit:
    """``per_minute`` hits per tenant in a moving one-minute window (``limits``; memory or Redis storage)."""

    def __init__(self, per_minute: int, *, storage_url: str = "memory://", namespace: str = "cypher") -> None:
        from limits import RateLimitItemPerMinute
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.per_minute = per_minute
        self.namespace = namespace
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter: RateLimiter = MovingWindowRateLimiter(storage_from_string(storage_url))

    def hit(self, tenant: str) -> None:
        """Take one unit for ``tenant`` or raise ``RateLimited`` saying when to retry."""
        if self._limiter.hit(self._item, self.namespace, tenant):
            return
        stats = self._limiter.get_window_stats(self._item, self.namespace, tenant)
        retry_after = max(0.0, stats.reset_time - time.time())
        raise RateLimited(
            f"tenant {tenant!r} passed its limit of {self.per_minute} {self.namespace} queries per minute;"
            f" retry in {retry_after:.0f}s",
            tenant=tenant,
            retry_after=round(retry_after, 1),
        )


class GraphAccess:
    def __init__(
        self,
        backend: Callable[[], GraphBackend],
        catalog: GraphCatalog,
        authorizer: Authorizer,
        *,
        guard: CypherGuard,
        rate_limit: TenantRateLimit,
        timeout_ms: int,
        row_cap: int,
        cost_threshold: float = float("inf"),
    ) -> None:
        self._backend = backend
        self.catalog = catalog
        self.authorizer = authorizer
        self.guard = guard
        self.rate_limit = rate_limit
        self.timeout_ms = timeout_ms
        self.row_cap = row_cap
        self.cost_threshold = cost_threshold  # EXPLAIN's estimated rows above which a human approves
        self._schemas: dict[str, tuple[float, GraphSchema]] = {}
        self._lock = threading.Lock()

    @property
    def backend(self) -> GraphBackend:
        return self._backend()

    def open(self, authority: Authority, name: str) -> GraphHandle:
        """Authorise ``cypher.read`` on the tenant's graph ``name``, resolve it (``NotFound`` if absent)."""
        self.authorizer.authorize(
            authority, "cypher.read", {"kind": "graph", "tenant": authority.tenant, "id": name}
        )
        entry = self.catalog.resolve(authority.tenant, name)
        return GraphHandle(tenant=authority.tenant, name=name, key=entry.key)

    def schema(self, handle: GraphHandle, *, samples: int = 3) -> GraphSchema:
        now = time.monotonic()
        with self._lock:
            cached = self._schemas.get(handle.key)
            if cached is not None and now - cached[0] < SCHEMA_TTL_S:
                return cached[1]
        found = self.backend.schema(handle.key, samples=samples)
        with self._lock:
            self._schemas[handle.key] = (now, found)
        return found

    def check(self, query: str, params: Mapping[str, Any] | None) -> GuardResult:
        return self.guard.check(query, params)

    def explain(self, handle: GraphHandle, query: str, params: Mapping[str, Any] | None) -> QueryPlan:
        return self.backend.explain(handle.key, self.guard.check(query, params).require(), params)

    def run(
        self, authority: Authority, handle: GraphHandle, query: str, params: Mapping[str, Any] | None
    ) -> GraphResult:
        """Guard, rate-limit, authorise and run a read query (read-only mode, timeout, row cap)."""
        if authority.tenant != handle.tenant:  # a handle is only good for the tenant that opened it
            raise Refused(f"graph {handle.name!r} was opened for another tenant", tenant=authority.tenant)
        safe = self.guard.check(query, params).require()
        self.rate_limit.hit(authority.tenant)
        self.authorizer.guard_tool(authority, "graph.query", {"graph": handle.name})
        return self.backend.query_readonly(
            handle.key, safe, params, timeout_ms=self.timeout_ms, row_cap=self.row_cap
        )

"""A per-process view of remaining budgets, so that routing decisions need no DB read per request.

The decision only uses the remaining budget to filter candidates; the atomic reservation in the state DB
is what actually enforces it. So the router may decide on a view that is up to ``ttl_s`` old: this
process's own reservations and settlements keep it exact, other processes' activity shows up within
``ttl_s``, and a reservation refused on a stale view is retried once on a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from maestro.router.budget import BudgetStore


class RemainingBudgetView:
    """Remaining budget per (tenant, principal), read through to ``BudgetStore`` every ``ttl_s``."""

    def __init__(
        self, store: BudgetStore, *, ttl_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def remaining_nano(self, tenant: str, principal: str, *, fresh: bool = False) -> tuple[int, bool]:
        """(remaining nano-dollars, whether it was read from the DB just now)."""
        key = (tenant, principal)
        now = self._clock()
        if not fresh and self._ttl_s > 0:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1], False
        value = self._store.remaining_nano(tenant=tenant, principal=principal)
        if self._ttl_s > 0:
            with self._lock:
                self._cache[key] = (now + self._ttl_s, value)
        return value, True

    def adjust(self, tenant: str, principal: str, delta_nano: int) -> None:
        """Apply this process's own reservation (negative) or refund (positive) to the cached value."""
        with self._lock:
            hit = self._cache.get((tenant, principal))
            if hit is not None:
                self._cache[(tenant, principal)] = (hit[0], max(0, hit[1] + delta_nano))
